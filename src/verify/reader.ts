// Reads the output topics as a downstream read_committed consumer would: from the beginning,
// until every partition's last stable offset is reached and nothing new has come for a while.
// Returns the raw records; judging them is compare.ts's job.
import { randomUUID } from "node:crypto";
import type { KafkaSettings } from "../config.ts";
import { createKafka } from "../kafka.ts";
import type { FoundRecord } from "./compare.ts";

export interface ReadOptions {
  /** Stop once caught up and nothing new came for this long. */
  quietMs: number;
  /** Stop after this long in any case. */
  timeoutMs: number;
  /** When this many records were read and we are caught up, a shorter quiet period suffices. */
  expectedRecords?: number;
  earlyQuietMs?: number;
  onProgress?: (p: { records: number; caughtUp: boolean; elapsedMs: number }) => void;
}

export interface ReadResult {
  records: FoundRecord[];
  /** Every partition was read up to its last stable offset. */
  caughtUp: boolean;
  timedOut: boolean;
  elapsedMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function readOutputs(settings: Pick<KafkaSettings, "brokers">, topics: readonly string[], opts: ReadOptions): Promise<ReadResult> {
  const kafka = createKafka(settings, `rccar-verifier-${process.pid}`);
  const admin = kafka.admin();
  // A group of its own that never commits: reading leaves no trace and sees everything.
  const consumer = kafka.consumer({ groupId: `rccar-verifier-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200, allowAutoTopicCreation: false });
  const seen = new Map<string, FoundRecord>();
  /** Next offset to read per topic/partition, control records and aborted data included. */
  const position = new Map<string, bigint>();
  const started = Date.now();
  let lastNew = started;
  const earlyQuietMs = opts.earlyQuietMs ?? Math.min(opts.quietMs, 1000);

  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const absent = topics.filter((t) => !existing.has(t));
    if (absent.length > 0)
      throw new Error(`output topic(s) ${absent.join(", ")} do not exist on ${settings.brokers.join(",")}: is this the manifest's broker?`);
    await consumer.connect();
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.lastOffset === null || payload.lastOffset === undefined) return;
      const tp = `${payload.topic}/${payload.partition}`;
      const next = BigInt(payload.lastOffset) + 1n;
      if (next > (position.get(tp) ?? 0n)) position.set(tp, next);
    });
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const id = `${batch.topic}/${batch.partition}/${m.offset}`;
          // A rebalance may hand a partition back from an earlier offset: count each record once.
          if (seen.has(id)) continue;
          seen.set(id, {
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            key: m.key === null ? null : m.key.toString("utf8"),
            value: m.value,
            timestamp: m.timestamp,
          });
          lastNew = Date.now();
        }
      },
    });

    let caughtUp = false;
    let timedOut = false;
    for (;;) {
      await sleep(200);
      caughtUp = await isCaughtUp(admin, topics, position);
      const now = Date.now();
      opts.onProgress?.({ records: seen.size, caughtUp, elapsedMs: now - started });
      // Nothing at all yet while outputs are expected is an engine still starting (a restore, a
      // broker restart, the first safe time): only the timeout ends that wait.
      const producing = seen.size > 0 || !opts.expectedRecords;
      if (caughtUp && producing && now - lastNew >= opts.quietMs) break;
      if (caughtUp && opts.expectedRecords !== undefined && seen.size >= opts.expectedRecords && now - lastNew >= earlyQuietMs) break;
      if (now - started >= opts.timeoutMs) {
        timedOut = true;
        break;
      }
    }
    return { records: [...seen.values()], caughtUp, timedOut, elapsedMs: Date.now() - started };
  } finally {
    await consumer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

/** The admin lists offsets read_committed: the end is the last stable offset, not the high watermark. */
async function isCaughtUp(
  admin: ReturnType<ReturnType<typeof createKafka>["admin"]>,
  topics: readonly string[],
  position: Map<string, bigint>,
): Promise<boolean> {
  for (const topic of topics) {
    for (const p of await admin.fetchTopicOffsets(topic)) {
      if ((position.get(`${topic}/${p.partition}`) ?? 0n) < BigInt(p.offset)) return false;
    }
  }
  return true;
}
