// The keyed-state workers: a Piscina pool whose tasks carry their shard, and a load balancer
// that always hands a shard to the same worker (workers sorted by id). Piscina left to itself
// gives a task to any idle worker, which would scatter one car's parts over threads.
import { Piscina } from "piscina";
import type { JoinTask, JoinTaskResult, PartitionBatch, RoutedPart } from "./protocol.ts";
import { shardOf, workerOfShard } from "./route.ts";

export interface JoinPoolOptions {
  workers: number;
  shards: number;
  joinTimeoutMs: number;
  dedupRetentionMs: number;
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
      workerData: { joinTimeoutMs: options.joinTimeoutMs, dedupRetentionMs: options.dedupRetentionMs },
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

  private run(worker: number, task: JoinTask): Promise<JoinTaskResult> {
    if (this.crashed) return Promise.reject(this.crashed);
    return this.pool.run({ ...task, [Piscina.queueOptionsSymbol]: { worker } });
  }

  workerOf(carId: string): number {
    return workerOfShard(shardOf(carId, this.options.shards), this.options.workers);
  }

  /**
   * Processes one tick: each partition's parts (already in timestamp order) and its watermark.
   * Every worker gets every partition's watermark, so timers fire on all of them.
   */
  async process(batches: readonly { partition: number; parts: readonly RoutedPart[]; watermark: number }[]): Promise<JoinTaskResult[]> {
    const perWorker: PartitionBatch[][] = Array.from({ length: this.options.workers }, () => []);
    for (const b of batches) {
      const split: RoutedPart[][] = perWorker.map(() => []);
      for (const p of b.parts) split[this.workerOf(p.part.carId)]!.push(p);
      split.forEach((parts, w) => perWorker[w]!.push({ partition: b.partition, parts, watermark: b.watermark }));
    }
    return Promise.all(perWorker.map((items, w) => this.run(w, { op: "process", items })));
  }

  /** Loads a partition's restored join state (changelog values) into the workers that own its cars. */
  async restore(partition: number, entries: readonly [carId: string, state: Uint8Array][]): Promise<void> {
    const perWorker: [string, Uint8Array][][] = Array.from({ length: this.options.workers }, () => []);
    for (const [carId, state] of entries) perWorker[this.workerOf(carId)]!.push([carId, state]);
    await Promise.all(perWorker.map((e, w) => this.run(w, { op: "restore", partition, entries: e })));
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
