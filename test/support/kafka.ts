// Shared by integration tests: a real broker, and topics of their own under a unique prefix
// so tests never see each other's records.
import { kafkaBrokersGiven, kafkaSpec, loadSettings, localBrokerSpec, processSource, topicsOf, type KafkaSettings, type Topics } from "../../src/config.ts";
import { createKafka, ensureTopics, TIMESTAMP_GUARD, topicPlan } from "../../src/kafka.ts";

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

export interface FreshTopicsOptions {
  /**
   * false: the input topics lack the broker-side clock guard (message.timestamp.after.max.ms), as a
   * user's existing topics may; a guarded topic refuses future-stamped parts before the engine sees them.
   */
  timestampGuard?: boolean;
  /** Also the repartition topics of this consumer group (a test that runs an InputSource itself). */
  groupId?: string;
}

/** Creates every topic of SPEC §2 under a fresh prefix and returns their names. */
export async function freshTopics(
  label: string,
  overrides: Partial<KafkaSettings> = {},
  opts: FreshTopicsOptions = {},
): Promise<{ settings: KafkaSettings; topics: Topics }> {
  const settings = testKafkaSettings(label, overrides);
  const admin = createKafka(settings, `test-admin-${label}`).admin();
  await admin.connect();
  try {
    if (opts.timestampGuard === false) {
      // Kafka 4.x brokers guard every topic at one hour by default: an unguarded topic says so.
      const unguard = (entries: { name: string; value: string }[] | undefined) =>
        entries?.map((e) => (e.name === TIMESTAMP_GUARD ? { name: e.name, value: String(Number.MAX_SAFE_INTEGER) } : e));
      const topics = topicPlan(settings, opts.groupId).map((c) => ({ ...c, configEntries: unguard(c.configEntries) }));
      // createTopics starts with a metadata request over every topic, which fails with
      // UNKNOWN_TOPIC_OR_PARTITION while topics created a moment ago settle: retry what is missing.
      for (let attempt = 0; ; attempt++) {
        const now = new Set(await admin.listTopics());
        const missing = topics.filter((c) => !now.has(c.topic));
        if (missing.length === 0) break;
        try {
          await admin.createTopics({ topics: missing, waitForLeaders: true });
        } catch (e) {
          if (attempt >= 40) throw e;
          await Bun.sleep(250);
        }
      }
    } else {
      await ensureTopics(admin, settings, opts.groupId);
    }
  } finally {
    await admin.disconnect();
  }
  return { settings, topics: topicsOf(settings) };
}
