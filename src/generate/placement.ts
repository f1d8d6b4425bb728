// Where a record lands: the partition the Java client's default partitioner picks for its key
// (the same function the producer is configured with), so the manifest can name the exact
// source partition and offset of every dead letter.
import type { PartitionMetadata } from "kafkajs";
import type { InputRole } from "../domain.ts";
import { murmur2Partitioner } from "../kafka.ts";
import type { Stamped } from "./schedule.ts";

/** A record as it was written: where, and with which timestamp. */
export interface SentRecord extends Stamped {
  topic: string;
  partition: number;
  offset: string;
}

const partitioner = murmur2Partitioner();
const metadataCache = new Map<number, PartitionMetadata[]>();

function metadataOf(partitions: number): PartitionMetadata[] {
  let m = metadataCache.get(partitions);
  if (!m) {
    m = Array.from({ length: partitions }, (_, id) => ({ partitionErrorCode: 0, partitionId: id, leader: 0, replicas: [0], isr: [0] }));
    metadataCache.set(partitions, m);
  }
  return m;
}

/** The partition of a keyed record; keyless records get an explicit one, derived from their seq. */
export function partitionFor(topic: string, key: string | null, seq: number, partitions: number): number {
  if (key === null) return seq % partitions;
  return partitioner({ topic, partitionMetadata: metadataOf(partitions), message: { key, value: null } });
}

/**
 * Partitions and offsets as a broker with empty topics would assign them, for runs that never
 * touch Kafka (tests, dry runs).
 */
export function placeOnEmptyTopics(stamped: readonly Stamped[], topicOf: Record<InputRole, string>, partitions: number): SentRecord[] {
  const next = new Map<string, number>();
  return stamped.map((s) => {
    const topic = topicOf[s.record.role];
    const partition = partitionFor(topic, s.record.key, s.record.seq, partitions);
    const tp = `${topic}/${partition}`;
    const offset = next.get(tp) ?? 0;
    next.set(tp, offset + 1);
    return { ...s, topic, partition, offset: String(offset) };
  });
}
