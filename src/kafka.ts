// kafkajs as every part of the project uses it: one factory, Java-compatible (murmur2)
// partitioning so the generator's keying matches any other producer, and topic creation.
// Fails with one line unless bunfig.toml preloaded it (kafkajs's read_committed fix).
import "./kafkajs-fix.ts";
import { Kafka, logLevel, Partitioners, type Admin, type ITopicConfig } from "kafkajs";
import type { KafkaSettings, Topics } from "./config.ts";
import { DEFAULT_MAX_CLOCK_SKEW_MS, repartitionTopicsOf, topicsOf } from "./config.ts";
import { kafkaLevelFor, kafkaLogCreator, type KafkaLogStats } from "./kafka-log.ts";
import { currentLogger, type Logger } from "./log.ts";
import { silenceTimeoutNegativeWarning } from "./warnings.ts";

export { Partitioners };

/** How long kafkajs retries a request before it gives up: a few seconds, or long enough to ride out a broker restart. */
export type RetryBudget = "short" | "restart";

const RETRIES: Record<RetryBudget, { initialRetryTime: number; maxRetryTime?: number; retries: number }> = {
  short: { initialRetryTime: 100, retries: 8 },
  restart: { initialRetryTime: 200, maxRetryTime: 3000, retries: 30 },
};

export interface KafkaClientOptions {
  /** Silences kafkajs's own logging, for callers that retry and report failures themselves. */
  quiet?: boolean;
  /** Where kafkajs's log goes (default: the process's logger, see src/log.ts). */
  logger?: Logger;
  /** Where retried conditions are counted (default: the process's counts, kafkaLogStats()). */
  stats?: KafkaLogStats;
  retry?: RetryBudget;
}

export function createKafka(settings: Pick<KafkaSettings, "brokers">, clientId: string, opts: KafkaClientOptions = {}): Kafka {
  // Every program that talks to Kafka comes here first, tests and benches included.
  silenceTimeoutNegativeWarning();
  return new Kafka({
    clientId,
    brokers: settings.brokers,
    logLevel: opts.quiet ? logLevel.NOTHING : kafkaLevelFor(opts.logger ?? currentLogger()),
    logCreator: kafkaLogCreator({ logger: opts.logger, stats: opts.stats }),
    retry: RETRIES[opts.retry ?? "short"],
  });
}

/** The Java client's default partitioner (murmur2 on the key): co-partitioning with any Kafka producer. */
export const murmur2Partitioner = Partitioners.DefaultPartitioner;

/** Topic config of the broker-side guard against producer clocks (Kafka >= 3.6): records stamped further ahead are refused. */
export const TIMESTAMP_GUARD = "message.timestamp.after.max.ms";

/**
 * Every topic of SPEC §2 with its role's partition count and config; with a consumer group,
 * also the engine's repartition topics (the generator and verifier have none).
 */
export function topicPlan(settings: KafkaSettings, groupId?: string): ITopicConfig[] {
  const t: Topics = topicsOf(settings);
  const input = settings.inputPartitions;
  const output = settings.outputPartitions;
  // SPEC §3: the broker refuses what the engine would dead-letter as FUTURE_TIMESTAMP anyway.
  const inputConfig = () => [{ name: TIMESTAMP_GUARD, value: String(DEFAULT_MAX_CLOCK_SKEW_MS) }];
  return [
    { topic: t.body, numPartitions: input, configEntries: inputConfig() },
    { topic: t.engine, numPartitions: input, configEntries: inputConfig() },
    { topic: t.remoteControl, numPartitions: input, configEntries: inputConfig() },
    { topic: t.wheel, numPartitions: input, configEntries: inputConfig() },
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
    // Re-keyed records keep their original timestamps, old ones in a backlog included: no guard.
    ...(groupId === undefined
      ? []
      : Object.values(repartitionTopicsOf(settings, groupId)).map((topic) => ({
          topic,
          numPartitions: input,
          configEntries: [{ name: TIMESTAMP_GUARD, value: String(Number.MAX_SAFE_INTEGER) }],
        }))),
  ].map((c) => ({ replicationFactor: -1, ...c }));
}

/**
 * Creates the missing topics of the plan; existing topics are left as they are. Internal
 * topics (the changelog) follow the input topics' partition count, as Kafka Streams' internal
 * topics do, whatever INPUT_PARTITIONS says: with inputs that already exist that count is
 * theirs. An internal topic with fewer partitions (made by an older version) gets more:
 * entries are written to explicit partitions, so existing keys stay where they are.
 */
export async function ensureTopics(admin: Admin, settings: KafkaSettings, groupId?: string): Promise<string[]> {
  const t = topicsOf(settings);
  const inputs = [t.body, t.engine, t.remoteControl, t.wheel];
  const internal = new Set([t.changelog, ...(groupId === undefined ? [] : Object.values(repartitionTopicsOf(settings, groupId)))]);
  const existing = new Set(await admin.listTopics());
  const counts = await partitionCounts(
    admin,
    [...inputs, ...internal].filter((name) => existing.has(name)),
  );
  const inputCounts = inputs.map((name) => counts.get(name)).filter((n): n is number => n !== undefined);
  const inputPartitions = inputCounts.length > 0 ? Math.max(...inputCounts) : settings.inputPartitions;
  const missing = topicPlan(settings, groupId)
    .filter((c) => !existing.has(c.topic))
    .map((c) => (inputs.includes(c.topic) || internal.has(c.topic) ? { ...c, numPartitions: inputPartitions } : c));
  if (missing.length > 0) {
    try {
      await admin.createTopics({ topics: missing, waitForLeaders: true });
    } catch (e) {
      // Another process may have created them between listTopics and createTopics.
      const now = new Set(await admin.listTopics());
      if (!missing.every((c) => now.has(c.topic))) throw e;
    }
  }
  const short = [...internal].filter((name) => (counts.get(name) ?? inputPartitions) < inputPartitions);
  if (short.length > 0) await admin.createPartitions({ topicPartitions: short.map((topic) => ({ topic, count: inputPartitions })) });
  return missing.map((c) => c.topic);
}

/** Partition count of each named topic (all must exist). */
export async function partitionCounts(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  if (topics.length === 0) return new Map();
  const meta = await admin.fetchTopicMetadata({ topics: [...topics] });
  return new Map(meta.topics.map((m) => [m.name, m.partitions.length]));
}
