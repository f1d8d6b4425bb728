// A task's record collector: everything one partition produced since its last commit —
// output cars, dead letters, changelog entries (the latest per key, as Kafka Streams' record
// cache keeps them) and the next input offset per topic — and the transaction that writes it.
// While one transaction is in flight the next batch fills: a commit overlaps the next tick's
// processing, and transactions of one partition still commit strictly one after the other.
import type { Car, DeadLetter } from "../domain.ts";
import type { ConsumedOffset, OutRecord, SinkPort } from "./ports.ts";

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
}

export interface SourceCoordinates {
  topic: string;
  partition: number;
  offset: string;
}

export class RecordCollector {
  private outputs: OutRecord[] = [];
  private changelog = new Map<string, Buffer | null>();
  private offsets = new Map<string, string>();
  private situations = new Map<string, number>();

  constructor(
    readonly partition: number,
    private readonly topics: CollectorTopics,
  ) {}

  get isEmpty(): boolean {
    return this.outputs.length === 0 && this.changelog.size === 0 && this.offsets.size === 0;
  }

  car(car: Car): void {
    const topic = car.situation === "COMPLETED" ? this.topics.completed : this.topics.incomplete;
    this.output({ topic, key: car.carId, value: JSON.stringify(car) }, car.situation);
  }

  deadLetter(source: SourceCoordinates, key: Buffer | null, value: Buffer | null, reason: string): DeadLetter {
    const letter: DeadLetter = {
      topic: source.topic,
      partition: source.partition,
      offset: source.offset,
      key: key === null ? null : key.toString("utf8"),
      value: value === null ? "" : value.toString("base64"),
      reason,
    };
    this.output({ topic: this.topics.dlq, key: letter.key, value: JSON.stringify(letter) }, "DEAD_LETTER");
    return letter;
  }

  /** A changelog entry of this partition; null deletes the key. Only the latest per key is written. */
  state(key: string, value: Buffer | null): void {
    this.changelog.set(key, value);
  }

  /** The input of `topic` is processed up to (not including) `nextOffset`. */
  consumed(topic: string, nextOffset: string): void {
    this.offsets.set(topic, nextOffset);
  }

  /** Hands over everything collected so far as one transaction's content, and starts afresh. */
  take(): CommitBatch {
    const records = this.outputs;
    for (const [key, value] of this.changelog) records.push({ topic: this.topics.changelog, partition: this.partition, key, value });
    const batch: CommitBatch = {
      records,
      offsets: [...this.offsets].map(([topic, offset]) => ({ topic, partition: this.partition, offset })),
      situations: this.situations,
    };
    this.outputs = [];
    this.changelog = new Map();
    this.offsets = new Map();
    this.situations = new Map();
    return batch;
  }

  private output(record: OutRecord, situation: string): void {
    this.outputs.push(record);
    this.situations.set(situation, (this.situations.get(situation) ?? 0) + 1);
  }
}

/** Writes one batch in one transaction of the partition's sink. */
export async function commitBatch(sink: SinkPort, batch: CommitBatch): Promise<void> {
  await sink.commit(batch.records, batch.offsets);
}
