// The assembler: source → (decode, per-partition timestamp merge) → keyed join workers →
// pricing dispatcher → exactly-once sink. Each input partition is a task with its own
// transactional producer; every COMMIT_INTERVAL_MS the outputs, changelog entries and input
// offsets a task produced since the last commit leave in one transaction.
import type { Kafka, KafkaMessage } from "kafkajs";
import type { EngineSettings, KafkaSettings, Topics } from "../config.ts";
import { ConfigError, topicsOf } from "../config.ts";
import type { Car, DeadLetter, InputRole } from "../domain.ts";
import { INPUT_ROLES } from "../domain.ts";
import { createKafka, ensureTopics } from "../kafka.ts";
import { PartitionGroup, type Released } from "../ingest/merge.ts";
import { InputSource } from "../ingest/source.ts";
import { JoinPool } from "../join/pool.ts";
import type { JoinOutput, RawRecord } from "../join/protocol.ts";
import { PricingDispatcher } from "../pricing/dispatcher.ts";
import { joinKey, parseKey, priceKey, restorePartitions } from "../state/changelog.ts";
import { decodeWaitingCar, encodeWaitingCar } from "../state/waiting.ts";
import { PartitionSink, type OutRecord } from "../sink/transactions.ts";
import { EngineMetrics } from "./metrics.ts";

/** What the merger holds per record: the raw record (the join workers decode it) and when it was fetched. */
export interface InputRecord extends RawRecord {
  fetchedAt: number;
}

type TaskState = "restoring" | "active";

/** One input partition owned by this process. */
interface PartitionTask {
  partition: number;
  state: TaskState;
  group: PartitionGroup<InputRecord>;
  sink: PartitionSink;
  /** Output and dead-letter records since the last commit. */
  pending: OutRecord[];
  /**
   * Changelog entries since the last commit, the latest per key (as Kafka Streams' record
   * cache does): a car that opens, fills and leaves within one commit interval writes one
   * entry, not seven growing ones.
   */
  changelog: Map<string, Buffer | null>;
  /** Next offset per input topic, of records already processed but not yet committed. */
  offsets: Map<string, string>;
  /** The records handed to the workers this tick: the bytes a dead letter carries. */
  released: ReadonlyArray<Released<InputRecord>>;
  /** `topic:offset` → record, built on the tick's first dead letter (most ticks have none). */
  releasedIndex: Map<string, InputRecord> | undefined;
  paused: Set<InputRole>;
  /**
   * Next offset expected per input topic since the task rewound to the committed offsets.
   * kafkajs may still hand over batches fetched before the seek; those are older and dropped.
   */
  expected: Map<InputRole, bigint>;
}

export interface EngineStatus {
  ready: boolean;
  partitions: number[];
}

export class Engine {
  readonly metrics = new EngineMetrics();
  private readonly kafka: Kafka;
  private readonly topics: Topics;
  private readonly source: InputSource;
  private readonly pool: JoinPool;
  private readonly pricing: PricingDispatcher;
  private readonly tasks = new Map<number, PartitionTask>();
  /** Partitions whose last commit failed: rebuilt from Kafka before they process again. */
  private readonly broken = new Set<number>();
  /** Cars handed to pricing → the partition whose transaction must carry their outcome. */
  private readonly pricedPartition = new Map<string, number>();
  private running = false;
  private loop: Promise<void> | undefined;
  private assignmentWork: Promise<void> = Promise.resolve();
  private allPaused = false;
  /** Which partition drains first this tick, so a full waiting set does not starve the same one. */
  private rotation = 0;
  private fatal: Error | undefined;

  constructor(
    private readonly settings: EngineSettings,
    private readonly kafkaSettings: KafkaSettings,
    private readonly log: (line: string) => void = (l) => console.error(l),
  ) {
    this.kafka = createKafka(kafkaSettings, `rccar-engine-${settings.instanceId}`);
    this.topics = topicsOf(kafkaSettings);
    this.pool = new JoinPool({
      workers: settings.workers,
      shards: settings.shards,
      joinTimeoutMs: settings.joinTimeoutMs,
      dedupRetentionMs: settings.dedupRetentionMs,
      maxPartBytes: settings.maxPartBytes,
      topics: this.topics,
    });
    this.pricing = new PricingDispatcher({
      baseUrl: settings.priceApiUrl,
      maxInFlight: settings.priceMaxInFlight,
      ratePerSecond: settings.priceRatePerS,
      burst: settings.priceBurst,
      requestTimeoutMs: settings.priceRequestTimeoutMs,
      deadlineMs: settings.priceDeadlineMs,
      cacheTtlMs: settings.priceCacheTtlMs,
      retryBaseMs: settings.priceRetryBaseMs,
      retryMaxMs: settings.priceRetryMaxMs,
      maxWaitingCars: settings.priceMaxWaitingCars,
      onRequest: (ms) => this.metrics.priceLatency.observe(ms / 1000),
    });
    this.source = new InputSource(
      this.kafka,
      { groupId: settings.groupId, topics: this.topics, probeIntervalMs: 50, sessionTimeoutMs: settings.sessionTimeoutMs, log: (line) => this.log(line) },
      {
        onRecords: (role, partition, messages, fetchedAt, atLogEnd) => this.onRecords(role, partition, messages, fetchedAt, atLogEnd),
        onCaughtUp: (role, partition, at) => this.tasks.get(partition)?.group.markCaughtUp(role, at),
        onAssignment: (partitions) => {
          this.assignmentWork = this.assignmentWork
            .then(() => this.reassign(partitions))
            .catch((e) => {
              // adopt() left nothing half-done: the loop retries the partitions it could not take.
              for (const p of partitions) if (!this.tasks.has(p)) this.broken.add(p);
              this.log(`engine: taking partitions ${partitions.join(",")} failed, retrying: ${(e as Error).message}`);
            });
        },
      },
    );
  }

  status(): EngineStatus {
    const partitions = [...this.tasks.values()].filter((t) => t.state === "active").map((t) => t.partition);
    return { ready: this.running && this.fatal === undefined && [...this.tasks.values()].every((t) => t.state === "active"), partitions };
  }

  /** Set when the engine cannot go on (a join worker died): the process exits and a restart recovers. */
  failure(): Error | undefined {
    return this.fatal ?? this.pool.failure();
  }

  async start(): Promise<void> {
    await this.prepareTopics();
    this.running = true;
    await this.source.start();
    this.loop = this.runLoop();
  }

  /** Stops consuming, commits what was processed, and closes. Cars waiting for prices stay in the changelog. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.loop;
    await this.source.stop();
    await this.pricing.stop();
    for (const t of this.tasks.values()) await t.sink.close();
    await this.pool.close();
  }

  /** Creates missing topics (as Kafka Streams creates its internal ones) and checks co-partitioning. */
  private async prepareTopics(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, this.kafkaSettings);
      const meta = await admin.fetchTopicMetadata({ topics: [...INPUT_ROLES.map((r) => this.topics[r]), this.topics.changelog] });
      const counts = new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
      const distinct = new Set(counts.values());
      if (distinct.size !== 1) {
        throw new ConfigError(`input and changelog topics must have the same partition count (co-partitioned): ${[...counts].map(([t, n]) => `${t}=${n}`).join(", ")}`);
      }
    } finally {
      await admin.disconnect();
    }
  }

  private fail(e: Error): void {
    this.fatal ??= e;
    this.log(`engine: fatal: ${e.message}`);
  }

  // ---- ingest -------------------------------------------------------------------------

  private onRecords(role: InputRole, partition: number, messages: KafkaMessage[], fetchedAt: number, atLogEnd: boolean): void {
    const task = this.tasks.get(partition);
    // Not ours, or not yet: the task reads from the committed offsets once restored.
    if (!task || task.state !== "active") return;
    const expected = task.expected.get(role);
    if (expected === undefined) return;
    // Offsets ascend within a batch: only a batch that straddles `expected` needs filtering.
    const fresh = messages.length > 0 && BigInt(messages[0]!.offset) >= expected ? messages : messages.filter((m) => BigInt(m.offset) >= expected);
    if (fresh.length === 0) return;
    task.expected.set(role, BigInt(fresh[fresh.length - 1]!.offset) + 1n);
    const topic = this.topics[role];
    const records: InputRecord[] = fresh.map((m) => ({
      offset: m.offset,
      timestamp: Number(m.timestamp),
      fetchedAt,
      key: m.key,
      value: m.value,
    }));
    this.metrics.recordsIn.add({ topic }, records.length);
    task.group.push(role, records, fetchedAt);
    if (atLogEnd) task.group.markCaughtUp(role, fetchedAt);
    if (task.group.isFull(role) && !task.paused.has(role)) {
      task.paused.add(role);
      this.source.pause(role, partition);
    }
  }

  // ---- ownership ----------------------------------------------------------------------

  private transactionalId(partition: number): string {
    return `${this.settings.groupId}-${this.topics.body}-p${partition}`;
  }

  private async reassign(partitions: number[]): Promise<void> {
    const wanted = new Set(partitions);
    for (const p of [...this.tasks.keys()]) {
      if (!wanted.has(p)) {
        await this.revoke(p);
        this.log(`engine: partition ${p} revoked`);
      }
    }
    const added = partitions.filter((p) => !this.tasks.has(p));
    if (added.length > 0) await this.adopt(added);
  }

  /** Forgets everything in memory about partition p (its state stays in the changelog). */
  private async revoke(p: number): Promise<void> {
    const task = this.tasks.get(p);
    if (!task) return;
    this.tasks.delete(p);
    this.broken.delete(p);
    await task.sink.close();
    await this.pool.drop(p);
    for (const [k, owner] of this.pricedPartition) if (owner === p) this.pricedPartition.delete(k);
    this.pricing.removeWhere((car) => !this.pricedPartition.has(priceKey(car.carId, car.firstPartAt)));
  }

  /**
   * Takes ownership of partitions: fence the previous owner, restore state from the
   * changelog, rewind the input to the committed offsets. All or nothing: on failure the
   * partitions are dropped again and the caller retries.
   */
  private async adopt(added: number[]): Promise<void> {
    const t0 = Date.now();
    try {
      for (const p of added) {
        const sink = new PartitionSink(this.kafka, this.transactionalId(p), this.settings.groupId);
        this.tasks.set(p, {
          partition: p,
          state: "restoring",
          group: new PartitionGroup<InputRecord>({ idleGraceMs: this.settings.idleGraceMs, maxBufferedPerTopic: this.settings.maxBufferedRecords }),
          sink,
          pending: [],
          changelog: new Map(),
          offsets: new Map(),
          released: [],
          releasedIndex: undefined,
          paused: new Set(),
          expected: new Map(),
        });
        // Opening the transactional id fences any previous owner before we read its state.
        await sink.open();
      }
      const restored = await restorePartitions(this.kafka, this.topics.changelog, added);
      let joinEntries = 0;
      let waiting = 0;
      for (const r of restored) {
        const join: [string, Uint8Array][] = [];
        for (const [key, value] of r.entries) {
          const k = parseKey(key);
          if (k?.kind === "join") join.push([k.carId, value]);
          else if (k?.kind === "price") {
            const w = decodeWaitingCar(value);
            this.pricedPartition.set(key, r.partition);
            // The deadline counts time an engine spent trying to price the car: a restored
            // car starts a fresh one, so downtime alone never fails a car (SPEC §7: a
            // crashed-and-restarted run equals a crash-free one when the API never fails).
            this.pricing.add(w.car, Date.now());
            waiting++;
          }
        }
        joinEntries += join.length;
        await this.pool.restore(r.partition, join);
      }
      // Records fetched before the fence may predate the previous owner's last commit: start
      // again from the committed offsets, which are final now that the previous owner is fenced.
      const committed = await this.source.committedOffsets(added);
      for (const p of added) {
        const task = this.tasks.get(p)!;
        task.group.clear();
        for (const role of INPUT_ROLES) {
          const off = committed.get(`${this.topics[role]}:${p}`) ?? "0";
          this.source.seek(role, p, off);
          task.expected.set(role, BigInt(off));
          if (task.paused.delete(role)) this.source.resume(role, p);
        }
        task.state = "active";
      }
      this.log(`engine: partitions ${added.join(",")} restored in ${Date.now() - t0} ms (${joinEntries} join states, ${waiting} cars waiting for prices)`);
    } catch (e) {
      for (const p of added) await this.revoke(p).catch(() => {});
      throw e;
    }
  }

  /**
   * A failed commit leaves its outcome unknown (the broker may have committed before the
   * connection broke). Rather than guess, rebuild the partition from what Kafka holds: the
   * changelog and the committed offsets are the truth, whichever way it went.
   */
  private async rebuild(partitions: number[]): Promise<void> {
    for (const p of partitions) await this.revoke(p);
    await this.adopt(partitions);
  }

  // ---- the processing loop ------------------------------------------------------------

  private async runLoop(): Promise<void> {
    let backoff = 100;
    while (this.running) {
      const started = Date.now();
      try {
        await this.assignmentWork;
        const failure = this.failure();
        if (failure) throw failure;
        if (this.broken.size > 0) {
          const broken = [...this.broken].filter((p) => this.source.assignedPartitions().includes(p));
          this.broken.clear();
          if (broken.length > 0) await this.rebuild(broken);
        }
        await this.tick(Date.now());
        backoff = 100;
      } catch (e) {
        if (this.failure()) {
          this.fail(this.failure()!);
          return;
        }
        for (const p of this.source.assignedPartitions()) if (!this.tasks.has(p)) this.broken.add(p);
        this.log(`engine: ${(e as Error).message}; rebuilding partitions ${[...this.broken].join(",") || "-"} in ${backoff} ms`);
        await Bun.sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      const rest = this.settings.commitIntervalMs - (Date.now() - started);
      if (rest > 0) await Bun.sleep(rest);
    }
    // A last commit of what was processed, so a polite stop loses no work.
    const failed = await this.commitAll();
    if (failed.length > 0) this.log(`engine: final commit of partitions ${failed.join(",")} failed; the next owner re-processes from the last commit`);
  }

  private async tick(now: number): Promise<void> {
    const active = [...this.tasks.values()].filter((t) => t.state === "active");
    // Each released record can complete at most one car: releasing no more records than the
    // waiting set has room for keeps it at its bound (SPEC §5 backpressure).
    let room = Math.max(0, this.settings.priceMaxWaitingCars - this.pricing.waiting);
    this.rotation = (this.rotation + 1) % Math.max(1, active.length);
    const ordered = [...active.slice(this.rotation), ...active.slice(0, this.rotation)];
    const batches = [];
    for (const task of ordered) {
      const { records, watermark } = task.group.drain(room);
      room -= records.length;
      task.released = records;
      task.releasedIndex = undefined;
      const lastOffset = new Map<string, string>();
      for (const { role, record } of records) lastOffset.set(this.topics[role], record.offset);
      for (const [topic, offset] of lastOffset) task.offsets.set(topic, (BigInt(offset) + 1n).toString());
      batches.push({ partition: task.partition, records, watermark });
      for (const role of task.paused) {
        if (!task.group.isFull(role)) {
          task.paused.delete(role);
          this.source.resume(role, task.partition);
        }
      }
    }
    if (batches.length > 0) {
      const results = await this.pool.process(batches);
      let open = 0;
      for (const [w, r] of results.entries()) {
        open += r.openCars;
        this.metrics.heapUsed.set({ thread: `join-${w}` }, r.heapUsedBytes);
        for (const out of r.outputs) this.apply(out, now);
      }
      this.metrics.openCars.set({}, open);
    }
    for (const car of this.pricing.drainFinished()) this.finishPriced(car);
    this.backpressure();
    const failed = await this.commitAll();
    if (failed.length > 0) {
      for (const p of failed) this.broken.add(p);
      throw new Error(`commit of partitions ${failed.join(",")} failed`);
    }
  }

  private apply(out: JoinOutput, now: number): void {
    const task = this.tasks.get(out.partition);
    if (!task) return;
    switch (out.type) {
      case "state":
        task.changelog.set(joinKey(out.carId), out.value === null ? null : Buffer.from(out.value));
        return;
      case "deadLetter": {
        const raw = this.releasedRecord(task, out.source.topic, out.source.offset);
        task.pending.push(this.deadLetter(out.source, raw?.key ?? null, raw?.value ?? null, out.reason));
        return;
      }
      case "emit": {
        const car = out.car;
        if (car.situation === "AWAITING_PRICE" as string) {
          const key = priceKey(car.carId, car.firstPartAt);
          this.pricedPartition.set(key, out.partition);
          task.changelog.set(key, encodeWaitingCar(car, now));
          this.pricing.add(car, now);
        } else {
          task.pending.push(this.carRecord(car));
        }
      }
    }
  }

  private releasedRecord(task: PartitionTask, topic: string, offset: string): InputRecord | undefined {
    if (task.releasedIndex === undefined) {
      task.releasedIndex = new Map();
      for (const { role, record } of task.released) task.releasedIndex.set(`${this.topics[role]}:${record.offset}`, record);
    }
    return task.releasedIndex.get(`${topic}:${offset}`);
  }

  private finishPriced(car: Car): void {
    const key = priceKey(car.carId, car.firstPartAt);
    const partition = this.pricedPartition.get(key);
    this.pricedPartition.delete(key);
    const task = partition === undefined ? undefined : this.tasks.get(partition);
    if (!task) return; // the partition moved to another owner, who re-prices it from the changelog
    task.pending.push(this.carRecord(car));
    task.changelog.set(key, null);
  }

  private carRecord(car: Car): OutRecord {
    const topic = car.situation === "COMPLETED" ? this.topics.completed : this.topics.incomplete;
    return { topic, key: car.carId, value: JSON.stringify(car), situation: car.situation };
  }

  private deadLetter(source: { topic: string; partition: number; offset: string }, key: Buffer | null, value: Buffer | null, reason: string): OutRecord {
    const letter: DeadLetter = {
      topic: source.topic,
      partition: source.partition,
      offset: source.offset,
      key: key === null ? null : key.toString("utf8"),
      value: value === null ? "" : value.toString("base64"),
      reason,
    };
    return { topic: this.topics.dlq, key: letter.key, value: JSON.stringify(letter), situation: "DEAD_LETTER" };
  }

  /** Pricing full → stop reading input (the join of cars already read goes on). */
  private backpressure(): void {
    const full = this.pricing.isFull();
    if (full === this.allPaused) return;
    this.allPaused = full;
    for (const task of this.tasks.values()) {
      for (const role of INPUT_ROLES) {
        if (full) this.source.pause(role, task.partition);
        else if (!task.paused.has(role)) this.source.resume(role, task.partition);
      }
    }
  }

  /** Commits every task's pending work; returns the partitions whose commit failed. */
  private async commitAll(): Promise<number[]> {
    const work = [...this.tasks.values()].filter((t) => t.state === "active" && (t.pending.length > 0 || t.changelog.size > 0 || t.offsets.size > 0));
    const results = await Promise.allSettled(
      work.map(async (task) => {
        const t0 = performance.now();
        const offsets = [...task.offsets].map(([topic, offset]) => ({ topic, partition: task.partition, offset }));
        const changelog = [...task.changelog].map(([key, value]) => ({ topic: this.topics.changelog, partition: task.partition, key, value }));
        await task.sink.commit([...task.pending, ...changelog], offsets);
        this.metrics.commitLatency.observe((performance.now() - t0) / 1000);
        for (const r of task.pending) this.metrics.recordsOut.add({ topic: r.topic, situation: r.situation ?? "" }, 1);
        task.pending = [];
        task.changelog.clear();
        task.offsets.clear();
      }),
    );
    const failed: number[] = [];
    results.forEach((r, i) => {
      this.metrics.transactions.add({ result: r.status === "fulfilled" ? "committed" : "failed" }, 1);
      if (r.status === "rejected") {
        failed.push(work[i]!.partition);
        this.log(`engine: commit of partition ${work[i]!.partition} failed: ${(r.reason as Error).message}`);
      }
    });
    this.metrics.waitingCars.set({}, this.pricing.waiting);
    this.metrics.priceSaturated.set({}, this.pricing.saturatedMs / 1000);
    this.metrics.priceWaiting.set({}, this.pricing.waitingMs / 1000);
    this.metrics.inFlight.set({}, this.pricing.inFlight);
    for (const [tp, lag] of this.source.lag()) {
      const i = tp.lastIndexOf(":");
      this.metrics.consumerLag.set({ topic: tp.slice(0, i), partition: tp.slice(i + 1) }, lag);
    }
    return failed;
  }
}
