// The task manager: which partitions this process owns and the lifecycle of their tasks —
// assign, revoke, restore, revive. It reconciles the tasks with the latest assignment once per
// loop turn: tasks no longer assigned are closed, corrupted ones (a failed commit) are closed
// and rebuilt from Kafka, migrated ones (fenced by a new owner) are closed and taken again only
// after the group had time to move them, and assigned partitions without a task are taken:
// fence the previous owner → restore the changelog → rewind to the committed offsets, in that
// order (the offsets are final only once the previous owner is fenced).
import type { Car } from "../domain.ts";
import { INPUT_ROLES, LANES } from "../domain.ts";
import { decodePosition, decodeStoredPosition, type LanePosition } from "./lane-position.ts";
import type { JoinOutput, JoinTaskResult } from "../join/index.ts";
import { joinKey, parseKey, priceKey } from "../state/index.ts";
import { decodeWaitingCar, encodeWaitingCar } from "../state/index.ts";
import { TaskCorruptedError, TaskMigratedError } from "./errors.ts";
import { ProgressClock, type PartitionView } from "./health.ts";
import type { ShellPorts } from "./ports.ts";
import type { Released } from "../ingest/index.ts";
import { PartitionTask, type CommitReport, type InputRecord, type TaskOptions } from "./task.ts";
import { FencedError } from "../sink/index.ts";

export interface TaskManagerOptions extends TaskOptions {
  /** How long a migrated partition is left alone before it is taken again (if still assigned). */
  migratedBackoffMs: number;
}

/** What the task manager reports; the engine turns it into logs and metrics. */
export interface TaskManagerObserver {
  restored(partitions: readonly number[], ms: number, joinStates: number, waitingCars: number): void;
  closed(partition: number, why: "revoked" | TaskCorruptedError | TaskMigratedError): void;
  takeFailed(partitions: readonly number[], error: Error, retryInMs: number): void;
  committed(report: CommitReport): void;
  /** Records released by a task's merge, and when (the merge-wait stage). */
  released(records: readonly Released<InputRecord>[], at: number): void;
  /** How long (ms) each part a task joined this turn waited for the safe time. */
  joined(waitedMs: readonly number[]): void;
  /** A car leaves pricing after waiting `ms`. */
  priced(ms: number): void;
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5000;

interface Retry {
  at: number;
  backoffMs: number;
}

export class TaskManager {
  private readonly tasks = new Map<number, PartitionTask>();
  private assigned: readonly number[] = [];
  /** Assigned partitions without a task, and when to try taking them again. */
  private readonly retries = new Map<number, Retry>();
  /** Cars handed to pricing → the partition whose transaction must carry their outcome, and since when they wait. */
  private readonly pricingOwner = new Map<string, { partition: number; since: number }>();
  /** Per partition, why its last commit or the last attempt to take it failed (cleared by a commit). */
  private readonly errors = new Map<number, string>();
  readonly progress = new ProgressClock();

  constructor(
    private readonly ports: ShellPorts,
    private readonly options: TaskManagerOptions,
    private readonly observer: TaskManagerObserver,
  ) {}

  /** The consumer group's latest assignment (applied at the next `maintain`). */
  assign(partitions: readonly number[]): void {
    this.assigned = [...partitions];
    const now = this.ports.clock.now();
    this.progress.retain(partitions);
    for (const p of partitions) this.progress.track(p, now);
  }

  task(partition: number): PartitionTask | undefined {
    return this.tasks.get(partition);
  }

  running(): PartitionTask[] {
    return [...this.tasks.values()].filter((t) => t.state === "running");
  }

  all(): PartitionTask[] {
    return [...this.tasks.values()];
  }

  /** Every assigned partition has a running task. */
  ready(): boolean {
    return this.assigned.length > 0 && this.assigned.every((p) => this.tasks.get(p)?.state === "running");
  }

  ownedPartitions(): number[] {
    return this.running().map((t) => t.partition);
  }

  /** Brings the tasks in line with the assignment; corrupted tasks are rebuilt, migrated ones wait. */
  async maintain(): Promise<void> {
    const wanted = new Set(this.assigned);
    for (const p of [...this.retries.keys(), ...this.errors.keys()]) {
      if (wanted.has(p)) continue;
      this.retries.delete(p);
      this.errors.delete(p);
    }
    for (const [p, task] of [...this.tasks]) {
      if (!wanted.has(p)) {
        await this.close(task, "revoked");
      } else if (task.failure !== undefined) {
        const error = task.failure instanceof FencedError ? new TaskMigratedError([p], task.failure) : new TaskCorruptedError([p], task.failure);
        await this.close(task, error);
        const now = this.ports.clock.now();
        const wait = error instanceof TaskMigratedError ? this.options.migratedBackoffMs : 0;
        this.retries.set(p, { at: now + wait, backoffMs: RETRY_FIRST_MS });
      }
    }
    const now = this.ports.clock.now();
    const due = this.assigned.filter((p) => !this.tasks.has(p) && (this.retries.get(p)?.at ?? now) <= now);
    if (due.length > 0) await this.take(due);
  }

  /**
   * Takes partitions: fence the previous owner, restore state from the changelog, rewind the
   * input to the committed offsets. All or nothing: on failure the tasks are closed again and
   * retried after a backoff.
   */
  private async take(partitions: number[]): Promise<void> {
    const { clock, changelog, join, pricing, input } = this.ports;
    const t0 = clock.now();
    const tasks = partitions.map((p) => {
      const task = new PartitionTask(
        p,
        this.ports.sinkFor(p),
        input,
        this.options,
        {
          committed: (r) => this.committed(r),
          released: (records) => this.observer.released(records, clock.now()),
          joined: (waited) => this.observer.joined(waited),
        },
        clock.now,
      );
      this.tasks.set(p, task);
      return task;
    });
    try {
      // Opening the transactional ids fences any previous owner before we read its state.
      await Promise.all(tasks.map((t) => t.sink.open()));
      let joinStates = 0;
      let waitingCars = 0;
      const loading: Promise<void>[] = [];
      const storedPositions = new Map<string, LanePosition>();
      const hopSeen = new Map<number, Map<number, number>>();
      for (const restored of await changelog.restore(partitions)) {
        const entries: [string, Uint8Array][] = [];
        for (const [key, value] of restored.entries) {
          const k = parseKey(key);
          if (k?.kind === "join") entries.push([k.carId, value]);
          else if (k?.kind === "hopSeen") {
            const seen = hopSeen.get(restored.partition) ?? new Map<number, number>();
            seen.set(k.role * this.options.partitions + k.source, Number(Buffer.from(value).toString("utf8")));
            hopSeen.set(restored.partition, seen);
          } else if (k?.kind === "position") {
            const position = decodeStoredPosition(value);
            if (position !== undefined) storedPositions.set(`${k.topic}:${restored.partition}`, position);
          } else if (k?.kind === "price") {
            const w = decodeWaitingCar(value);
            this.pricingOwner.set(key, { partition: restored.partition, since: clock.now() });
            // The deadline counts time an engine spent trying to price the car: a restored
            // car starts a fresh one, so downtime alone never fails a car (SPEC §7: a
            // crashed-and-restarted run equals a crash-free one when the API never fails).
            pricing.add(w.car, clock.now());
            waitingCars++;
          }
        }
        joinStates += entries.length;
        // All partitions' states go to the workers at once: each worker decodes its share
        // of every partition while the main thread goes on with the next one.
        loading.push(join.restore(restored.partition, entries));
      }
      await Promise.all(loading);
      // Records fetched before the fence may predate the previous owner's last commit: start
      // again from the committed offsets, which are final now that the previous owner is fenced.
      const committed = await input.committedOffsets(partitions);
      for (const task of tasks) {
        const positions = new Map<number, LanePosition>();
        LANES.forEach((lane, i) => {
          const topic = lane.route === "direct" ? this.options.topics[lane.role] : this.options.topics.repartition[lane.role];
          const c = committed.get(`${topic}:${task.partition}`);
          // The changelog's copy first: the group's offsets may not show the last transaction yet (lane-position.ts).
          positions.set(i, storedPositions.get(`${topic}:${task.partition}`) ?? decodePosition(c?.offset ?? "0", c?.metadata));
        });
        task.rewind(positions, hopSeen.get(task.partition));
        this.retries.delete(task.partition);
      }
      this.observer.restored(partitions, clock.now() - t0, joinStates, waitingCars);
    } catch (e) {
      for (const task of tasks) await this.close(task, "revoked").catch(() => {});
      const now = clock.now();
      let wait = RETRY_FIRST_MS;
      for (const p of partitions) {
        const prev = this.retries.get(p);
        wait = prev ? Math.min(prev.backoffMs * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
        this.retries.set(p, { at: now + wait, backoffMs: wait });
        this.errors.set(p, `taking the partition failed: ${(e as Error).message}`);
      }
      this.observer.takeFailed(partitions, e as Error, wait);
    }
  }

  /** Forgets everything in memory about the task's partition (its state stays in the changelog). */
  private async close(task: PartitionTask, why: "revoked" | TaskCorruptedError | TaskMigratedError): Promise<void> {
    const p = task.partition;
    this.tasks.delete(p);
    await task.close().catch(() => {});
    await this.ports.join.drop(p);
    for (const [key, owner] of this.pricingOwner) if (owner.partition === p) this.pricingOwner.delete(key);
    this.ports.pricing.removeWhere((car) => !this.pricingOwner.has(priceKey(car.carId, car.firstPartAt)));
    this.observer.closed(p, why);
  }

  /** Routes a join output to its task; an assembled car starts waiting for prices. */
  apply(out: JoinOutput): void {
    const task = this.tasks.get(out.partition);
    if (!task || task.state !== "running") return;
    const car = task.apply(out, joinKey);
    if (car === undefined) return;
    const now = this.ports.clock.now();
    const key = priceKey(car.carId, car.firstPartAt);
    this.pricingOwner.set(key, { partition: task.partition, since: now });
    task.collector.state(key, () => encodeWaitingCar(car, now), true);
    this.ports.pricing.add(car, now);
  }

  /** After a tick: each task learns what still waits in the join workers (merged over workers) and sets its positions. */
  settle(results: readonly JoinTaskResult[]): void {
    type Progress = JoinTaskResult["progress"][number];
    const merged = new Map<number, { lowest: number[]; pending: number; taken: Progress["taken"]; touched: Progress["touched"] }>();
    for (const r of results) {
      for (const p of r.progress) {
        const m = merged.get(p.partition);
        if (m === undefined) {
          merged.set(p.partition, { lowest: [...p.lowestPending], pending: p.pending, taken: p.taken, touched: p.touched });
          continue;
        }
        m.pending += p.pending;
        for (const t of p.taken) m.taken.push(t);
        for (const t of p.touched) m.touched.push(t);
        p.lowestPending.forEach((o, i) => {
          if (o >= 0 && (m.lowest[i]! < 0 || o < m.lowest[i]!)) m.lowest[i] = o;
        });
      }
    }
    for (const task of this.running()) {
      const m = merged.get(task.partition);
      if (m !== undefined) task.settle(m.lowest, m.pending, m.taken, m.touched);
    }
  }

  /** A priced (or failed) car leaves in its partition's next transaction. */
  finishPriced(car: Car): void {
    const key = priceKey(car.carId, car.firstPartAt);
    const owner = this.pricingOwner.get(key);
    this.pricingOwner.delete(key);
    const task = owner === undefined ? undefined : this.tasks.get(owner.partition);
    if (!owner || !task || task.state !== "running") return; // the partition moved; its new owner re-prices the car
    this.observer.priced(this.ports.clock.now() - owner.since);
    task.collector.car(car);
    task.collector.state(key, null);
  }

  /**
   * No room → every task stops fetching (the join of cars already read goes on): the waiting
   * set is full, or every task's join was held back for lack of room. A set filled by whole
   * timestamps can stay a few cars short of its bound (join-budget.ts); while some task can
   * still join on, reading goes on, as it moves the safe time that task waits for.
   */
  setNoRoom(pricingFull: boolean): void {
    const running = this.running();
    const noRoom = pricingFull || (running.length > 0 && running.every((t) => t.heldForRoom));
    for (const task of this.tasks.values()) task.setNoRoom(noRoom);
  }

  /** Each assigned partition as /health judges it. */
  views(lag: ReadonlyMap<string, number>): PartitionView[] {
    const now = this.ports.clock.now();
    return this.assigned.map((p) => {
      const task = this.tasks.get(p);
      const behind = INPUT_ROLES.some((r) => (lag.get(`${this.options.topics[r]}:${p}`) ?? 0) > 0);
      const inputWaiting = behind || (task?.buffered() ?? 0) > 0;
      if (!inputWaiting) this.progress.progressed(p, now);
      const error = this.errors.get(p);
      return {
        partition: p,
        state: task?.state ?? "unowned",
        inputWaiting,
        lastProgressAt: this.progress.get(p),
        pauses: task?.pauses() ?? new Map(),
        lanes: task?.lanes() ?? [],
        ...(task === undefined ? {} : { waiting: { parts: task.waitingParts(), laggard: task.laggard() } }),
        ...(error === undefined ? {} : { lastError: error }),
      };
    });
  }

  /** Closes every task after its last transaction (a polite stop). */
  async closeAll(): Promise<void> {
    for (const task of [...this.tasks.values()]) await this.close(task, "revoked");
  }

  private committed(report: CommitReport): void {
    if (report.error !== undefined) this.errors.set(report.partition, `commit failed: ${(report.error as Error)?.message ?? String(report.error)}`);
    else {
      this.errors.delete(report.partition);
      if (report.batch.advanced) this.progress.progressed(report.partition, this.ports.clock.now());
    }
    this.observer.committed(report);
  }
}
