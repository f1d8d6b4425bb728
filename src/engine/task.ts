// One input partition owned by this process (a "stream task"): partition p of the four input
// topics. It owns its lanes (the timestamp merge), its pauses, what it collected since its
// last commit, its transactional sink and its commit. Records fetched before the task last
// rewound to its committed offsets are dropped here; rewinding and closing give back every
// pause the task took.
import type { KafkaMessage } from "kafkajs";
import type { Car, InputRole } from "../domain.ts";
import { INPUT_ROLES, deadLetterReason } from "../domain.ts";
import { PartitionGroup, type LaneStats, type Released } from "../ingest/index.ts";
import type { JoinOutput, RawRecord } from "../join/index.ts";
import { RecordCollector, type CollectorTopics, type CommitBatch } from "./collector.ts";
import { PauseGate, type PauseReason } from "./pause-gate.ts";
import type { InputPort, SinkPort } from "./ports.ts";

/** What a lane holds per record: the raw record (the join workers decode it) and when it was fetched. */
export interface InputRecord extends RawRecord {
  fetchedAt: number;
  /** Set when the record's timestamp is unusable (SPEC §3): its dead-letter reason. */
  rejected?: string;
}

export type TaskState = "restoring" | "running" | "closed";

export interface TaskOptions {
  idleGraceMs: number;
  maxBufferedRecords: number;
  /** How far ahead of the engine's clock a record may be stamped (SPEC §3). */
  maxClockSkewMs: number;
  topics: CollectorTopics & Record<InputRole, string>;
}

/** The outcome of a commit, for metrics and progress. */
export interface CommitReport {
  partition: number;
  ms: number;
  /** How long the batch's oldest content waited for its transaction to start. */
  waitedMs: number;
  batch: CommitBatch;
  error?: unknown;
}

/** What a task tells its manager. */
export interface TaskHooks {
  committed(report: CommitReport): void;
  /** Records released by the merge this turn (for the merge-wait stage). */
  released(records: readonly Released<InputRecord>[]): void;
}

export class PartitionTask {
  state: TaskState = "restoring";
  readonly collector: RecordCollector;
  private readonly group: PartitionGroup<InputRecord>;
  private readonly gate: PauseGate;
  /**
   * Next offset expected per input topic since the task rewound to its committed offsets.
   * kafkajs may still hand over batches fetched before the seek; those are older and dropped.
   */
  private readonly expected = new Map<InputRole, bigint>();
  /** This tick's released records by `topic:offset`, built on the tick's first dead letter. */
  private released: ReadonlyArray<Released<InputRecord>> = [];
  private releasedIndex: Map<string, InputRecord> | undefined;
  private inFlight: Promise<void> | undefined;
  /** Set when a commit failed: the task is corrupted and must be rebuilt. */
  failure: unknown;

  constructor(
    readonly partition: number,
    readonly sink: SinkPort,
    private readonly input: InputPort,
    private readonly options: TaskOptions,
    private readonly hooks: TaskHooks,
    private readonly clock: () => number,
  ) {
    this.group = new PartitionGroup<InputRecord>({ idleGraceMs: options.idleGraceMs, maxBufferedPerTopic: options.maxBufferedRecords });
    this.gate = new PauseGate(partition, input);
    this.collector = new RecordCollector(partition, options.topics, clock);
  }

  get committing(): boolean {
    return this.inFlight !== undefined;
  }

  /**
   * Starts reading from the committed offsets (after the previous owner was fenced and the
   * state restored): forgets anything fetched before, seeks every topic-partition, and resumes
   * all four whoever paused them.
   */
  rewind(committed: ReadonlyMap<InputRole, string>): void {
    this.group.clear();
    this.gate.releaseAll();
    for (const role of INPUT_ROLES) {
      const offset = committed.get(role) ?? "0";
      this.input.seek(role, this.partition, offset);
      this.expected.set(role, BigInt(offset));
    }
    this.state = "running";
  }

  /** Records of one fetch of one topic-partition, in offset order. */
  addRecords(role: InputRole, messages: readonly KafkaMessage[], fetchedAt: number, atLogEnd: boolean): number {
    if (this.state !== "running") return 0;
    const expected = this.expected.get(role);
    if (expected === undefined) return 0;
    // Offsets ascend within a batch: only a batch that straddles `expected` needs filtering.
    const fresh = messages.length > 0 && BigInt(messages[0]!.offset) >= expected ? messages : messages.filter((m) => BigInt(m.offset) >= expected);
    if (fresh.length === 0) return 0;
    this.expected.set(role, BigInt(fresh[fresh.length - 1]!.offset) + 1n);
    const records: InputRecord[] = fresh.map((m) => this.inputRecord(m, fetchedAt));
    this.group.push(role, records, fetchedAt);
    if (atLogEnd) this.group.markCaughtUp(role, fetchedAt);
    this.gate.setLaneFull(role, this.group.isFull(role));
    return records.length;
  }

  markCaughtUp(role: InputRole, at: number): void {
    if (this.state === "running") this.group.markCaughtUp(role, at);
  }

  /**
   * Releases up to `limit` records in timestamp order and the watermark after them. Records
   * with an unusable timestamp become dead letters here (they never reach the join); every
   * released record's offset counts as consumed.
   */
  drain(limit: number): { records: Released<InputRecord>[]; watermark: number } {
    const { records, watermark } = this.group.drain(limit);
    if (records.length > 0) this.hooks.released(records);
    const last = new Map<InputRole, string>();
    let rejected = 0;
    for (const { role, record } of records) {
      last.set(role, record.offset);
      if (record.rejected === undefined) continue;
      rejected++;
      this.collector.deadLetter(
        { topic: this.options.topics[role], partition: this.partition, offset: record.offset },
        record.key,
        record.value,
        record.rejected,
      );
    }
    const joined = rejected === 0 ? records : records.filter((r) => r.record.rejected === undefined);
    for (const [role, offset] of last) this.collector.consumed(this.options.topics[role], (BigInt(offset) + 1n).toString());
    for (const role of INPUT_ROLES) if (this.gate.isPaused(role)) this.gate.setLaneFull(role, this.group.isFull(role));
    this.released = joined;
    this.releasedIndex = undefined;
    return { records: joined, watermark };
  }

  /** Routes one join output of this partition; returns the assembled car when it must be priced. */
  apply(out: JoinOutput, stateKey: (carId: string) => string): Car | undefined {
    switch (out.type) {
      case "state":
        this.collector.state(stateKey(out.carId), out.value === null ? null : Buffer.from(out.value.buffer, out.value.byteOffset, out.value.byteLength));
        return undefined;
      case "deadLetter": {
        const raw = this.releasedRecord(out.source.topic, out.source.offset);
        this.collector.deadLetter(out.source, raw?.key ?? null, raw?.value ?? null, out.reason);
        return undefined;
      }
      case "emit":
        if (out.car.situation === ("AWAITING_PRICE" as string)) return out.car;
        this.collector.car(out.car);
        return undefined;
    }
  }

  setNoRoom(noRoom: boolean): void {
    if (this.state === "running") this.gate.setNoRoom(noRoom);
  }

  pauses(): Map<InputRole, PauseReason[]> {
    return this.gate.reasons();
  }

  lanes(): LaneStats[] {
    return this.group.stats();
  }

  buffered(): number {
    return this.group.buffered();
  }

  watermark(): number {
    return this.group.currentWatermark();
  }

  /** Starts a transaction with what was collected, unless one is in flight or nothing is there. */
  commit(): void {
    if (this.state !== "running" || this.inFlight !== undefined || this.failure !== undefined || this.collector.isEmpty) return;
    const batch = this.collector.take();
    const t0 = this.clock();
    const report = (error?: unknown): CommitReport => ({
      partition: this.partition,
      ms: this.clock() - t0,
      waitedMs: t0 - batch.since,
      batch,
      ...(error === undefined ? {} : { error }),
    });
    this.inFlight = this.sink.commit(batch.records, batch.offsets).then(
      () => {
        this.inFlight = undefined;
        this.hooks.committed(report());
      },
      (error: unknown) => {
        this.inFlight = undefined;
        this.failure = error;
        this.hooks.committed(report(error));
      },
    );
  }

  /** Resolves when no transaction of this task is in flight. */
  async settled(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  /** Stops the task: waits for its transaction, gives back its pauses, closes its sink. Its state stays in Kafka. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    const wasRunning = this.state === "running";
    this.state = "closed";
    await this.settled();
    if (wasRunning) this.gate.releaseAll();
    await this.sink.close();
  }

  private inputRecord(m: KafkaMessage, fetchedAt: number): InputRecord {
    const timestamp = Number(m.timestamp);
    const record: InputRecord = { offset: m.offset, timestamp, fetchedAt, key: m.key, value: m.value };
    // SPEC §3: a producer's wrong clock must not move the watermark. The record keeps its
    // place in its lane (its offset is committed in order) but sorts first and moves nothing.
    if (!(timestamp >= 0)) {
      record.rejected = deadLetterReason("BAD_TIMESTAMP", `record timestamp ${m.timestamp} is not a usable time`);
      record.timestamp = Number.NEGATIVE_INFINITY;
    } else if (timestamp - fetchedAt > this.options.maxClockSkewMs) {
      record.rejected = deadLetterReason(
        "FUTURE_TIMESTAMP",
        `stamped ${timestamp - fetchedAt} ms ahead of the engine's clock (MAX_CLOCK_SKEW_MS=${this.options.maxClockSkewMs})`,
      );
      record.timestamp = Number.NEGATIVE_INFINITY;
    }
    return record;
  }

  private releasedRecord(topic: string, offset: string): InputRecord | undefined {
    if (this.releasedIndex === undefined) {
      this.releasedIndex = new Map();
      for (const { role, record } of this.released) this.releasedIndex.set(`${this.options.topics[role]}:${record.offset}`, record);
    }
    return this.releasedIndex.get(`${topic}:${offset}`);
  }
}
