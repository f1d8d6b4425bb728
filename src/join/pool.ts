// The keyed-state workers: a Piscina pool whose tasks carry their shard, and a load balancer
// that always hands a shard to the same worker (workers sorted by id). Piscina left to itself
// gives a task to any idle worker, which would scatter one car's parts over threads.
import { Piscina } from "piscina";
import type { InputRole } from "../domain.ts";
import { moving, pack } from "./batch.ts";
import { movingStates, packStates } from "./states-batch.ts";
import type { JoinTask, JoinTaskResult, JoinWorkerData, PartitionBatch, RawRecord, TickRecord } from "./protocol.ts";
import { shardOf, shardOfKey, workerOfShard } from "./route.ts";

export interface JoinPoolOptions {
  /** Partitions of the input topics. */
  partitions: number;
  workers: number;
  shards: number;
  joinTimeoutMs: number;
  dedupRetentionMs: number;
  maxPartBytes: number;
  /** Input topic names by role. */
  topics: Record<InputRole, string>;
}

/** One tick's records of one input partition (each lane's in offset order) and its safe time. */
export interface TickBatch {
  partition: number;
  records: ReadonlyArray<TickRecord>;
  safeTime: number;
}

type Worker = { id: number; terminating?: boolean; destroyed?: boolean };

export class JoinPool {
  private readonly pool: Piscina;
  private crashed: Error | undefined;
  private closing = false;

  constructor(private readonly options: JoinPoolOptions) {
    const workers = options.workers;
    this.pool = new Piscina({
      filename: new URL("./worker.ts", import.meta.url).pathname,
      minThreads: workers,
      maxThreads: workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1_000_000,
      workerData: {
        partitions: options.partitions,
        joinTimeoutMs: options.joinTimeoutMs,
        dedupRetentionMs: options.dedupRetentionMs,
        maxPartBytes: options.maxPartBytes,
        topics: options.topics,
      } satisfies JoinWorkerData,
      loadBalancer: (task, all) => {
        // Until every worker exists, a task could only go to the wrong one: wait.
        if (all.length < workers) return null;
        const live = (all as Worker[]).filter((w) => !w.terminating && !w.destroyed).sort((a, b) => a.id - b.id);
        if (live.length < workers) return null;
        const worker = (task as unknown as Record<symbol, { worker: number } | undefined>)[Piscina.queueOptionsSymbol]?.worker ?? 0;
        return live[worker] as never;
      },
    });
    // A replaced worker has lost its keyed state: that is a crash of its shards.
    this.pool.on("workerDestroy", () => {
      if (!this.closing) this.crashed ??= new Error("a join worker exited: its shards' state is lost");
    });
    this.pool.on("error", (e: Error) => {
      this.crashed ??= e;
    });
  }

  /** Set when a worker died; the engine then stops and recovers from the changelog. */
  failure(): Error | undefined {
    return this.crashed;
  }

  private run(worker: number, task: JoinTask, options?: { transferList: ArrayBuffer[] }): Promise<JoinTaskResult> {
    if (this.crashed) return Promise.reject(this.crashed);
    return this.pool.run({ ...task, [Piscina.queueOptionsSymbol]: { worker } }, options as Parameters<Piscina["run"]>[1]);
  }

  workerOfCar(carId: string): number {
    return workerOfShard(shardOf(carId, this.options.shards), this.options.workers);
  }

  /**
   * A record's worker: a re-keyed record's by its carId; a direct one's by its key, which is
   * its carId whenever the part belongs here. A direct record whose key is not its carId is
   * only decoded and handed back for re-keying, so any worker will do: one without a key
   * goes by offset, to spread them.
   */
  private workerOf(record: RawRecord): number {
    const key = record.carIdKey ?? record.key;
    if (key === null) return Number(record.offset) % this.options.workers;
    return workerOfShard(shardOfKey(key, this.options.shards), this.options.workers);
  }

  /**
   * Processes one tick: each partition's records and its safe time. Every worker gets every
   * partition's safe time, so timers fire and waiting parts leave on all of them.
   */
  async process(batches: readonly TickBatch[]): Promise<JoinTaskResult[]> {
    const perWorker: PartitionBatch[][] = Array.from({ length: this.options.workers }, () => []);
    for (const b of batches) {
      const split: TickRecord[][] = perWorker.map(() => []);
      for (const r of b.records) split[this.workerOf(r.record)]!.push(r);
      split.forEach((records, w) => perWorker[w]!.push(pack(b.partition, records, b.safeTime)));
    }
    return Promise.all(perWorker.map((items, w) => this.run(w, { op: "process", items }, moving(items))));
  }

  /**
   * Loads a partition's restored join state (changelog values) into the workers that own its
   * cars: one packed, transferred buffer per worker, decoded there in parallel. Calls for
   * different partitions may run concurrently (each worker takes its tasks in order).
   */
  async restore(partition: number, entries: readonly (readonly [carId: string, state: Uint8Array])[]): Promise<void> {
    const perWorker: (readonly [string, Uint8Array])[][] = Array.from({ length: this.options.workers }, () => []);
    for (const entry of entries) perWorker[this.workerOfCar(entry[0])]!.push(entry);
    await Promise.all(
      perWorker.map((e, w) => {
        const states = packStates(partition, e);
        return this.run(w, { op: "restore", states }, movingStates(states));
      }),
    );
  }

  /** Forgets a partition this process no longer owns. */
  async drop(partition: number): Promise<void> {
    await Promise.all(Array.from({ length: this.options.workers }, (_, w) => this.run(w, { op: "drop", partition })));
  }

  async openCars(): Promise<number> {
    const r = await Promise.all(Array.from({ length: this.options.workers }, (_, w) => this.run(w, { op: "stats" })));
    return r.reduce((n, x) => n + x.openCars, 0);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.pool.destroy();
  }
}
