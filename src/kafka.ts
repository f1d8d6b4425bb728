// kafkajs as every part of the project uses it: one factory, Java-compatible (murmur2)
// partitioning so the generator's keying matches any other producer, and topic creation.
import { Kafka, logLevel, Partitioners, type Admin, type ITopicConfig } from "kafkajs";
import type { KafkaSettings, Topics } from "./config.ts";
import { topicsOf } from "./config.ts";
import { kafkaLevelFor, kafkaLogCreator, type KafkaLogStats } from "./kafka-log.ts";
import { currentLogger, type Logger } from "./log.ts";
import { silenceTimeoutNegativeWarning } from "./warnings.ts";

export { Partitioners };

export interface KafkaClientOptions {
  /** Silences kafkajs's own logging, for callers that retry and report failures themselves. */
  quiet?: boolean;
  /** Where kafkajs's log goes (default: the process's logger, see src/log.ts). */
  logger?: Logger;
  /** Where retried conditions are counted (default: the process's counts, kafkaLogStats()). */
  stats?: KafkaLogStats;
}

export function createKafka(settings: Pick<KafkaSettings, "brokers">, clientId: string, opts: KafkaClientOptions = {}): Kafka {
  // Every program that talks to Kafka comes here first, tests and benches included.
  silenceTimeoutNegativeWarning();
  return new Kafka({
    clientId,
    brokers: settings.brokers,
    logLevel: opts.quiet ? logLevel.NOTHING : kafkaLevelFor(opts.logger ?? currentLogger()),
    logCreator: kafkaLogCreator({ logger: opts.logger, stats: opts.stats }),
    retry: { initialRetryTime: 100, retries: 8 },
  });
}

/** The Java client's default partitioner (murmur2 on the key): co-partitioning with any Kafka producer. */
export const murmur2Partitioner = Partitioners.DefaultPartitioner;

/** Every topic of SPEC §2 with its role's partition count and config. */
export function topicPlan(settings: KafkaSettings): ITopicConfig[] {
  const t: Topics = topicsOf(settings);
  const input = settings.inputPartitions;
  const output = settings.outputPartitions;
  return [
    { topic: t.body, numPartitions: input },
    { topic: t.engine, numPartitions: input },
    { topic: t.remoteControl, numPartitions: input },
    { topic: t.wheel, numPartitions: input },
    { topic: t.completed, numPartitions: output },
    { topic: t.incomplete, numPartitions: output },
    { topic: t.dlq, numPartitions: output },
    // The changelog is keyed like the inputs, one partition per input partition, compacted.
    {
      topic: t.changelog,
      numPartitions: input,
      configEntries: [
        { name: "cleanup.policy", value: "compact" },
        { name: "segment.ms", value: "600000" },
      ],
    },
  ].map((c) => ({ replicationFactor: -1, ...c }));
}

/** Creates the missing topics of the plan; existing topics are left as they are. */
export async function ensureTopics(admin: Admin, settings: KafkaSettings): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = topicPlan(settings).filter((c) => !existing.has(c.topic));
  if (missing.length > 0) {
    try {
      await admin.createTopics({ topics: missing, waitForLeaders: true });
    } catch (e) {
      // Another process may have created them between listTopics and createTopics.
      const now = new Set(await admin.listTopics());
      if (!missing.every((c) => now.has(c.topic))) throw e;
    }
  }
  return missing.map((c) => c.topic);
}
