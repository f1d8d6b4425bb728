// An in-process kit for the engine shell: a fake consumer that keeps pauses the way kafkajs
// does (across seek and reassignment), fake transactional sinks over an in-memory "Kafka"
// (committed offsets, changelog, outputs, producer epochs that fence), the join in the same
// thread, a pricing stand-in priced by hand, and a manual clock. Records written to the
// repartition topics (re-keyed parts and watermark markers) are kept in per-partition logs and
// delivered back to the owning task after each turn, as the consumer would once they commit.
// Lifecycle rules of the shell (task.ts, task-manager.ts, thread.ts) then get millisecond
// tests without a broker.
import type { KafkaMessage } from "kafkajs";
import type { Car, InputRole, Lane } from "../../src/domain.ts";
import { INPUT_ROLES, LANES } from "../../src/domain.ts";
import type {
  ChangelogPort,
  CommittedOffset,
  ConsumedOffset,
  InputPort,
  JoinPort,
  OutRecord,
  PricingPort,
  RestoredEntries,
  ShellPorts,
  SinkPort,
} from "../../src/engine/ports.ts";
import { TaskManager, type TaskManagerObserver } from "../../src/engine/task-manager.ts";
import { StreamThread } from "../../src/engine/thread.ts";
import type { TickBatch } from "../../src/join/pool.ts";
import type { JoinOutput, JoinTaskResult } from "../../src/join/protocol.ts";
import { unpack, pack } from "../../src/join/batch.ts";
import { SafeTimeBuffer } from "../../src/join/safe-time.ts";
import { JoinShard } from "../../src/join/shard.ts";
import { joinStep, type PartitionState } from "../../src/join/step.ts";
import { decodeCarState } from "../../src/join/codec.ts";
import { FencedError } from "../../src/sink/transactions.ts";

export const TOPICS = {
  body: "body",
  engine: "engine",
  remoteControl: "remote",
  wheel: "wheel",
  completed: "completed",
  incomplete: "incomplete",
  dlq: "dlq",
  changelog: "changelog",
  repartition: { body: "body-repartition", engine: "engine-repartition", remoteControl: "remote-repartition", wheel: "wheel-repartition" },
};

const REPARTITION_TOPICS: ReadonlySet<string> = new Set(Object.values(TOPICS.repartition));

function laneTopic(lane: Lane): string {
  return lane.route === "direct" ? TOPICS[lane.role] : TOPICS.repartition[lane.role];
}

export class ManualClock {
  constructor(public t = 1_000_000) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** What the fake broker holds: committed offsets, changelog, outputs, and each partition's producer epoch. */
export class FakeKafka {
  readonly committed = new Map<string, string>();
  readonly committedMetadata = new Map<string, string>();
  /** The repartition topics' committed records, per `topic:partition`, in offset order. */
  readonly logs = new Map<string, KafkaMessage[]>();
  readonly changelog = new Map<number, Map<string, Uint8Array>>();
  readonly outputs: OutRecord[] = [];
  /** Every changelog record committed, in order (the changelog map keeps only the latest). */
  readonly changelogWrites: OutRecord[] = [];
  readonly epochs = new Map<number, number>();
  transactions = 0;
  /** The next commit of these partitions fails (outcome: nothing written). */
  readonly failNext = new Set<number>();
}

export class FakeSink implements SinkPort {
  private epoch = -1;
  constructor(
    private readonly kafka: FakeKafka,
    private readonly partition: number,
  ) {}

  async open(): Promise<void> {
    this.epoch = (this.kafka.epochs.get(this.partition) ?? 0) + 1;
    this.kafka.epochs.set(this.partition, this.epoch);
  }

  async commit(records: readonly OutRecord[], offsets: readonly ConsumedOffset[]): Promise<void> {
    await Promise.resolve();
    if (this.kafka.epochs.get(this.partition) !== this.epoch) throw new FencedError(`p${this.partition} fenced`);
    if (this.kafka.failNext.delete(this.partition)) throw new Error(`p${this.partition}: the broker went away`);
    for (const r of records) {
      if (r.topic === TOPICS.changelog) {
        this.kafka.changelogWrites.push(r);
        const entries = this.kafka.changelog.get(this.partition) ?? new Map<string, Uint8Array>();
        this.kafka.changelog.set(this.partition, entries);
        if (r.value === null) entries.delete(r.key!);
        else entries.set(r.key!, typeof r.value === "string" ? Buffer.from(r.value) : r.value);
      } else if (REPARTITION_TOPICS.has(r.topic)) {
        const key = `${r.topic}:${r.partition}`;
        const log = this.kafka.logs.get(key) ?? [];
        this.kafka.logs.set(key, log);
        const headers: Record<string, Buffer> = {};
        for (const [k, v] of Object.entries(r.headers ?? {})) headers[k] = Buffer.isBuffer(v) ? v : Buffer.from(v);
        log.push({
          offset: String(log.length),
          timestamp: r.timestamp ?? String(Date.now()),
          key: r.key === null ? null : Buffer.from(r.key),
          value: r.value === null ? null : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value),
          headers,
          attributes: 0,
        } as KafkaMessage);
      } else this.kafka.outputs.push(r);
    }
    for (const o of offsets) {
      this.kafka.committed.set(`${o.topic}:${o.partition}`, o.offset);
      if (o.metadata !== undefined) this.kafka.committedMetadata.set(`${o.topic}:${o.partition}`, o.metadata);
    }
    this.kafka.transactions++;
  }

  async close(): Promise<void> {}
}

/** A consumer as kafkajs behaves: a pause lasts until resumed, whatever seek or reassignment happens. */
export class FakeInput implements InputPort {
  readonly paused = new Set<string>();
  readonly seeks: string[] = [];
  /** Next repartition record to deliver per `topic:partition` (moved by seeks). */
  readonly hopPositions = new Map<string, number>();
  assigned: number[] = [];
  readonly lags = new Map<string, number>();

  constructor(private readonly kafka: FakeKafka) {}

  pause(role: InputRole, partition: number): void {
    this.paused.add(`${TOPICS[role]}:${partition}`);
  }
  resume(role: InputRole, partition: number): void {
    this.paused.delete(`${TOPICS[role]}:${partition}`);
  }
  seek(lane: Lane, partition: number, offset: string): void {
    const topic = laneTopic(lane);
    if (lane.route === "hop") this.hopPositions.set(`${topic}:${partition}`, Number(offset));
    else this.seeks.push(`${topic}:${partition}@${offset}`);
  }
  async committedOffsets(partitions: readonly number[]): Promise<Map<string, CommittedOffset>> {
    const out = new Map<string, CommittedOffset>();
    for (const p of partitions) {
      for (const lane of LANES) {
        const key = `${laneTopic(lane)}:${p}`;
        out.set(key, { offset: this.kafka.committed.get(key) ?? "0", metadata: this.kafka.committedMetadata.get(key) ?? null });
      }
    }
    return out;
  }
  assignedPartitions(): readonly number[] {
    return this.assigned;
  }
  lag(): ReadonlyMap<string, number> {
    return this.lags;
  }
  isPaused(role: InputRole, partition: number): boolean {
    return this.paused.has(`${TOPICS[role]}:${partition}`);
  }
}

/** The join workers' code path (pack, src/join/step.ts) in this thread, one worker's state per partition. */
export class InThreadJoin implements JoinPort {
  private readonly states = new Map<number, PartitionState>();
  constructor(private readonly options: { joinTimeoutMs: number; dedupRetentionMs: number; partitions: number }) {}

  private state(p: number): PartitionState {
    let s = this.states.get(p);
    if (!s) this.states.set(p, (s = { shard: new JoinShard(this.options), buffer: new SafeTimeBuffer(LANES.length) }));
    return s;
  }

  async process(batches: readonly TickBatch[]): Promise<JoinTaskResult[]> {
    const outputs: JoinOutput[] = [];
    const progress = batches.map((b) =>
      joinStep(
        this.state(b.partition),
        b.partition,
        unpack(pack(b.partition, b.records, b.safeTime)),
        b.safeTime,
        {
          maxPartBytes: 65536,
          topics: TOPICS,
          partitions: this.options.partitions,
        },
        outputs,
      ),
    );
    let open = 0;
    for (const s of this.states.values()) open += s.shard.openCars();
    return [{ outputs, progress, openCars: open, heapUsedBytes: 0 }];
  }

  async restore(partition: number, entries: readonly [string, Uint8Array][]): Promise<void> {
    const shard = this.state(partition).shard;
    for (const [carId, bytes] of entries) shard.restore(carId, decodeCarState(bytes));
  }

  async drop(partition: number): Promise<void> {
    this.states.delete(partition);
  }

  failure(): Error | undefined {
    return undefined;
  }
}

/** Cars wait until the test prices them. */
export class HandPricing implements PricingPort {
  private readonly cars = new Map<string, Car>();
  private finished: Car[] = [];
  /** instant: every car is priced the moment it starts waiting. */
  constructor(
    private readonly bound: number,
    private readonly instant = false,
  ) {}

  get waiting(): number {
    return this.cars.size;
  }
  isFull(): boolean {
    return this.cars.size >= this.bound;
  }
  add(car: Car, since: number): void {
    this.cars.set(`${car.carId}/${car.firstPartAt}`, car);
    if (this.instant) this.priceAll(since);
  }
  removeWhere(pred: (car: Car) => boolean): void {
    for (const [k, c] of this.cars) if (pred(c)) this.cars.delete(k);
  }
  drainFinished(): Car[] {
    const out = this.finished;
    this.finished = [];
    return out;
  }
  /** Prices every waiting car at 1 cent a part. */
  priceAll(now: number): void {
    for (const car of this.cars.values()) this.finished.push({ ...car, situation: "COMPLETED", prices: {}, totalPrice: 0.07, pricedAt: now });
    this.cars.clear();
  }
}

export class FakeChangelog implements ChangelogPort {
  constructor(private readonly kafka: FakeKafka) {}
  async restore(partitions: readonly number[]): Promise<RestoredEntries[]> {
    return partitions.map((p) => ({ partition: p, entries: new Map(this.kafka.changelog.get(p) ?? []) }));
  }
}

export interface Shell {
  kafka: FakeKafka;
  input: FakeInput;
  pricing: HandPricing;
  clock: ManualClock;
  tasks: TaskManager;
  thread: StreamThread;
  events: string[];
  /** Delivers records of one input topic-partition to its task, as the source would. */
  deliver(role: InputRole, partition: number, messages: KafkaMessage[], atLogEnd?: boolean): number;
  /** One loop turn, then waits for the transactions it started and delivers what they wrote to the repartition topics. */
  turn(): Promise<void>;
}

export function shell(
  opts: {
    maxBufferedRecords?: number;
    maxWaitingParts?: number;
    maxWaitingCars?: number;
    joinTimeoutMs?: number;
    maxClockSkewMs?: number;
    instantPricing?: boolean;
    /** Partitions of the input topics (default 1: every car is partition 0's). */
    partitions?: number;
  } = {},
): Shell {
  const partitions = opts.partitions ?? 1;
  const kafka = new FakeKafka();
  const input = new FakeInput(kafka);
  const pricing = new HandPricing(opts.maxWaitingCars ?? 1000, opts.instantPricing);
  const clock = new ManualClock();
  const ports: ShellPorts = {
    input,
    sinkFor: (p) => new FakeSink(kafka, p),
    changelog: new FakeChangelog(kafka),
    join: new InThreadJoin({ joinTimeoutMs: opts.joinTimeoutMs ?? 5000, dedupRetentionMs: 60_000, partitions }),
    pricing,
    clock,
  };
  const events: string[] = [];
  const observer: TaskManagerObserver = {
    restored: (ps) => events.push(`restored ${ps.join(",")}`),
    closed: (p, why) => events.push(`closed ${p} ${why === "revoked" ? why : why.name}`),
    takeFailed: (ps, e) => events.push(`take failed ${ps.join(",")}: ${e.message}`),
    committed: (r) => events.push(`commit ${r.partition} ${r.error === undefined ? "ok" : "failed"}`),
    released: () => {},
    joined: () => {},
    priced: () => {},
  };
  const tasks = new TaskManager(
    ports,
    {
      idleGraceMs: 500,
      maxBufferedRecords: opts.maxBufferedRecords ?? 100,
      maxClockSkewMs: opts.maxClockSkewMs ?? 60_000,
      maxDriftMs: 10_000,
      maxWaitingParts: opts.maxWaitingParts ?? 20_000,
      partitions,
      topics: TOPICS,
      migratedBackoffMs: 6000,
    },
    observer,
  );
  const thread = new StreamThread(
    ports,
    tasks,
    { commitIntervalMs: 50, maxWaitingCars: opts.maxWaitingCars ?? 1000 },
    { processed: () => {}, turnFailed: (e) => events.push(`turn failed: ${e.message}`) },
  );
  return {
    kafka,
    input,
    pricing,
    clock,
    tasks,
    thread,
    events,
    deliver: (role, partition, messages, atLogEnd = false) =>
      tasks.task(partition)?.addRecords({ role, route: "direct" }, messages, clock.now(), atLogEnd) ?? 0,
    turn: async () => {
      await thread.runOnce();
      await Promise.all(tasks.all().map((t) => t.settled()));
      for (const task of tasks.running()) {
        for (const role of INPUT_ROLES) {
          const key = `${TOPICS.repartition[role]}:${task.partition}`;
          const log = kafka.logs.get(key) ?? [];
          const from = input.hopPositions.get(key) ?? 0;
          if (from >= log.length) continue;
          input.hopPositions.set(key, log.length);
          task.addRecords({ role, route: "hop" }, log.slice(from), clock.now(), true);
        }
      }
    },
  };
}

/** A Kafka message of a valid part of `role` for car `carId`. */
export function partMessage(role: InputRole, carId: string, partId: string, offset: number, timestamp: number, placement = "FRONT_LEFT"): KafkaMessage {
  const part: Record<string, unknown> = { carId, partId, sku: `SKU-${role}` };
  if (role === "body") Object.assign(part, { color: "red", material: "abs", weightKg: 1.2 });
  if (role === "remoteControl") part.channelFrequency = "RF_27";
  if (role === "wheel") part.placement = placement;
  return message(offset, timestamp, carId, JSON.stringify(part));
}

export function message(offset: number, timestamp: number, key: string | null, value: string | null): KafkaMessage {
  return {
    offset: String(offset),
    timestamp: String(timestamp),
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(value),
    attributes: 0,
    headers: {},
  } as unknown as KafkaMessage;
}
