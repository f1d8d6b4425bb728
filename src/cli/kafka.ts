// bun run kafka:start | kafka:stop | kafka:status | (bun src/cli/kafka.ts consume TOPIC)
// With KAFKA_BROKERS set, the existing cluster is used: nothing is started or stopped.
import { ConfigError, kafkaBrokersGiven, kafkaSpec, loadSettings, localBrokerSpec, processSource } from "../config.ts";
import { BrokerSetupError, brokerStatus, startBroker, stopBroker, toolCommand, waitForBroker } from "../local/index.ts";
import { createKafka, ensureTopics } from "../kafka.ts";
import { startLogging } from "../log.ts";

const [command = "status", ...rest] = process.argv.slice(2);
const logger = startLogging("kafka");
const log = (line: string) => logger.info(line);

try {
  const source = { env: processSource().env, argv: [] };
  const kafka = loadSettings(kafkaSpec, source);
  const local = loadSettings(localBrokerSpec, source);
  const external = kafkaBrokersGiven(source);
  // Without KAFKA_BROKERS every command talks to the local broker, on whatever KAFKA_PORT says.
  const brokers = external ? kafka.brokers : [`127.0.0.1:${local.port}`];
  if (external && command !== "consume") {
    log(`KAFKA_BROKERS=${kafka.brokers.join(",")} is set: using that cluster, starting and stopping nothing`);
    if (command === "start") {
      await waitForBroker(kafka, 30_000, log);
      const admin = createKafka(kafka, "rccar-topics").admin();
      await admin.connect();
      const created = await ensureTopics(admin, kafka);
      await admin.disconnect();
      log(created.length ? `created topics: ${created.join(", ")}` : "topics already exist");
    }
    process.exit(0);
  }
  switch (command) {
    case "start": {
      const r = await startBroker(local, { ...kafka, brokers }, log);
      log(
        `${r.started ? "started" : "already running"}: Kafka ${local.version} on 127.0.0.1:${local.port} (pid ${r.pid}) in ${(r.ms / 1000).toFixed(1)} s; topics ready`,
      );
      break;
    }
    case "stop":
      await stopBroker(local, log);
      break;
    case "status": {
      const s = brokerStatus(local);
      console.log(
        s.running
          ? `running: Kafka ${local.version}, pid ${s.pid}, 127.0.0.1:${s.port}, data ${s.dataDir}`
          : `stopped (Kafka ${local.version}, data ${s.dataDir})`,
      );
      process.exit(s.running ? 0 : 3);
    }
    case "consume": {
      // Kafka's own console consumer, read_committed, as an independent client to look at a topic.
      const [topic, ...extra] = rest;
      if (!topic) throw new ConfigError("usage: bun src/cli/kafka.ts consume TOPIC [console-consumer flags]");
      const cmd = toolCommand(local, "org.apache.kafka.tools.consumer.ConsoleConsumer", [
        "--bootstrap-server",
        brokers.join(","),
        "--topic",
        kafka.topicPrefix + topic,
        "--from-beginning",
        "--isolation-level",
        "read_committed",
        "--property",
        "print.key=true",
        "--property",
        "print.timestamp=true",
        ...extra,
      ]);
      const child = Bun.spawn(cmd, { stdio: ["inherit", "inherit", "inherit"] });
      process.exit(await child.exited);
    }
    default:
      throw new ConfigError(`unknown command '${command}': use start, stop, status or consume`);
  }
} catch (e) {
  if (e instanceof ConfigError || e instanceof BrokerSetupError) {
    logger.error(e.message);
    process.exit(2);
  }
  throw e;
}
