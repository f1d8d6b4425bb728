// The Kafka source: one consumer in the engine's group over the four input topics and their
// four repartition topics (partition p of all eight goes to one member: assigner.ts),
// read_committed, offsets committed only inside the sink's transactions. It reports fetched
// records and, from a periodic log-end probe, when a topic-partition is caught up (the
// evidence the watermark needs to advance on the clock while nothing arrives).
import type { Admin, Consumer, Kafka, KafkaMessage } from "kafkajs";
import type { InputRole, Lane } from "../domain.ts";
import { INPUT_ROLES, LANES } from "../domain.ts";
import type { Topics } from "../config.ts";
import { coPartitionedAssigner } from "./assigner.ts";

export interface SourceListener {
  /** Records of one lane's topic-partition, in offset order, fetched at `fetchedAt`; `atLogEnd` when they reach the log end. */
  onRecords(lane: Lane, partition: number, messages: KafkaMessage[], fetchedAt: number, atLogEnd: boolean): void;
  /** Everything of the topic-partition up to its log end as of `at` has been delivered. */
  onCaughtUp(role: InputRole, partition: number, at: number): void;
  /** The set of input partitions this process owns changed (after a rebalance). */
  onAssignment(partitions: number[]): void;
}

export interface SourceOptions {
  groupId: string;
  topics: Topics;
  /** Each input role's repartition topic. */
  repartition: Record<InputRole, string>;
  probeIntervalMs: number;
  sessionTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Waits between attempts to replace a crashed consumer (doubling up to the maximum). */
const REPLACE_BACKOFF_MS = 1000;
const REPLACE_BACKOFF_MAX_MS = 10_000;

export class InputSource {
  private consumer: Consumer;
  private replacing = false;
  private readonly admin: Admin;
  private readonly laneOfTopic: Map<string, Lane>;
  /** Next offset to fetch per `topic:partition`, as far as delivered to the listener. */
  private readonly positions = new Map<string, bigint>();
  private readonly logEnds = new Map<string, bigint>();
  private assigned: number[] = [];
  private probeTimer: ReturnType<typeof setInterval> | undefined;
  private probing = false;
  private stopped = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: SourceOptions,
    private readonly listener: SourceListener,
  ) {
    this.laneOfTopic = new Map(LANES.map((lane) => [this.topicOf(lane), lane]));
    this.consumer = this.createConsumer();
    this.admin = kafka.admin();
  }

  private createConsumer(): Consumer {
    const sessionTimeout = this.options.sessionTimeoutMs ?? 6000;
    return this.kafka.consumer({
      groupId: this.options.groupId,
      readUncommitted: false,
      partitionAssigners: [coPartitionedAssigner],
      sessionTimeout,
      heartbeatInterval: Math.max(300, Math.floor(sessionTimeout / 5)),
      rebalanceTimeout: 30_000,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 1 << 20,
    });
  }

  private topicOf(lane: Lane): string {
    return lane.route === "direct" ? this.options.topics[lane.role] : this.options.repartition[lane.role];
  }

  private key(topic: string, partition: number): string {
    return `${topic}:${partition}`;
  }

  async start(): Promise<void> {
    await this.admin.connect();
    await this.runConsumer(this.consumer);
    this.probeTimer = setInterval(() => void this.probe(), this.options.probeIntervalMs);
  }

  private async runConsumer(consumer: Consumer): Promise<void> {
    await consumer.connect();
    // Events of a consumer that was replaced meanwhile are stale: the new one reports its own.
    const current = () => consumer === this.consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (!current()) return;
      const assignment = payload.memberAssignment as Record<string, number[]>;
      const partitions = new Set<number>();
      for (const role of INPUT_ROLES) for (const p of assignment[this.options.topics[role]] ?? []) partitions.add(p);
      this.assigned = [...partitions].sort((a, b) => a - b);
      this.positions.clear();
      // Positions only serve the lag and the log-end probe: without them (offsets not
      // readable yet on a brand-new topic) they start at the first record delivered.
      void this.initPositions()
        .catch((e: Error) => this.options.log?.(`source: committed offsets not readable yet (${e.message}); positions start at the first record`))
        .then(() => {
          if (current()) this.listener.onAssignment(this.assigned);
        });
    });
    // Batches that held only control records or aborted data skip eachBatch but move the position.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (current()) this.advance(payload.topic, payload.partition, BigInt(payload.firstOffset ?? payload.lastOffset), BigInt(payload.lastOffset) + 1n);
    });
    // kafkajs restarts a crashed consumer itself only after a retriable error. "Failed to find
    // group coordinator" while the broker restarts is not one: the consumer stayed down and the
    // engine never read again. Replace it, as a rebalance would.
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart && !this.stopped && current()) void this.replaceConsumer(payload.error);
    });
    for (const lane of LANES) await consumer.subscribe({ topic: this.topicOf(lane), fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch }) => {
        const lane = this.laneOfTopic.get(batch.topic);
        if (lane === undefined || batch.messages.length === 0 || !current()) return;
        const atLogEnd = BigInt(batch.lastOffset()) + 1n >= BigInt(batch.highWatermark);
        this.listener.onRecords(lane, batch.partition, batch.messages, Date.now(), atLogEnd);
        this.advance(batch.topic, batch.partition, BigInt(batch.firstOffset() ?? batch.lastOffset()), BigInt(batch.lastOffset()) + 1n);
      },
    });
  }

  /**
   * Gives up the partitions (the engine drops their memory; their state is in Kafka) and joins
   * the group again with a new consumer; the assignment that follows restores them.
   */
  private async replaceConsumer(cause: Error): Promise<void> {
    if (this.replacing) return;
    this.replacing = true;
    this.options.log?.(`source: the consumer crashed (${cause.message}); replacing it`);
    this.assigned = [];
    this.positions.clear();
    this.listener.onAssignment([]);
    let backoff = REPLACE_BACKOFF_MS;
    try {
      while (!this.stopped) {
        const old = this.consumer;
        await old.disconnect().catch(() => {});
        this.consumer = this.createConsumer();
        try {
          await this.runConsumer(this.consumer);
          return;
        } catch (e) {
          this.options.log?.(`source: a new consumer could not start (${(e as Error).message}); again in ${backoff} ms`);
          await Bun.sleep(backoff);
          backoff = Math.min(backoff * 2, REPLACE_BACKOFF_MAX_MS);
        }
      }
    } finally {
      this.replacing = false;
    }
  }

  /**
   * Moves the delivered position over a batch [first, next). Only a batch that continues from
   * the position counts: after a seek, kafkajs may still deliver batches fetched from elsewhere.
   */
  private advance(topic: string, partition: number, first: bigint, next: bigint): void {
    const k = this.key(topic, partition);
    const pos = this.positions.get(k);
    if (pos === undefined || (first <= pos && next > pos)) this.positions.set(k, next);
  }

  /** Positions start at the committed offsets (or the log start), as kafkajs's fetching does. */
  private async initPositions(): Promise<void> {
    const topics = INPUT_ROLES.map((r) => this.options.topics[r]);
    const committed = await this.admin.fetchOffsets({ groupId: this.options.groupId, topics }).catch(() => []);
    for (const t of committed) {
      const starts = new Map((await this.admin.fetchTopicOffsets(t.topic)).map((o) => [o.partition, BigInt(o.low)]));
      for (const p of t.partitions) {
        if (!this.assigned.includes(p.partition)) continue;
        const off = BigInt(p.offset);
        const start = off >= 0n ? off : (starts.get(p.partition) ?? 0n);
        this.advance(t.topic, p.partition, start, start);
      }
    }
  }

  /** Compares delivered positions with the log ends: a topic-partition at its end is caught up. */
  private async probe(): Promise<void> {
    if (this.probing || this.stopped || this.assigned.length === 0) return;
    this.probing = true;
    try {
      const at = Date.now();
      for (const role of INPUT_ROLES) {
        const topic = this.options.topics[role];
        for (const o of await this.admin.fetchTopicOffsets(topic)) {
          if (!this.assigned.includes(o.partition)) continue;
          const end = BigInt(o.high);
          this.logEnds.set(this.key(topic, o.partition), end);
          const pos = this.positions.get(this.key(topic, o.partition));
          if (pos !== undefined && pos >= end) this.listener.onCaughtUp(role, o.partition, at);
        }
      }
    } catch {
      // Broker unreachable: no evidence, so no watermark advance. The next probe tries again.
    } finally {
      this.probing = false;
    }
  }

  /** Records behind the log end per `topic:partition`, from the last probe. */
  lag(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, end] of this.logEnds) {
      const pos = this.positions.get(k);
      if (pos !== undefined) out.set(k, Number(end > pos ? end - pos : 0n));
    }
    return out;
  }

  assignedPartitions(): readonly number[] {
    return this.assigned;
  }

  pause(role: InputRole, partition: number): void {
    this.whenRunning(() => this.consumer.pause([{ topic: this.options.topics[role], partitions: [partition] }]));
  }

  resume(role: InputRole, partition: number): void {
    this.whenRunning(() => this.consumer.resume([{ topic: this.options.topics[role], partitions: [partition] }]));
  }

  /**
   * A consumer that replaced a crashed one is not running until its first join; it has
   * nothing paused, so a pause or resume meant for its predecessor has nothing to act on.
   */
  private whenRunning(act: () => void): void {
    try {
      act();
    } catch (e) {
      if (!/consumer#run must be called first/.test((e as Error).message)) throw e;
    }
  }

  /** Rewinds a lane's topic-partition to `offset` (e.g. the committed offset after taking ownership). */
  seek(lane: Lane, partition: number, offset: string): void {
    const topic = this.topicOf(lane);
    this.positions.set(this.key(topic, partition), BigInt(offset));
    this.consumer.seek({ topic, partition, offset });
  }

  /** Every lane's committed offset and metadata; where none is committed, the log start. */
  async committedOffsets(partitions: readonly number[]): Promise<Map<string, { offset: string; metadata: string | null }>> {
    const topics = LANES.map((lane) => this.topicOf(lane));
    const out = new Map<string, { offset: string; metadata: string | null }>();
    for (const t of await this.admin.fetchOffsets({ groupId: this.options.groupId, topics })) {
      const low = new Map((await this.admin.fetchTopicOffsets(t.topic)).map((o) => [o.partition, o.low]));
      for (const p of t.partitions) {
        if (!partitions.includes(p.partition)) continue;
        const committed = Number(p.offset) >= 0;
        out.set(this.key(t.topic, p.partition), {
          offset: committed ? p.offset : (low.get(p.partition) ?? "0"),
          metadata: committed ? (p.metadata ?? null) : null,
        });
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    await this.consumer.disconnect().catch(() => {});
    await this.admin.disconnect().catch(() => {});
  }
}
