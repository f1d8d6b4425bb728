// One partition's pauses of its four input topic-partitions, for both reasons a task stops
// fetching: a lane holds MAX_BUFFERED_RECORDS, or there is no room for more cars waiting for
// prices. kafkajs keeps a pause across seek() and reassignment, so a pause taken and never
// given back stops that topic-partition for good; the gate is the only place that pauses or
// resumes, and it gives back every pause it took when the task rewinds or closes.
import type { InputRole } from "../domain.ts";
import { INPUT_ROLES } from "../domain.ts";
import type { InputPort } from "./ports.ts";

export type PauseReason = "lane_full" | "no_room";

export class PauseGate {
  private readonly laneFull = new Set<InputRole>();
  private noRoom = false;
  /** What the consumer has been told. */
  private readonly paused = new Set<InputRole>();

  constructor(
    private readonly partition: number,
    private readonly input: InputPort,
  ) {}

  setLaneFull(role: InputRole, full: boolean): void {
    if (full) this.laneFull.add(role);
    else this.laneFull.delete(role);
    this.apply(role);
  }

  setNoRoom(noRoom: boolean): void {
    if (noRoom === this.noRoom) return;
    this.noRoom = noRoom;
    for (const role of INPUT_ROLES) this.apply(role);
  }

  /** Why each paused topic-partition is paused. */
  reasons(): Map<InputRole, PauseReason[]> {
    const out = new Map<InputRole, PauseReason[]>();
    for (const role of this.paused) {
      const why: PauseReason[] = [];
      if (this.laneFull.has(role)) why.push("lane_full");
      if (this.noRoom) why.push("no_room");
      out.set(role, why);
    }
    return out;
  }

  isPaused(role: InputRole): boolean {
    return this.paused.has(role);
  }

  /**
   * Resumes all four topic-partitions, whoever paused them (an earlier task of this partition
   * in this process may have), and forgets every reason: used when the task starts reading
   * from its committed offsets and when it closes.
   */
  releaseAll(): void {
    this.laneFull.clear();
    this.noRoom = false;
    this.paused.clear();
    for (const role of INPUT_ROLES) this.input.resume(role, this.partition);
  }

  private apply(role: InputRole): void {
    const want = this.noRoom || this.laneFull.has(role);
    if (want === this.paused.has(role)) return;
    if (want) {
      this.paused.add(role);
      this.input.pause(role, this.partition);
    } else {
      this.paused.delete(role);
      this.input.resume(role, this.partition);
    }
  }
}
