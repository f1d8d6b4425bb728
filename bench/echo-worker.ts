// A worker that answers at once: what the thread hop alone costs, for a batch of part objects
// (structured clone) or a packed batch of raw records (moved).
import type { PartitionBatch } from "../src/join/protocol.ts";

export default function echo(batch: unknown[] | PartitionBatch): number {
  return Array.isArray(batch) ? batch.length : batch.meta.length;
}
