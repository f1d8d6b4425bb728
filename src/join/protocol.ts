// Messages between the main thread and the join workers. Input records cross as raw bytes in
// one transferred buffer per partition (no structured clone of part objects: that cost ~2 µs a
// part, ten times the join step); the worker decodes them. Results come back by structured clone.
import type { Car, InputRole } from "../domain.ts";

import type { SourceRef } from "./shard.ts";

export type { SourceRef } from "./shard.ts";

/** A record as fetched from one of a task's lanes: what the main thread hands on, undecoded. */
export interface RawRecord {
  /** Offset in the lane's topic-partition. */
  offset: string;
  /** Event time: the Kafka record timestamp (a re-keyed record keeps its original one). */
  timestamp: number;
  /** The key as the producer wrote it (a re-keyed record carries it in a header). */
  key: Buffer | null;
  value: Buffer | null;
  /** A re-keyed record's input partition and offset as the producer wrote it; a direct record's are its own. */
  origin?: { partition: number; offset: string };
  /** A re-keyed record's Kafka key (its carId): which worker owns its car. */
  carIdKey?: Buffer;
}

/** A record of one tick: its lane (index in LANES) and whether it is read again after a restart. */
export interface TickRecord {
  lane: number;
  /**
   * Handed over once before the last restart (below the committed `handedOver` position): the
   * worker keeps it only if it is a part that was still waiting for the safe time; every other
   * outcome (re-keyed, dead-lettered) was committed already.
   */
  replay: boolean;
  record: RawRecord;
}

/** Per record in a PartitionBatch's `meta`: lane, timestamp, lane offset, origin partition, origin offset, replay (0/1), key length, value length (−1 = null). */
export const META_FIELDS = 8;

/** One input partition's records for one worker, in the order its lanes handed them over, packed for transfer. */
export interface PartitionBatch {
  partition: number;
  /** META_FIELDS numbers per record (offsets stay far below 2^53). */
  meta: Float64Array;
  /** Each record's key then value bytes, back to back, in record order. */
  bytes: Uint8Array;
  /** The partition's safe time: parts below it are joined, and windows ending at or before it close. */
  safeTime: number;
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
  /** Partitions of the input topics: where a carId belongs (Kafka's default partitioner). */
  partitions: number;
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
  /** A record that is not a valid part, or a part that conflicts with its open car; key and value as the producer wrote them. */
  | { type: "deadLetter"; partition: number; source: SourceRef; reason: string; key: Uint8Array | null; value: Uint8Array | null }
  /** A valid part read from a direct lane that belongs to another partition's car (or is not keyed by its carId): re-key it to `to`. */
  | { type: "rekey"; partition: number; lane: number; offset: string; carId: string; to: number }
  /** The changelog value for the car's join state; null deletes it. */
  | { type: "state"; partition: number; carId: string; value: Uint8Array | null };

/** Per partition after a process task: what still waits in this worker for the safe time. */
export interface PartitionProgress {
  partition: number;
  /** Per lane (index in LANES), the smallest offset still waiting, or -1. */
  lowestPending: number[];
  pending: number;
  /** The parts that started waiting in this task, as timestamp and carId (src/engine/join-budget.ts mirrors them). */
  taken: { timestamp: number; carId: string; slot: number }[];
  /** The cars with parts still waiting that took a part or changed in this task, with the slots their open window holds now (0: none open). */
  touched: { carId: string; slots: number }[];
}

export interface JoinTaskResult {
  outputs: JoinOutput[];
  progress: PartitionProgress[];
  openCars: number;
  /** The worker's JavaScript heap in use (each worker is an isolate of its own). */
  heapUsedBytes: number;
}
