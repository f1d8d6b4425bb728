// A task's record collector: everything one partition produced since its last commit —
// output cars, dead letters, changelog entries (the latest per key, as Kafka Streams' record
// cache keeps them) and the next input offset per topic — and the transaction that writes it.
// While one transaction is in flight the next batch fills: a commit overlaps the next tick's
// processing, and transactions of one partition still commit strictly one after the other.
import type { Car, DeadLetter } from "../domain.ts";
import type { ConsumedOffset, OutRecord } from "./ports.ts";

export interface CollectorTopics {
  completed: string;
  incomplete: string;
  dlq: string;
  changelog: string;
}

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
  private offsets = new Map<string, string>();
  private situations = new Map<string, number>();
  private deadLetters: DeadLetterNote[] = [];
  private since = Number.POSITIVE_INFINITY;

  constructor(
    readonly partition: number,
    private readonly topics: CollectorTopics,
    private readonly now: () => number,
  ) {}

  get isEmpty(): boolean {
    return this.outputs.length === 0 && this.changelog.size === 0 && this.offsets.size === 0;
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

  /** The input of `topic` is processed up to (not including) `nextOffset`. */
  consumed(topic: string, nextOffset: string): void {
    this.touch();
    this.offsets.set(topic, nextOffset);
  }

  /** Hands over everything collected so far as one transaction's content, and starts afresh. */
  take(): CommitBatch {
    const records = this.outputs;
    for (const [key, value] of this.changelog)
      records.push({ topic: this.topics.changelog, partition: this.partition, key, value: typeof value === "function" ? value() : value });
    const batch: CommitBatch = {
      records,
      offsets: [...this.offsets].map(([topic, offset]) => ({ topic, partition: this.partition, offset })),
      situations: this.situations,
      deadLetters: this.deadLetters,
      since: this.since,
    };
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
