// A task's record collector: everything one partition produced since its last commit —
// output cars, dead letters, records re-keyed to the repartition topics, the watermark it
// announces there, changelog entries (the latest per key, as Kafka Streams' record cache keeps
// them) and the position of every lane — and the transaction that writes it.
// While one transaction is in flight the next batch fills: a commit overlaps the next tick's
// processing, and transactions of one partition still commit strictly one after the other.
import type { Car, DeadLetter, InputRole } from "../domain.ts";
import { INPUT_ROLES } from "../domain.ts";
import type { RawRecord } from "../join/index.ts";
import type { ConsumedOffset, OutRecord } from "./ports.ts";

export interface CollectorTopics {
  completed: string;
  incomplete: string;
  dlq: string;
  changelog: string;
  /** Each input role's repartition topic. */
  repartition: Record<InputRole, string>;
}

/** Headers of the repartition topics: where a re-keyed record came from, its original key, and a task's watermark announcement. */
export const ORIGIN_HEADER = "rccar-origin";
export const KEY_HEADER = "rccar-key";
export const WATERMARK_HEADER = "rccar-watermark";

/** How often an idle partition announces its watermark (it bounds how late the safe time follows the clock). */
export const ANNOUNCE_INTERVAL_MS = 100;

/** What one transaction carries. */
export interface CommitBatch {
  records: OutRecord[];
  offsets: ConsumedOffset[];
  /** Output records by situation (DEAD_LETTER for dead letters), for metrics once committed. */
  situations: Map<string, number>;
  /** Where each dead letter came from and why, for the status page once committed. */
  deadLetters: DeadLetterNote[];
  /** When the oldest of its contents was collected (for the commit-wait stage). */
  since: number;
  /** The partition progressed: an input offset moved forward, or parts were joined (not only markers read). */
  advanced: boolean;
}

export interface DeadLetterNote extends SourceCoordinates {
  reason: string;
}

/** A changelog value, null (a tombstone), or how to encode it once it is written. */
export type ChangelogValue = Buffer | null | (() => Buffer);

export interface SourceCoordinates {
  topic: string;
  partition: number;
  offset: string;
}

export class RecordCollector {
  private outputs: OutRecord[] = [];
  private changelog = new Map<string, ChangelogValue>();
  /** Keys first written in this batch that no earlier transaction holds (see `fresh`). */
  private fresh = new Set<string>();
  private offsets = new Map<string, ConsumedOffset>();
  private advanced = false;
  /** The watermark to announce to every repartition topic-partition, the last one announced, and when. */
  private watermark = Number.NEGATIVE_INFINITY;
  private announced = Number.NEGATIVE_INFINITY;
  private announcedAt = Number.NEGATIVE_INFINITY;
  private situations = new Map<string, number>();
  private deadLetters: DeadLetterNote[] = [];
  private since = Number.POSITIVE_INFINITY;

  constructor(
    readonly partition: number,
    private readonly topics: CollectorTopics,
    /** Partitions of the input (and repartition) topics. */
    private readonly partitions: number,
    private readonly now: () => number,
  ) {}

  get isEmpty(): boolean {
    return this.outputs.length === 0 && this.changelog.size === 0 && this.offsets.size === 0 && !this.announcing();
  }

  /**
   * A moved watermark is announced with the next transaction, but an idle partition (whose
   * watermark follows the clock) at most every ANNOUNCE_INTERVAL_MS: 4 × N markers per
   * transaction would otherwise keep every task committing all the time.
   */
  private announcing(): boolean {
    return this.watermark > this.announced && (this.outputs.length > 0 || this.now() - this.announcedAt >= ANNOUNCE_INTERVAL_MS);
  }

  /**
   * A part of this partition's input that belongs to partition `to`'s car `carId`: written to
   * the role's repartition topic there, keyed by carId, with its original timestamp, key and
   * coordinates (dead letters and the event-time order name the record as the producer wrote it).
   */
  hop(role: InputRole, to: number, carId: string, record: RawRecord): void {
    const headers: Record<string, string | Buffer> = { [ORIGIN_HEADER]: `${this.partition}:${record.offset}` };
    if (record.key !== null) headers[KEY_HEADER] = record.key;
    this.output(
      { topic: this.topics.repartition[role], partition: to, key: carId, value: record.value, timestamp: String(record.timestamp), headers },
      "REPARTITIONED",
    );
  }

  /**
   * This partition's announced watermark (PartitionGroup.announcedWatermark): everything it
   * keeps or re-keys from now on has a timestamp at or above it (late records aside). Announced to every repartition topic-partition in the
   * next transaction, after the records it covers (src/engine/safe-time.ts).
   */
  announce(watermark: number): void {
    if (watermark <= this.watermark) return;
    this.watermark = watermark;
    if (watermark > this.announced) this.touch();
  }

  car(car: Car): void {
    const topic = car.situation === "COMPLETED" ? this.topics.completed : this.topics.incomplete;
    this.output({ topic, key: car.carId, value: JSON.stringify(car) }, car.situation);
  }

  deadLetter(source: SourceCoordinates, key: Buffer | null, value: Buffer | null, reason: string): void {
    const letter: DeadLetter = {
      topic: source.topic,
      partition: source.partition,
      offset: source.offset,
      key: key === null ? null : key.toString("utf8"),
      value: value === null ? "" : value.toString("base64"),
      reason,
    };
    this.output({ topic: this.topics.dlq, key: letter.key, value: JSON.stringify(letter) }, "DEAD_LETTER");
    this.deadLetters.push({ topic: source.topic, partition: source.partition, offset: source.offset, reason });
  }

  /**
   * A changelog entry of this partition; null deletes the key. Only the latest per key is
   * written, and a value given as a function is encoded only if it is still the latest when the
   * batch is taken. `fresh`: no earlier transaction wrote this key, so deleting it before the
   * batch is taken writes nothing at all (Kafka Streams' record cache does the same): a car
   * assembled and priced within one commit interval leaves no waiting-car entry behind.
   */
  state(key: string, value: ChangelogValue, fresh = false): void {
    this.touch();
    if (value === null && this.fresh.delete(key)) {
      this.changelog.delete(key);
      return;
    }
    if (fresh) this.fresh.add(key);
    this.changelog.set(key, value);
  }

  /** The position of a lane's topic-partition to commit, with what its next owner needs to resume there. */
  consumed(topic: string, nextOffset: string, metadata?: string): void {
    this.touch();
    this.offsets.set(topic, { topic, partition: this.partition, offset: nextOffset, ...(metadata === undefined ? {} : { metadata }) });
  }

  /** What this batch commits is progress (for /health's stall detection). */
  progressed(): void {
    this.advanced = true;
  }

  /** Hands over everything collected so far as one transaction's content, and starts afresh. */
  take(): CommitBatch {
    const records = this.outputs;
    for (const [key, value] of this.changelog)
      records.push({ topic: this.topics.changelog, partition: this.partition, key, value: typeof value === "function" ? value() : value });
    if (this.announcing()) {
      this.announced = this.watermark;
      this.announcedAt = this.now();
      const headers = { [WATERMARK_HEADER]: `${this.partition}:${this.watermark}` };
      for (const role of INPUT_ROLES) {
        for (let to = 0; to < this.partitions; to++) records.push({ topic: this.topics.repartition[role], partition: to, key: null, value: null, headers });
      }
    }
    const batch: CommitBatch = {
      records,
      offsets: [...this.offsets.values()],
      situations: this.situations,
      deadLetters: this.deadLetters,
      // A watermark held back by the announce interval was collected before: count from now.
      since: Math.min(this.since, this.now()),
      advanced: this.advanced,
    };
    this.advanced = false;
    this.outputs = [];
    this.changelog = new Map();
    this.fresh = new Set();
    this.offsets = new Map();
    this.situations = new Map();
    this.deadLetters = [];
    this.since = Number.POSITIVE_INFINITY;
    return batch;
  }

  private touch(): void {
    if (this.since === Number.POSITIVE_INFINITY) this.since = this.now();
  }

  private output(record: OutRecord, situation: string): void {
    this.touch();
    this.outputs.push(record);
    this.situations.set(situation, (this.situations.get(situation) ?? 0) + 1);
  }
}
