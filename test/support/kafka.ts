// Shared by integration tests: a real broker, and topics of their own under a unique prefix
// so tests never see each other's records.
import { kafkaBrokersGiven, kafkaSpec, loadSettings, localBrokerSpec, processSource, topicsOf, type KafkaSettings, type Topics } from "../../src/config.ts";
import { createKafka, ensureTopics } from "../../src/kafka.ts";

let counter = 0;

/** Kafka settings for one test: the configured brokers, a prefix no other test uses. */
export function testKafkaSettings(label: string, overrides: Partial<KafkaSettings> = {}): KafkaSettings {
  const source = { env: processSource().env, argv: [] };
  const base = loadSettings(kafkaSpec, source);
  // Without KAFKA_BROKERS the tests use the local broker test/setup.ts started, on KAFKA_PORT.
  if (!kafkaBrokersGiven(source)) base.brokers = [`127.0.0.1:${loadSettings(localBrokerSpec, source).port}`];
  const prefix = `t${Date.now().toString(36)}${process.pid.toString(36)}${(counter++).toString(36)}-${label}-`;
  return { ...base, topicPrefix: prefix, ...overrides };
}

/** Creates every topic of SPEC §2 under a fresh prefix and returns their names. */
export async function freshTopics(label: string, overrides: Partial<KafkaSettings> = {}): Promise<{ settings: KafkaSettings; topics: Topics }> {
  const settings = testKafkaSettings(label, overrides);
  const admin = createKafka(settings, `test-admin-${label}`).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, settings);
  } finally {
    await admin.disconnect();
  }
  return { settings, topics: topicsOf(settings) };
}
