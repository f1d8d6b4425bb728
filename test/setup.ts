// Preloaded by `bun test`: integration tests need a real broker. Unless KAFKA_BROKERS points
// at one, start the project's own (downloaded from Maven Central on first use). Logging as in
// every program: LOG_LEVEL/LOG_FORMAT, kafkajs's retried conditions at debug, no
// TimeoutNegativeWarning.
import { kafkaBrokersGiven, kafkaSpec, loadSettings, localBrokerSpec, processSource } from "../src/config.ts";
import { startBroker } from "../src/local/broker.ts";
import { startLogging } from "../src/log.ts";

const logger = startLogging("test setup");
const source = { env: processSource().env, argv: [] };
if (!kafkaBrokersGiven(source)) {
  const local = loadSettings(localBrokerSpec, source);
  const kafka = loadSettings(kafkaSpec, source);
  await startBroker(local, { ...kafka, brokers: [`127.0.0.1:${local.port}`] }, (line) => logger.info(line));
}
