// What the engine wrote besides its outputs, read back with read_committed: the changelog's
// join states (`j/`) and waiting cars (`p/`), values and tombstones apart, and lane positions
// (`o/`); and its repartition topics' records: parts not keyed by carId, written once more
// keyed by carId, and the watermark announcements that travel with them. Divided by the cars,
// it is the "records written per car" the produce path pays for.
import type { KafkaMessage } from "kafkajs";
import { repartitionTopicsOf, type KafkaSettings } from "../src/config.ts";
import { WATERMARK_HEADER } from "../src/engine/collector.ts";
import { parseKey } from "../src/state/index.ts";
import { createKafka } from "../src/kafka.ts";

export interface ChangelogCounts {
  joinValues: number;
  joinTombstones: number;
  waitingValues: number;
  waitingTombstones: number;
  /** Lane positions (`o/<topic>`), written with each transaction that moves a lane. */
  positions: number;
}

export async function countChangelog(kafka: KafkaSettings, topic: string, timeoutMs = 120_000): Promise<ChangelogCounts> {
  const counts: ChangelogCounts = { joinValues: 0, joinTombstones: 0, waitingValues: 0, waitingTombstones: 0, positions: 0 };
  await readToEnd(kafka, topic, timeoutMs, (m) => {
    const kind = parseKey(m.key?.toString("utf8") ?? "")?.kind;
    if (kind === "position") counts.positions++;
    else if (kind === "join") m.value === null ? counts.joinTombstones++ : counts.joinValues++;
    else m.value === null ? counts.waitingTombstones++ : counts.waitingValues++;
  });
  return counts;
}

export interface RepartitionCounts {
  /** Parts re-keyed by carId (each one a second write of an input record). */
  parts: number;
  /** Watermark announcements (key and value null, the watermark in a header). */
  markers: number;
}

/** What the engine of group `groupId` wrote to its repartition topics. */
export async function countRepartition(kafka: KafkaSettings, groupId: string, timeoutMs = 120_000): Promise<RepartitionCounts> {
  const counts: RepartitionCounts = { parts: 0, markers: 0 };
  for (const topic of Object.values(repartitionTopicsOf(kafka, groupId)))
    await readToEnd(kafka, topic, timeoutMs, (m) => (m.headers?.[WATERMARK_HEADER] === undefined ? counts.parts++ : counts.markers++));
  return counts;
}

async function readToEnd(kafka: KafkaSettings, topic: string, timeoutMs: number, onRecord: (m: KafkaMessage) => void): Promise<void> {
  const client = createKafka(kafka, "bench-records");
  const admin = client.admin();
  await admin.connect();
  const ends = new Map<number, bigint>();
  try {
    for (const o of await admin.fetchTopicOffsets(topic)) if (BigInt(o.high) > BigInt(o.low)) ends.set(o.partition, BigInt(o.high));
  } finally {
    await admin.disconnect();
  }
  if (ends.size === 0) return;
  const consumer = client.consumer({ groupId: `bench-records-${crypto.randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  const reached = new Map<number, bigint>();
  // Batches of only control records never reach eachBatch: positions are tracked here.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic === topic) reached.set(payload.partition, BigInt(payload.lastOffset));
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) onRecord(m);
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (![...ends].every(([p, end]) => (reached.get(p) ?? -1n) + 1n >= end)) {
      if (Date.now() > deadline) throw new Error(`counting ${topic}: did not reach the end within ${timeoutMs} ms`);
      await Bun.sleep(50);
    }
  } finally {
    await consumer.disconnect();
  }
}
