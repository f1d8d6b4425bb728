// The stream thread: the engine's loop, one call per phase, every COMMIT_INTERVAL_MS —
// maintain the tasks (assign, revoke, restore, revive), process (release each task's records
// in timestamp order, bounded by the room for cars waiting for prices, through the join
// workers), price (finished cars to their tasks), backpressure (pause or resume every task),
// commit (one transaction per task, overlapping the next turn's processing).
import type { TickBatch } from "../join/index.ts";
import type { JoinTaskResult } from "../join/index.ts";
import { FatalEngineError } from "./errors.ts";
import type { ShellPorts } from "./ports.ts";
import type { TaskManager } from "./task-manager.ts";

export interface ThreadOptions {
  commitIntervalMs: number;
  maxWaitingCars: number;
}

export interface ThreadObserver {
  processed(results: readonly JoinTaskResult[], ms: number): void;
  /** An unexpected error in a turn; the turn's tasks are rebuilt. */
  turnFailed(error: Error, retryInMs: number): void;
}

export class StreamThread {
  private running = false;
  private loop: Promise<void> | undefined;
  /** Which task drains first this turn, so a full waiting set does not starve the same one. */
  private rotation = 0;
  private fatal: Error | undefined;

  constructor(
    private readonly ports: ShellPorts,
    private readonly tasks: TaskManager,
    private readonly options: ThreadOptions,
    private readonly observer: ThreadObserver,
  ) {}

  /** Set when the engine cannot go on (a join worker died): the process exits and a restart recovers. */
  failure(): Error | undefined {
    return this.fatal;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops the loop, commits what was processed, closes every task. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.loop;
    if (this.fatal === undefined) await this.flush();
    await this.tasks.closeAll();
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (this.running) {
      const started = this.ports.clock.now();
      try {
        await this.runOnce();
        backoff = 100;
      } catch (e) {
        if (e instanceof FatalEngineError) {
          this.fatal = e;
          return;
        }
        this.observer.turnFailed(e as Error, backoff);
        for (const task of this.tasks.running()) task.failure ??= e;
        await Bun.sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      const rest = this.options.commitIntervalMs - (this.ports.clock.now() - started);
      if (rest > 0) await Bun.sleep(rest);
    }
  }

  /** One turn of the loop; exported for the shell's tests, which drive it with a manual clock. */
  async runOnce(): Promise<void> {
    const dead = this.ports.join.failure();
    if (dead) throw new FatalEngineError(dead.message);
    await this.tasks.maintain();
    await this.process();
    this.price();
    this.backpressure();
    this.commit();
  }

  private async process(): Promise<void> {
    const active = this.tasks.running();
    if (active.length === 0) return;
    // A car completes at most once: letting parts of no more cars reach the join than the
    // waiting set has room for keeps it at its bound (SPEC §5 backpressure).
    // Stage 1 hands over no more records than that room either: a late part (stamped below the
    // join's safe time) reaches the join at once.
    let room = Math.max(0, this.options.maxWaitingCars - this.ports.pricing.waiting);
    this.rotation = (this.rotation + 1) % active.length;
    const ordered = [...active.slice(this.rotation), ...active.slice(0, this.rotation)];
    const batches: TickBatch[] = [];
    for (const task of ordered) {
      const { records, safeTime, cars } = task.drain(room, room, this.options.maxWaitingCars);
      room = Math.max(0, room - cars);
      batches.push({ partition: task.partition, records, safeTime });
    }
    const t0 = this.ports.clock.now();
    const results = await this.ports.join.process(batches);
    const ms = this.ports.clock.now() - t0;
    for (const r of results) for (const out of r.outputs) this.tasks.apply(out);
    this.tasks.settle(results);
    this.observer.processed(results, ms);
  }

  private price(): void {
    for (const car of this.ports.pricing.drainFinished()) this.tasks.finishPriced(car);
  }

  private backpressure(): void {
    this.tasks.setNoRoom(this.ports.pricing.isFull());
  }

  private commit(): void {
    for (const task of this.tasks.running()) task.commit();
  }

  /** The last transactions of a polite stop: what is in flight, then what was collected since. */
  private async flush(): Promise<void> {
    const tasks = this.tasks.running();
    await Promise.all(tasks.map((t) => t.settled()));
    this.price();
    this.commit();
    await Promise.all(tasks.map((t) => t.settled()));
  }
}
