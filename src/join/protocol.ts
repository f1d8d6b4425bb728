// Messages between the main thread and the join workers. Input records cross as raw bytes in
// one transferred buffer per partition (no structured clone of part objects: that cost ~2 µs a
// part, ten times the join step); the worker decodes them. Results come back by structured clone.
import type { Car, InputRole } from "../domain.ts";

import type { SourceRef } from "./shard.ts";

export type { SourceRef } from "./shard.ts";

/** An input record as fetched: what the main thread hands on, undecoded. */
export interface RawRecord {
  offset: string;
  /** Event time: the Kafka record timestamp. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
}

/** Per record in a PartitionBatch's `meta`: role index, timestamp, offset, key length, value length (−1 = null). */
export const META_FIELDS = 5;

/** One input partition's records for one worker, in timestamp order, packed for transfer. */
export interface PartitionBatch {
  partition: number;
  /** META_FIELDS numbers per record (offsets stay far below 2^53). */
  meta: Float64Array;
  /** Each record's key then value bytes, back to back, in record order. */
  bytes: Uint8Array;
  /** Event time up to which this partition's windows may close after these records. */
  watermark: number;
}

/** Restored join states of one partition for one worker, packed for transfer (states-batch.ts). */
export interface PackedStates {
  partition: number;
  /** Per entry: the carId's UTF-8 byte length, then the state's byte length. */
  lengths: Uint32Array;
  /** Each entry's carId (UTF-8) then its changelog value, back to back. */
  bytes: Uint8Array;
}

export interface JoinWorkerData {
  joinTimeoutMs: number;
  dedupRetentionMs: number;
  maxPartBytes: number;
  /** Input topic names by role: what a dead letter's source names. */
  topics: Record<InputRole, string>;
}

export type JoinTask =
  { op: "process"; items: PartitionBatch[] } | { op: "restore"; states: PackedStates } | { op: "drop"; partition: number } | { op: "stats" };

export type JoinOutput =
  /** An assembled (AWAITING_PRICE) or incomplete (MISSING_*) car. */
  | { type: "emit"; partition: number; car: Car }
  /** A record that is not a valid part, or a part that conflicts with its open car. */
  | { type: "deadLetter"; partition: number; source: SourceRef; reason: string }
  /** The changelog value for the car's join state; null deletes it. */
  | { type: "state"; partition: number; carId: string; value: Uint8Array | null };

export interface JoinTaskResult {
  outputs: JoinOutput[];
  openCars: number;
  /** The worker's JavaScript heap in use (each worker is an isolate of its own). */
  heapUsedBytes: number;
}
