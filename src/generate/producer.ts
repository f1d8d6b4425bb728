// The shell of the generator: drives the scheduler with the wall clock and writes its records
// to Kafka with an idempotent producer keyed like the Java client. Records are sent in order,
// one batch at a time, so each car's records reach the log in their timestamp order.
import { ConfigResourceTypes, type Admin, type Message, type TopicMessages } from "kafkajs";
import type { KafkaSettings } from "../config.ts";
import { ConfigError, topicsOf } from "../config.ts";
import type { InputRole } from "../domain.ts";
import { INPUT_ROLES } from "../domain.ts";
import { createKafka, ensureTopics, murmur2Partitioner, TIMESTAMP_GUARD } from "../kafka.ts";
import type { Plan } from "./plan.ts";
import { partitionFor, type SentRecord } from "./placement.ts";
import { Scheduler } from "./schedule.ts";

export interface Progress {
  sent: number;
  total: number;
  /** Cars whose first part was sent. */
  cars: number;
  elapsedMs: number;
}

export interface SendOptions {
  batchSize: number;
  onProgress?: (p: Progress) => void;
  progressEveryMs?: number;
}

export interface SendResult {
  sent: SentRecord[];
  /** Wall clock around the sending, for throughput. */
  wallStartedAt: number;
  wallFinishedAt: number;
  /** Time spent building and sending batches, pacing and waiting for late parts excluded. */
  busyMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A topic with the broker-side clock guard refuses a future-stamped part (INVALID_TIMESTAMP) and
 * with it the rest of its produce request: say so before sending anything.
 */
async function requireNoGuard(admin: Admin, topics: string[], aheadMs: number): Promise<void> {
  const res = await admin.describeConfigs({
    resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: [TIMESTAMP_GUARD] })),
    includeSynonyms: false,
  });
  for (const r of res.resources) {
    const limit = Number(r.configEntries.find((e) => e.configName === TIMESTAMP_GUARD)?.configValue ?? Infinity);
    if (limit < aheadMs) {
      throw new ConfigError(
        `FUTURE_STAMPED: topic ${r.resourceName} has ${TIMESTAMP_GUARD}=${limit}, so the broker refuses parts stamped FUTURE_AHEAD_MS=${aheadMs} ahead; use input topics without that guard (as a user's existing topics may be)`,
      );
    }
  }
}

export async function sendPlan(plan: Plan, settings: KafkaSettings, opts: SendOptions): Promise<SendResult> {
  const topics = topicsOf(settings);
  const topicOf: Record<InputRole, string> = { body: topics.body, engine: topics.engine, remoteControl: topics.remoteControl, wheel: topics.wheel };
  // A producer rides out a broker restart (~15 s), as a real one's delivery timeout would.
  const kafka = createKafka(settings, `rccar-generator-${process.pid}`, { retry: "restart" });

  const admin = kafka.admin();
  await admin.connect();
  const partitions = new Map<string, number>();
  try {
    await ensureTopics(admin, settings);
    const meta = await admin.fetchTopicMetadata({ topics: INPUT_ROLES.map((r) => topicOf[r]) });
    for (const t of meta.topics) partitions.set(t.name, t.partitions.length);
    if (plan.stats.futureStamped > 0)
      await requireNoGuard(
        admin,
        INPUT_ROLES.map((r) => topicOf[r]),
        plan.options.futureAheadMs,
      );
  } finally {
    await admin.disconnect();
  }

  // Idempotent: a retried produce request never duplicates a record, so duplicates are only
  // the ones the plan sends on purpose.
  // Idempotence keeps a batch retried across a broker restart from being written twice.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: murmur2Partitioner });
  await producer.connect();
  const sent: SentRecord[] = [];
  const wallStartedAt = Date.now();
  const scheduler = new Scheduler(plan, wallStartedAt);
  const every = opts.progressEveryMs ?? 1000;
  let cars = 0;
  let lastProgress = wallStartedAt;
  let busyMs = 0;
  const progress = () => opts.onProgress?.({ sent: sent.length, total: plan.records.length, cars, elapsedMs: Date.now() - wallStartedAt });
  try {
    for (;;) {
      const due = scheduler.nextDueAt();
      if (due === undefined) break;
      const now = Date.now();
      if (due > now) {
        await sleep(Math.min(due - now, 50));
      } else {
        const busySince = performance.now();
        const batch = scheduler.take(now, opts.batchSize);
        const byTopic = new Map<string, Message[]>();
        // Where each record will land, to turn the response's base offsets into offsets.
        const byPartition = new Map<string, SentRecord[]>();
        for (const s of batch) {
          const topic = topicOf[s.record.role];
          const partition = partitionFor(topic, s.record.key, s.record.seq, partitions.get(topic)!);
          const v = s.record.value;
          const message: Message = { key: s.record.key, value: Buffer.from(v.buffer, v.byteOffset, v.byteLength), timestamp: String(s.timestamp) };
          // Keyed records go through the murmur2 partitioner; keyless ones get the partition we chose.
          if (s.record.key === null) message.partition = partition;
          const messages = byTopic.get(topic) ?? [];
          messages.push(message);
          byTopic.set(topic, messages);
          const placed: SentRecord = { ...s, topic, partition, offset: "" };
          const tp = `${topic}/${partition}`;
          const list = byPartition.get(tp) ?? [];
          list.push(placed);
          byPartition.set(tp, list);
          sent.push(placed);
          if (s.record.opensCar) cars++;
        }
        const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
        const metadata = await producer.sendBatch({ topicMessages, acks: -1 });
        // Offsets stay far below 2^53, so plain numbers are exact.
        const base = new Map(metadata.map((m) => [`${m.topicName}/${m.partition}`, Number(m.baseOffset ?? "-1")]));
        for (const [tp, list] of byPartition) {
          const b = base.get(tp);
          if (b === undefined || b < 0) throw new Error(`no base offset for ${tp} in the produce response: partitioning disagrees with the producer`);
          for (let i = 0; i < list.length; i++) list[i]!.offset = String(b + i);
        }
        if (base.size !== byPartition.size) throw new Error(`the producer wrote to ${base.size} partitions, expected ${byPartition.size}`);
        busyMs += performance.now() - busySince;
      }
      if (Date.now() - lastProgress >= every) {
        lastProgress = Date.now();
        progress();
      }
    }
    progress();
  } finally {
    await producer.disconnect();
  }
  return { sent, wallStartedAt, wallFinishedAt: Date.now(), busyMs };
}
