// The engine's state in Kafka: a compacted changelog topic, partitioned like the inputs. Key
// `j/<carId>` holds a car's join state (open window, recently emitted partIds); key
// `p/<carId>/<firstPartAt>` holds a car waiting for prices. A null value deletes the entry.
// Entries are written in the same transaction as the outputs and input offsets they go with.
import type { Kafka } from "kafkajs";

export type ChangelogKey = { kind: "join"; carId: string } | { kind: "price"; carId: string; firstPartAt: number };

export function joinKey(carId: string): string {
  return `j/${carId}`;
}

export function priceKey(carId: string, firstPartAt: number): string {
  return `p/${carId}/${firstPartAt}`;
}

export function parseKey(key: string): ChangelogKey | undefined {
  if (key.startsWith("j/")) return { kind: "join", carId: key.slice(2) };
  if (key.startsWith("p/")) {
    const slash = key.lastIndexOf("/");
    const firstPartAt = Number(key.slice(slash + 1));
    if (slash > 2 && Number.isFinite(firstPartAt)) return { kind: "price", carId: key.slice(2, slash), firstPartAt };
  }
  return undefined;
}

export interface RestoredPartition {
  partition: number;
  /** The latest value of every live key (tombstoned keys are absent). */
  entries: Map<string, Buffer>;
  records: number;
}

/**
 * Reads the given changelog partitions from the beginning to their end (read_committed) and
 * returns the latest value per key. The caller has already opened the partition's
 * transactional producer, which aborted any transaction a dead predecessor left open, so the
 * end is reachable.
 */
export async function restorePartitions(kafka: Kafka, topic: string, partitions: readonly number[], timeoutMs = 120_000): Promise<RestoredPartition[]> {
  const result = new Map<number, RestoredPartition>(partitions.map((p) => [p, { partition: p, entries: new Map(), records: 0 }]));
  if (partitions.length === 0) return [];
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<number, bigint>();
  try {
    for (const o of await admin.fetchTopicOffsets(topic)) {
      if (result.has(o.partition) && BigInt(o.high) > BigInt(o.low)) ends.set(o.partition, BigInt(o.high));
    }
  } finally {
    await admin.disconnect();
  }
  if (ends.size === 0) return [...result.values()];

  const consumer = kafka.consumer({ groupId: `rccar-restore-${crypto.randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  const reached = new Map<number, bigint>();
  const done = () => [...ends].every(([p, end]) => (reached.get(p) ?? -1n) + 1n >= end);
  // Batches of only control records or aborted data never reach eachBatch: track positions here.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic === topic && ends.has(payload.partition)) {
      const last = BigInt(payload.lastOffset);
      if (last > (reached.get(payload.partition) ?? -1n)) reached.set(payload.partition, last);
    }
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const restored = result.get(batch.partition);
        if (!restored || !ends.has(batch.partition)) return;
        for (const m of batch.messages) {
          const key = m.key?.toString();
          if (key === undefined) continue;
          restored.records++;
          if (m.value === null) restored.entries.delete(key);
          else restored.entries.set(key, m.value);
        }
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`restoring ${topic} partitions ${partitions.join(",")} did not reach the end within ${timeoutMs} ms`);
      await Bun.sleep(20);
    }
  } finally {
    await consumer.disconnect();
  }
  return [...result.values()];
}
