// Liveness (SPEC §10): a partition is stalled when it has input waiting and made no progress
// for STALL_TIMEOUT_MS; /health then says which partition and why. Pure: the caller gathers
// each assigned partition's view and passes the time.
import type { InputRole } from "../domain.ts";
import type { LaneStats } from "../ingest/index.ts";
import type { PauseReason } from "./pause-gate.ts";
import type { TaskState } from "./task.ts";

export interface PartitionView {
  partition: number;
  /** `unowned`: assigned to this process but no task yet (taking it failed and is retried). */
  state: TaskState | "unowned";
  /** Records buffered or behind the log end. */
  inputWaiting: boolean;
  /** Last time its committed input offsets advanced, or it had nothing to do. */
  lastProgressAt: number;
  pauses: ReadonlyMap<InputRole, readonly PauseReason[]>;
  lanes: readonly LaneStats[];
  /** Parts waiting in the join workers for the safe time, and the marker that holds it back. */
  waiting?: { parts: number; laggard?: { role: InputRole; source: number; watermark: number } };
  /** Why the last commit or the last attempt to take the partition failed, if it did. */
  lastError?: string;
}

export interface Stall {
  partition: number;
  reason: string;
  forMs: number;
}

const PAUSE_TEXT: Record<PauseReason, string> = {
  lane_full: "lane full (MAX_BUFFERED_RECORDS)",
  no_room: "no room for more cars waiting for prices (PRICE_MAX_WAITING_CARS)",
};

/** Why a partition makes no progress, judged from what holds now. */
export function stallReason(v: PartitionView): string {
  if (v.state === "unowned") return `restoring: not taken yet${v.lastError ? ` (${v.lastError})` : ""}`;
  if (v.state === "restoring") return "restoring";
  if (v.lastError !== undefined) return `commit failing: ${v.lastError}`;
  const paused = [...v.pauses].map(([role, why]) => `${role} ${why.map((w) => PAUSE_TEXT[w]).join(", ")}`);
  if (paused.length > 0) return `paused: ${paused.join("; ")}`;
  const buffered = v.lanes.some((l) => l.buffered > 0);
  const behind = v.lanes.filter((l) => l.buffered === 0 && !l.caughtUp).map((l) => l.role);
  if (buffered && behind.length > 0) return `blocked: lane ${behind.join(", ")} is empty and not caught up (nothing fetched)`;
  if (v.waiting !== undefined && v.waiting.parts > 0) {
    const l = v.waiting.laggard;
    const by =
      l === undefined
        ? ""
        : Number.isFinite(l.watermark)
          ? `; slowest: partition ${l.source}'s watermark ${new Date(l.watermark).toISOString()} (${l.role} repartition topic)`
          : `; partition ${l.source} never announced its watermark (${l.role} repartition topic): is it owned by a live instance?`;
    return `waiting for the safe time: ${v.waiting.parts} parts wait for the repartition hop${by}`;
  }
  return "no records fetched";
}

export function findStalls(views: readonly PartitionView[], now: number, stallTimeoutMs: number): Stall[] {
  const stalls: Stall[] = [];
  for (const v of views) {
    const forMs = now - v.lastProgressAt;
    if (v.inputWaiting && forMs >= stallTimeoutMs) stalls.push({ partition: v.partition, reason: stallReason(v), forMs });
  }
  return stalls;
}

/** Per partition, the last time it progressed. Survives the partition's task being rebuilt. */
export class ProgressClock {
  private readonly last = new Map<number, number>();

  /** First seen now (assigned): progress is counted from here. */
  track(partition: number, now: number): void {
    if (!this.last.has(partition)) this.last.set(partition, now);
  }

  progressed(partition: number, now: number): void {
    this.last.set(partition, now);
  }

  get(partition: number): number {
    return this.last.get(partition) ?? Number.NEGATIVE_INFINITY;
  }

  /** Forgets partitions no longer assigned. */
  retain(partitions: readonly number[]): void {
    for (const p of [...this.last.keys()]) if (!partitions.includes(p)) this.last.delete(p);
  }
}
