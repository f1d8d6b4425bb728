// Messages between the main thread and the join workers. Plain data: they cross threads by
// structured clone.
import type { Car, Part, PartKind } from "../domain.ts";

import type { SourceRef } from "./shard.ts";

export type { SourceRef } from "./shard.ts";

/** A decoded part on its way to the worker that owns its car. */
export interface RoutedPart {
  kind: PartKind;
  part: Part;
  timestamp: number;
  source: SourceRef;
}

export interface PartitionBatch {
  partition: number;
  /** In timestamp order. */
  parts: RoutedPart[];
  /** Event time up to which this partition's windows may close after these parts. */
  watermark: number;
}

export type JoinTask =
  | { op: "process"; items: PartitionBatch[] }
  | { op: "restore"; partition: number; entries: [carId: string, state: Uint8Array][] }
  | { op: "drop"; partition: number }
  | { op: "stats" };

export type JoinOutput =
  /** An assembled (AWAITING_PRICE) or incomplete (MISSING_*) car. */
  | { type: "emit"; partition: number; car: Car }
  | { type: "deadLetter"; partition: number; source: SourceRef; reason: string; part: Part }
  /** The changelog value for the car's join state; null deletes it. */
  | { type: "state"; partition: number; carId: string; value: Uint8Array | null };

export interface JoinTaskResult {
  outputs: JoinOutput[];
  openCars: number;
  /** The worker's JavaScript heap in use (each worker is an isolate of its own). */
  heapUsedBytes: number;
}
