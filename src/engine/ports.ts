// What the engine shell talks to, as interfaces: the Kafka consumer, a partition's
// transactional sink, the changelog, the join workers, the pricing dispatcher and the clock.
// The engine wires the real ones (src/engine/engine.ts); the shell's tests wire fakes and a
// manual clock (test/support/shell-kit.ts), so lifecycle rules get millisecond tests.
import type { Car, InputRole, Lane } from "../domain.ts";
import type { TickBatch } from "../join/index.ts";
import type { JoinTaskResult } from "../join/index.ts";
import type { ConsumedOffset, OutRecord } from "../sink/index.ts";

export type { ConsumedOffset, OutRecord } from "../sink/index.ts";

export interface Clock {
  now(): number;
}

/** An offset committed by the group, with its metadata string (null when none). */
export interface CommittedOffset {
  offset: string;
  metadata: string | null;
}

/**
 * The consumer, as far as tasks use it. Input topic-partitions are named by role and
 * partition (only they are paused: the repartition lanes carry the safe time and are never
 * paused); every lane's can be rewound.
 */
export interface InputPort {
  pause(role: InputRole, partition: number): void;
  resume(role: InputRole, partition: number): void;
  /** Rewinds a lane's topic-partition; the next records delivered start at `offset`. */
  seek(lane: Lane, partition: number, offset: string): void;
  /** Committed offsets of every lane (or the log start where none is committed), keyed `topic:partition`. */
  committedOffsets(partitions: readonly number[]): Promise<Map<string, CommittedOffset>>;
  assignedPartitions(): readonly number[];
  /** Records behind the log end, keyed `topic:partition`, from the last probe. */
  lag(): ReadonlyMap<string, number>;
}

/** One partition's transactional producer (src/sink/transactions.ts). */
export interface SinkPort {
  /** Initialises the transactional id: fences the previous owner. */
  open(): Promise<void>;
  commit(records: readonly OutRecord[], offsets: readonly ConsumedOffset[]): Promise<void>;
  close(): Promise<void>;
}

export interface RestoredEntries {
  partition: number;
  /** Latest value per live key. */
  entries: ReadonlyMap<string, Uint8Array>;
}

export interface ChangelogPort {
  /** Reads the partitions' committed changelog entries to their end. */
  restore(partitions: readonly number[]): Promise<RestoredEntries[]>;
}

/** The keyed join (the Piscina pool, or the same code in-thread for tests). */
export interface JoinPort {
  process(batches: readonly TickBatch[]): Promise<JoinTaskResult[]>;
  restore(partition: number, entries: readonly [carId: string, state: Uint8Array][]): Promise<void>;
  drop(partition: number): Promise<void>;
  /** Set when a worker died with its state. */
  failure(): Error | undefined;
}

/** The pricing dispatcher, as far as the shell uses it. */
export interface PricingPort {
  readonly waiting: number;
  isFull(): boolean;
  add(car: Car, waitingSince: number): void;
  removeWhere(pred: (car: Car) => boolean): void;
  /** Cars finished (COMPLETED or FAILED_GET_PRICE) since the last call. */
  drainFinished(): Car[];
}

export interface ShellPorts {
  input: InputPort;
  sinkFor(partition: number): SinkPort;
  changelog: ChangelogPort;
  join: JoinPort;
  pricing: PricingPort;
  clock: Clock;
}
