// The assembler, wired: source (kafkajs consumer) → tasks (timestamp merge per partition, the
// repartition hop) → keyed join workers → pricing dispatcher → one transactional sink per task.
// This file only builds the parts and connects them; the loop is thread.ts, the lifecycle of
// partitions task-manager.ts, a partition's buffers, pauses and commit task.ts. The join
// workers and the tasks need the input topics' partition count, so they are built in start(),
// once the topics exist.
import type { Kafka } from "kafkajs";
import type { EngineSettings, KafkaSettings, Topics } from "../config.ts";
import { ConfigError, repartitionTopicsOf, topicsOf } from "../config.ts";
import { INPUT_ROLES } from "../domain.ts";
import { createKafka, ensureTopics, partitionCounts } from "../kafka.ts";
import { kafkaLogStats } from "../kafka-log.ts";
import { currentLogger, type Logger } from "../log.ts";
import { InputSource } from "../ingest/index.ts";
import { JoinPool } from "../join/index.ts";
import type { JoinTaskResult } from "../join/index.ts";
import { PricingDispatcher } from "../pricing/index.ts";
import { restorePartitions } from "../state/index.ts";
import { PartitionSink } from "../sink/index.ts";
import { findStalls, type Stall } from "./health.ts";
import { EngineMetrics, priceErrorReason } from "./metrics.ts";
import type { ShellPorts } from "./ports.ts";
import { TaskManager, type TaskManagerObserver } from "./task-manager.ts";
import type { CommitReport } from "./task.ts";
import { StreamThread, type ThreadObserver } from "./thread.ts";
import { CollectionPolicy } from "../gc.ts";

export interface EngineStatus {
  ready: boolean;
  /** Partitions being processed. */
  partitions: number[];
  /** Assigned partitions not processed yet (being taken: fence, restore, rewind). */
  restoring: number[];
}

export interface EngineHealth {
  ok: boolean;
  stalls: Stall[];
  error?: string;
}

/** How often the per-partition gauges (pauses, progress, watermark delay, stalls) are refreshed. */
const GAUGE_INTERVAL_MS = 500;

export class Engine {
  readonly metrics = new EngineMetrics();
  private readonly kafka: Kafka;
  private readonly topics: Topics;
  private readonly repartition: ReturnType<typeof repartitionTopicsOf>;
  private readonly source: InputSource;
  private readonly pricing: PricingDispatcher;
  /** Built in start(): the join workers, the task manager and the loop. */
  private running: { pool: JoinPool; tasks: TaskManager; thread: StreamThread } | undefined;
  private started = false;
  private gauges: ReturnType<typeof setInterval> | undefined;
  private stalls: Stall[] = [];

  constructor(
    private readonly settings: EngineSettings,
    private readonly kafkaSettings: KafkaSettings,
    private readonly logger: Logger = currentLogger(),
  ) {
    this.kafka = createKafka(kafkaSettings, `rccar-engine-${settings.instanceId}`, { logger });
    this.topics = topicsOf(kafkaSettings);
    this.repartition = repartitionTopicsOf(kafkaSettings, settings.groupId);
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
      maxAmount: settings.priceMaxAmount,
      onRequest: (ms, error) => {
        this.metrics.priceLatency.observe(ms / 1000);
        if (error !== undefined) this.metrics.priceRequestErrors.add({ reason: priceErrorReason(error) }, 1);
      },
    });
    this.source = new InputSource(
      this.kafka,
      {
        groupId: settings.groupId,
        topics: this.topics,
        repartition: this.repartition,
        probeIntervalMs: 50,
        sessionTimeoutMs: settings.sessionTimeoutMs,
        log: (line) => this.logger.warn(line),
      },
      {
        onRecords: (lane, partition, messages, fetchedAt, atLogEnd) => {
          const n = this.running?.tasks.task(partition)?.addRecords(lane, messages, fetchedAt, atLogEnd) ?? 0;
          // Input records only (the repartition topics carry copies, counted when written, and
          // markers), each once: a restart or rebuild reads waiting parts again.
          if (n > 0 && lane.route === "direct") this.countIn(this.topics[lane.role], partition, messages);
        },
        onCaughtUp: (role, partition, at) => this.running?.tasks.task(partition)?.markCaughtUp(role, at),
        onAssignment: (partitions) => this.running?.tasks.assign(partitions),
      },
    );
  }

  /** The join workers, the task manager and the loop, for input topics of `partitions` partitions. */
  private build(partitions: number): NonNullable<Engine["running"]> {
    const settings = this.settings;
    const pool = new JoinPool({
      partitions,
      workers: settings.workers,
      shards: settings.shards,
      joinTimeoutMs: settings.joinTimeoutMs,
      dedupRetentionMs: settings.dedupRetentionMs,
      maxPartBytes: settings.maxPartBytes,
      topics: this.topics,
    });
    const ports: ShellPorts = {
      input: this.source,
      sinkFor: (p) => new PartitionSink(this.kafka, `${settings.groupId}-${this.topics.body}-p${p}`, settings.groupId),
      changelog: { restore: (ps) => restorePartitions(this.kafka, this.topics.changelog, ps) },
      join: pool,
      pricing: this.pricing,
      clock: { now: Date.now },
    };
    const tasks = new TaskManager(
      ports,
      {
        idleGraceMs: settings.idleGraceMs,
        maxBufferedRecords: settings.maxBufferedRecords,
        maxClockSkewMs: settings.maxClockSkewMs,
        maxDriftMs: settings.maxWatermarkDriftMs,
        maxWaitingParts: settings.maxWaitingParts,
        partitions,
        topics: { ...this.topics, repartition: this.repartition },
        migratedBackoffMs: settings.sessionTimeoutMs,
      },
      this.taskObserver(),
    );
    const thread = new StreamThread(
      ports,
      tasks,
      { commitIntervalMs: settings.commitIntervalMs, maxWaitingCars: settings.priceMaxWaitingCars },
      this.threadObserver(),
    );
    return { pool, tasks, thread };
  }

  /** Full collections of the main thread (src/gc.ts): at most every 5 s, after 50,000 records read, or once the input is quiet. */
  private readonly collection = new CollectionPolicy(5000, 50_000);
  /** Records read since the last gauge refresh (none: the input is quiet). */
  private readSinceGauges = 0;

  /** Highest input offset counted in rccar_records_in_total, per `topic:partition`. */
  private readonly countedIn = new Map<string, number>();

  private countIn(topic: string, partition: number, messages: readonly { offset: string }[]): void {
    const key = `${topic}:${partition}`;
    const from = this.countedIn.get(key) ?? -1;
    let n = 0;
    for (const m of messages) if (Number(m.offset) > from) n++;
    if (n === 0) return;
    this.countedIn.set(key, Number(messages[messages.length - 1]!.offset));
    this.metrics.recordsIn.add({ topic }, n);
    this.collection.did(n);
    this.readSinceGauges += n;
  }

  status(): EngineStatus {
    const partitions = this.running?.tasks.ownedPartitions() ?? [];
    const restoring = this.source.assignedPartitions().filter((p) => !partitions.includes(p));
    return { ready: this.started && this.failure() === undefined && (this.running?.tasks.ready() ?? false), partitions, restoring };
  }

  /** Not ok after a fatal error, or while a partition is stalled (SPEC §10), naming it and why. */
  health(): EngineHealth {
    const failure = this.failure();
    if (failure) return { ok: false, stalls: this.stalls, error: failure.message };
    return { ok: this.stalls.length === 0, stalls: this.stalls };
  }

  /** Set when the engine cannot go on (a join worker died): the process exits and a restart recovers. */
  failure(): Error | undefined {
    return this.running?.thread.failure() ?? this.running?.pool.failure();
  }

  async start(): Promise<void> {
    const partitions = await this.prepareTopics();
    this.running = this.build(partitions);
    await this.source.start();
    this.running.thread.start();
    this.started = true;
    this.gauges = setInterval(() => this.refreshGauges(), GAUGE_INTERVAL_MS);
  }

  /** Stops consuming, commits what was processed, and closes. Cars waiting for prices stay in the changelog. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    clearInterval(this.gauges);
    await this.running?.thread.stop();
    await this.source.stop();
    await this.pricing.stop();
    await this.running?.pool.close();
  }

  /**
   * Creates missing topics (internal ones with the input topics' partition count) and checks
   * that the inputs are co-partitioned and the internal topics have a partition for each input
   * partition. Returns the input topics' partition count.
   */
  private async prepareTopics(): Promise<number> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, this.kafkaSettings, this.settings.groupId);
      const inputs = INPUT_ROLES.map((r) => this.topics[r]);
      const repartition = INPUT_ROLES.map((r) => this.repartition[r]);
      const counts = await partitionCounts(admin, [...inputs, ...repartition, this.topics.changelog]);
      const inputCounts = new Set(inputs.map((t) => counts.get(t)));
      if (inputCounts.size !== 1) {
        throw new ConfigError(`input topics must have the same partition count (co-partitioned): ${inputs.map((t) => `${t}=${counts.get(t)}`).join(", ")}`);
      }
      const n = counts.get(inputs[0]!)!;
      const changelog = counts.get(this.topics.changelog)!;
      if (changelog < n) throw new ConfigError(`changelog topic ${this.topics.changelog} has ${changelog} partitions, fewer than the ${n} of the input topics`);
      // Re-keyed records go to murmur2(carId) mod the input count: a repartition topic with any other count would misroute them.
      for (const t of repartition) {
        if (counts.get(t) !== n) throw new ConfigError(`repartition topic ${t} has ${counts.get(t)} partitions, not the ${n} of the input topics`);
      }
      return n;
    } finally {
      await admin.disconnect();
    }
  }

  private taskObserver(): TaskManagerObserver {
    return {
      restored: (partitions, ms, joinStates, waitingCars) => {
        this.metrics.restores.add({}, 1);
        this.metrics.restoreSeconds.observe(ms / 1000);
        this.logger.info(`engine: partitions ${partitions.join(",")} restored in ${ms} ms (${joinStates} join states, ${waitingCars} cars waiting for prices)`);
      },
      closed: (partition, why) => {
        if (why === "revoked") this.logger.info(`engine: partition ${partition} closed`);
        else {
          if (why.name === "TaskCorruptedError") this.metrics.rebuilds.add({}, 1);
          this.logger.warn(
            `engine: ${why.message}; ${why.name === "TaskCorruptedError" ? "rebuilding it from Kafka" : "taking it again only if still assigned"}`,
          );
        }
      },
      takeFailed: (partitions, error, retryInMs) =>
        this.logger.warn(`engine: taking partitions ${partitions.join(",")} failed, again in ${retryInMs} ms: ${error.message}`),
      committed: (report) => this.committed(report),
      released: (records, at) => {
        for (const { record } of records) this.metrics.mergeWait.observe((at - record.fetchedAt) / 1000);
      },
      joined: (waited) => {
        for (const ms of waited) this.metrics.safeTimeWait.observe(ms / 1000);
      },
      priced: (ms) => this.metrics.priceWait.observe(ms / 1000),
    };
  }

  private threadObserver(): ThreadObserver {
    return {
      processed: (results: readonly JoinTaskResult[], ms: number) => {
        this.metrics.joinTurn.observe(ms / 1000);
        let open = 0;
        results.forEach((r, w) => {
          open += r.openCars;
          this.metrics.heapUsed.set({ thread: `join-${w}` }, r.heapUsedBytes);
        });
        this.metrics.openCars.set({}, open);
      },
      turnFailed: (error, retryInMs) => this.logger.warn(`engine: ${error.message}; rebuilding the running partitions in ${retryInMs} ms`),
    };
  }

  private committed(report: CommitReport): void {
    this.metrics.transactions.add({ result: report.error === undefined ? "committed" : "failed" }, 1);
    if (report.error !== undefined) {
      this.logger.warn(`engine: commit of partition ${report.partition} failed: ${(report.error as Error)?.message ?? String(report.error)}`);
      return;
    }
    this.metrics.commitLatency.observe(report.ms / 1000);
    this.metrics.commitWait.observe(report.waitedMs / 1000);
    const at = Date.now();
    for (const letter of report.batch.deadLetters) this.metrics.recentDeadLetters.push({ at, ...letter });
    for (const [situation, n] of report.batch.situations) {
      if (situation === "REPARTITIONED") {
        this.metrics.recordsRepartitioned.add({}, n);
        continue;
      }
      const topic = situation === "DEAD_LETTER" ? this.topics.dlq : situation === "COMPLETED" ? this.topics.completed : this.topics.incomplete;
      this.metrics.recordsOut.add({ topic, situation }, n);
    }
  }

  private refreshGauges(): void {
    const now = Date.now();
    if (this.collection.due(now, this.readSinceGauges === 0)) Bun.gc(false);
    this.readSinceGauges = 0;
    const lag = this.source.lag();
    const tasks = this.running?.tasks;
    if (tasks === undefined) return;
    this.stalls = findStalls(tasks.views(lag), now, this.settings.stallTimeoutMs);
    const m = this.metrics;
    for (const [condition, n] of kafkaLogStats().counts()) m.kafkaRetriable.set({ type: condition }, n);
    m.waitingCars.set({}, this.pricing.waiting);
    m.priceSaturated.set({}, this.pricing.saturatedMs / 1000);
    m.priceWaiting.set({}, this.pricing.waitingMs / 1000);
    m.inFlight.set({}, this.pricing.inFlight);
    m.consumerLag.clear();
    for (const [tp, n] of lag) {
      const i = tp.lastIndexOf(":");
      m.consumerLag.set({ topic: tp.slice(0, i), partition: tp.slice(i + 1) }, n);
    }
    m.partitionPaused.clear();
    m.partitionLastProgress.clear();
    m.partitionWatermarkDelay.clear();
    m.safeTimeDelay.clear();
    m.waitingParts.clear();
    for (const task of tasks.all()) {
      const partition = String(task.partition);
      for (const [role, reasons] of task.pauses()) for (const reason of reasons) m.partitionPaused.set({ topic: this.topics[role], partition, reason }, 1);
      m.partitionLastProgress.set({ partition }, tasks.progress.get(task.partition) / 1000);
      const watermark = task.watermark();
      if (Number.isFinite(watermark)) m.partitionWatermarkDelay.set({ partition }, (now - watermark) / 1000);
      const safeTime = task.currentSafeTime();
      if (Number.isFinite(safeTime)) m.safeTimeDelay.set({ partition }, (now - safeTime) / 1000);
      m.waitingParts.set({ partition }, task.waitingParts());
    }
    m.partitionStalled.clear();
    for (const s of this.stalls) m.partitionStalled.set({ partition: String(s.partition), reason: s.reason }, 1);
  }
}
