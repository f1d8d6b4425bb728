// One input partition owned by this process (a "stream task"): partition p of the four input
// topics and of their four repartition topics. It owns its lanes (the timestamp merge of its
// input, stage 1, and the records re-keyed to it), its safe time, its pauses, what it
// collected since its last commit, its transactional sink and its commit. Records fetched
// before the task last rewound to its committed positions are dropped here; rewinding and
// closing give back every pause the task took.
import type { KafkaMessage } from "kafkajs";
import type { Car, InputRole, Lane } from "../domain.ts";
import { INPUT_ROLES, LANES, ROLE_INDEX, deadLetterReason, laneIndex } from "../domain.ts";
import { PartitionGroup, type LaneStats, type Released } from "../ingest/index.ts";
import type { JoinOutput, RawRecord, TickRecord } from "../join/index.ts";
import { KEY_HEADER, ORIGIN_HEADER, RecordCollector, WATERMARK_HEADER, type CollectorTopics, type CommitBatch } from "./collector.ts";
import { decodePosition, encodePosition, encodeStoredPosition, type LanePosition } from "./lane-position.ts";
import { hopSeenKey, positionKey } from "../state/index.ts";
import { PauseGate, type PauseReason } from "./pause-gate.ts";
import type { InputPort, SinkPort } from "./ports.ts";
import { JoinBudget, type TakenPart } from "./join-budget.ts";
import { SafeTime } from "./safe-time.ts";

/** What a lane holds per record: the raw record (the join workers decode it) and when it was fetched. */
export interface InputRecord extends RawRecord {
  fetchedAt: number;
  /** Set when the record's timestamp is unusable (SPEC §3): its dead-letter reason. */
  rejected?: string;
  /** A marker on a repartition topic: a source partition's announced watermark (safe-time.ts rule 1). */
  announces?: { source: number; watermark: number };
}

export type TaskState = "restoring" | "running" | "closed";

export interface TaskOptions {
  idleGraceMs: number;
  maxBufferedRecords: number;
  /** How far ahead of the engine's clock a record may be stamped (SPEC §3). */
  maxClockSkewMs: number;
  /** Alignment: how far stage 1 may run ahead of the safe time (safe-time.ts rule 5). */
  maxDriftMs: number;
  /** Parts waiting for the safe time (in the workers) before stage 1 stops releasing (safe-time.ts rule 6). */
  maxWaitingParts: number;
  /** Partitions of the input topics. */
  partitions: number;
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
  /** How long (ms) each part joined this turn waited for the safe time (the safe-time wait stage). */
  joined(waitedMs: readonly number[]): void;
}

export class PartitionTask {
  state: TaskState = "restoring";
  readonly collector: RecordCollector;
  private readonly group: PartitionGroup<InputRecord>;
  private readonly gate: PauseGate;
  /** Records read from the repartition topics, per role, in offset order, until the next tick hands them over. */
  private hopLanes: InputRecord[][] = INPUT_ROLES.map(() => []);
  private safeTime: SafeTime;
  /** The join's safe time: the partition's, held back by the room for cars waiting for prices. */
  private budget = new JoinBudget();
  /** The last tick's budget held the join's safe time back for lack of room (join-budget.ts). */
  heldForRoom = false;
  /**
   * Per lane (index in LANES) since the task last rewound: the next offset expected (kafkajs may
   * still hand over batches fetched before the seek; those are older and dropped), the offset
   * records were handed over up to, the committed handedOver of the previous owner, and the
   * first offset still waiting in a join worker (-1: none).
   */
  private readonly expected: bigint[] = LANES.map(() => 0n);
  private readonly handedOver: number[] = LANES.map(() => 0);
  private readonly replayUntil: number[] = LANES.map(() => 0);
  private replaySafeTime = Number.NEGATIVE_INFINITY;
  private lowestPending: number[] = LANES.map(() => -1);
  private pendingParts = 0;
  /** The position last given to the collector per lane, so unchanged ones are not committed again. */
  private readonly positions: string[] = LANES.map(() => "");
  /** The join's safe time at the last settle (its moving with parts around is progress). */
  private settledSafeTime = Number.NEGATIVE_INFINITY;
  /**
   * Per (role, source partition), the highest origin offset taken from the repartition lanes:
   * a source re-keys a lane's records in offset order, so a record at or below it is a copy
   * (the duplicate guard; `dirty`: changed since the last settle, written to the changelog).
   */
  private hopSeen: number[] = [];
  private readonly hopSeenDirty = new Set<number>();
  /** Records re-keyed this tick, written in (lane, offset) order at the end of the tick. */
  private rekeyed: { lane: number; offset: number; to: number; carId: string; record: RawRecord }[] = [];
  /** Copies dropped by the duplicate guard (for metrics). */
  duplicatesDropped = 0;
  /** This tick's records by `lane:offset`, built on the tick's first re-keyed record. */
  private handed: ReadonlyArray<TickRecord> = [];
  private handedIndex: Map<string, RawRecord> | undefined;
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
    this.collector = new RecordCollector(partition, options.topics, options.partitions, clock);
    this.safeTime = new SafeTime(INPUT_ROLES.length, options.partitions);
  }

  get committing(): boolean {
    return this.inFlight !== undefined;
  }

  /**
   * Starts reading from the committed positions (after the previous owner was fenced and the
   * state restored): forgets anything fetched before, seeks every lane, resumes all four input
   * topic-partitions whoever paused them, and takes over what the previous owner handed over
   * and joined (lane-position.ts).
   */
  rewind(committed: ReadonlyMap<number, LanePosition>, hopSeen: ReadonlyMap<number, number> = new Map()): void {
    this.group.clear();
    this.hopLanes = INPUT_ROLES.map(() => []);
    this.gate.releaseAll();
    let floor = Number.NEGATIVE_INFINITY;
    LANES.forEach((lane, i) => {
      const position = committed.get(i) ?? decodePosition("0", null);
      this.input.seek(lane, this.partition, position.offset);
      this.expected[i] = BigInt(position.offset);
      this.handedOver[i] = Number(position.offset);
      this.replayUntil[i] = Number(position.handedOver);
      this.positions[i] = "";
      if (position.safeTime > floor) floor = position.safeTime;
    });
    this.replaySafeTime = floor;
    this.safeTime = new SafeTime(INPUT_ROLES.length, this.options.partitions, floor);
    this.budget = new JoinBudget(floor);
    this.heldForRoom = false;
    this.lowestPending = LANES.map(() => -1);
    this.pendingParts = 0;
    this.hopSeen = Array.from({ length: INPUT_ROLES.length * this.options.partitions }, (_, k) => hopSeen.get(k) ?? -1);
    this.hopSeenDirty.clear();
    this.rekeyed = [];
    this.state = "running";
  }

  /** Records of one fetch of one lane's topic-partition, in offset order. */
  addRecords(lane: Lane, messages: readonly KafkaMessage[], fetchedAt: number, atLogEnd: boolean): number {
    if (this.state !== "running") return 0;
    const i = laneIndex(lane.role, lane.route);
    const expected = this.expected[i]!;
    // Offsets ascend within a batch: only a batch that straddles `expected` needs filtering.
    const fresh = messages.length > 0 && BigInt(messages[0]!.offset) >= expected ? messages : messages.filter((m) => BigInt(m.offset) >= expected);
    if (fresh.length === 0) return 0;
    this.expected[i] = BigInt(fresh[fresh.length - 1]!.offset) + 1n;
    if (lane.route === "hop") {
      const queue = this.hopLanes[ROLE_INDEX[lane.role]]!;
      for (const m of fresh) queue.push(this.hopRecord(m, fetchedAt));
      return fresh.length;
    }
    const records: InputRecord[] = fresh.map((m) => this.inputRecord(m, fetchedAt));
    this.group.push(lane.role, records, fetchedAt);
    if (atLogEnd) this.group.markCaughtUp(lane.role, fetchedAt);
    this.gate.setLaneFull(lane.role, this.group.isFull(lane.role));
    return records.length;
  }

  markCaughtUp(role: InputRole, at: number): void {
    if (this.state === "running") this.group.markCaughtUp(role, at);
  }

  /**
   * Hands over one tick: up to `limit` input records released in timestamp order (stage 1,
   * held back by alignment), every record read from the repartition topics, and the join's
   * safe time after the markers among them, lowered so that the parts below it are of at most
   * `room` cars (join-budget.ts; `cars` is how many may complete; `bound` is the room when no
   * car waits). Records with an unusable timestamp become dead letters here (they never reach
   * the join); records the previous owner had finished are skipped.
   */
  drain(limit: number, room: number, bound: number): { records: TickRecord[]; safeTime: number; cars: number } {
    const until = this.safeTime.releaseBound(this.group.currentWatermark(), this.options.maxDriftMs);
    const full = this.safeTime.stageTwoFull(this.pendingParts, this.options.maxWaitingParts, this.group.announcedWatermark());
    const { records: released } = this.group.drain(full ? 0 : limit, until);
    if (released.length > 0) this.hooks.released(released);
    const out: TickRecord[] = [];
    for (const { role, record } of released) {
      const lane = ROLE_INDEX[role];
      const offset = Number(record.offset);
      this.handedOver[lane] = offset + 1;
      if (offset < this.replayUntil[lane]!) {
        if (record.rejected === undefined && record.timestamp >= this.replaySafeTime) out.push({ lane, replay: true, record });
      } else if (record.rejected !== undefined) {
        this.collector.deadLetter(
          { topic: this.options.topics[role], partition: this.partition, offset: record.offset },
          record.key,
          record.value,
          record.rejected,
        );
      } else {
        out.push({ lane, replay: false, record });
      }
    }
    INPUT_ROLES.forEach((role, r) => {
      const lane = laneIndex(role, "hop");
      for (const record of this.hopLanes[r]!) {
        const offset = Number(record.offset);
        this.handedOver[lane] = offset + 1;
        if (record.announces !== undefined) {
          this.safeTime.hear(r, record.announces.source, record.announces.watermark);
          continue;
        }
        const seen = r * this.options.partitions + (record.origin?.partition ?? 0);
        const originOffset = Number(record.origin?.offset ?? -1);
        if (offset >= this.replayUntil[lane]! && originOffset <= this.hopSeen[seen]!) {
          this.duplicatesDropped++;
          continue;
        }
        if (originOffset > this.hopSeen[seen]!) {
          this.hopSeen[seen] = originOffset;
          this.hopSeenDirty.add(seen);
        }
        if (!(offset < this.replayUntil[lane]! && record.timestamp < this.replaySafeTime)) out.push({ lane, replay: false, record });
      }
      this.hopLanes[r] = [];
    });
    const announced = this.group.announcedWatermark();
    this.collector.announce(announced);
    for (const role of INPUT_ROLES) if (this.gate.isPaused(role)) this.gate.setLaneFull(role, this.group.isFull(role));
    this.handed = out;
    this.handedIndex = undefined;
    const handed = out.map((r) => r.record.timestamp);
    const { safeTime, cars, held } = this.budget.advance(this.safeTime.advance(announced), room, handed, bound);
    this.heldForRoom = held;
    return { records: out, safeTime, cars };
  }

  /** Routes one join output of this partition; returns the assembled car when it must be priced. */
  apply(out: JoinOutput, stateKey: (carId: string) => string): Car | undefined {
    switch (out.type) {
      case "state":
        this.collector.state(stateKey(out.carId), out.value === null ? null : Buffer.from(out.value.buffer, out.value.byteOffset, out.value.byteLength));
        return undefined;
      case "deadLetter":
        this.collector.deadLetter(out.source, bytes(out.key), bytes(out.value), out.reason);
        return undefined;
      case "rekey": {
        const record = this.handedRecord(out.lane, out.offset);
        if (record === undefined) throw new Error(`partition ${this.partition}: re-keyed record ${out.lane}:${out.offset} was not handed over this tick`);
        this.rekeyed.push({ lane: out.lane, offset: Number(out.offset), to: out.to, carId: out.carId, record });
        return undefined;
      }
      case "emit":
        if (out.car.situation === ("AWAITING_PRICE" as string)) return out.car;
        this.collector.car(out.car);
        return undefined;
    }
  }

  /**
   * After a tick: what still waits in the join workers (per lane, the smallest offset, merged
   * over workers). Sets every lane's position to commit (lane-position.ts): the first record
   * not done, the handed-over position, and the safe time the tick joined up to.
   */
  settle(lowestPending: readonly number[], pendingParts: number, taken: readonly TakenPart[], touched: readonly { carId: string; slots: number }[]): void {
    // The workers answer in their own order: re-keyed records go out in offset order per lane,
    // which the receivers' duplicate guard relies on.
    this.rekeyed.sort((a, b) => a.lane - b.lane || a.offset - b.offset);
    for (const r of this.rekeyed) this.collector.hop(LANES[r.lane]!.role, r.to, r.carId, r.record);
    this.rekeyed = [];
    for (const k of this.hopSeenDirty) {
      const role = Math.floor(k / this.options.partitions);
      this.collector.state(hopSeenKey(role, k % this.options.partitions), Buffer.from(String(this.hopSeen[k])));
    }
    this.hopSeenDirty.clear();
    this.lowestPending = [...lowestPending];
    this.pendingParts = pendingParts;
    const waited = this.budget.settle(taken, touched, this.clock());
    if (waited.length > 0) this.hooks.joined(waited);
    const safeTime = this.budget.safeTime;
    if (safeTime > this.settledSafeTime && this.pendingParts + taken.length > 0) this.collector.progressed();
    this.settledSafeTime = safeTime;
    LANES.forEach((lane, i) => {
      const handedOver = Math.max(this.handedOver[i]!, this.replayUntil[i]!);
      const low = lowestPending[i]!;
      const offset = low >= 0 ? Math.min(low, this.handedOver[i]!) : this.handedOver[i]!;
      const metadata = encodePosition(String(handedOver), safeTime);
      const key = `${offset}|${metadata}`;
      if (key === this.positions[i]) return;
      if (lane.route === "direct" && !this.positions[i]!.startsWith(`${offset}|`)) this.collector.progressed();
      this.positions[i] = key;
      const topic = lane.route === "direct" ? this.options.topics[lane.role] : this.options.topics.repartition[lane.role];
      this.collector.consumed(topic, String(offset), metadata);
      this.collector.state(positionKey(topic), Buffer.from(encodeStoredPosition(String(offset), metadata)));
    });
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

  /** Records read and not handed over, plus parts waiting in the join workers for the safe time. */
  buffered(): number {
    let n = this.group.buffered() + this.pendingParts;
    for (const queue of this.hopLanes) for (const r of queue) if (r.announces === undefined) n++;
    return n;
  }

  /** Parts waiting in the join workers for the safe time (after the last tick). */
  waitingParts(): number {
    return this.pendingParts;
  }

  watermark(): number {
    return this.group.currentWatermark();
  }

  /** Which source partition's marker holds the safe time back (for /health), with its role. */
  laggard(): { role: InputRole; source: number; watermark: number } | undefined {
    const l = this.safeTime.laggard();
    return l === undefined ? undefined : { ...l, role: INPUT_ROLES[l.role]! };
  }

  /** The join's safe time: parts below it were joined. */
  currentSafeTime(): number {
    return this.budget.safeTime;
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

  /** A record of a repartition topic: a re-keyed part with its origin, or a marker. */
  private hopRecord(m: KafkaMessage, fetchedAt: number): InputRecord {
    const record: InputRecord = { offset: m.offset, timestamp: Number(m.timestamp), fetchedAt, key: null, value: m.value };
    const marker = header(m, WATERMARK_HEADER);
    if (marker !== undefined) {
      const [source, watermark] = splitPair(marker);
      record.announces = { source: Number(source), watermark: Number(watermark) };
      return record;
    }
    const [partition, offset] = splitPair(header(m, ORIGIN_HEADER) ?? `${this.partition}:${m.offset}`);
    record.origin = { partition: Number(partition), offset };
    const key = m.headers?.[KEY_HEADER];
    record.key = key === undefined ? null : Buffer.isBuffer(key) ? key : Buffer.from(String(key));
    if (m.key !== null) record.carIdKey = m.key;
    return record;
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

  private handedRecord(lane: number, offset: string): RawRecord | undefined {
    if (this.handedIndex === undefined) {
      this.handedIndex = new Map();
      for (const r of this.handed) this.handedIndex.set(`${r.lane}:${r.record.offset}`, r.record);
    }
    return this.handedIndex.get(`${lane}:${offset}`);
  }
}

function bytes(b: Uint8Array | null): Buffer | null {
  return b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function header(m: KafkaMessage, name: string): string | undefined {
  const h = m.headers?.[name];
  if (h === undefined) return undefined;
  return Buffer.isBuffer(h) ? h.toString("utf8") : String(h);
}

/** "a:b" → [a, b] (b may itself hold no colon; a never does). */
function splitPair(s: string): [string, string] {
  const i = s.indexOf(":");
  return [s.slice(0, i), s.slice(i + 1)];
}
