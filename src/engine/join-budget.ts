// How far a partition's join may go this tick, so that the cars waiting for prices stay within
// PRICE_MAX_WAITING_CARS (SPEC §5). Pure: parts in, a safe time out.
//
// Parts reach the join when the safe time passes them (src/join/safe-time.ts). So the room for
// cars (the bound minus the cars waiting) is spent on the cars that parts below the join's safe
// time can complete: it is the partition's safe time, lowered so that they are at most the
// room. Lowering it by timestamp, never inside one, keeps rule 2 of the safe time ("every part
// below it was joined, none at or above it"), which the committed positions rely on
// (lane-position.ts).
//
// Which cars can complete is judged from slots: the slots each car with waiting parts has
// joined, plus those of its waiting parts. The workers report a car's joined slots whenever it
// takes a part or changes while parts of it wait, and nothing else: only cars with waiting
// parts are kept here (100,000 open cars held idle cost the main thread ~15 MB when every open
// car was mirrored). A car with no report may complete with any part, and so may every record
// handed over in the same tick (not decoded yet): the room is never overspent, only sometimes
// underspent for a tick. A part past its car's window that opens a new one is counted as if it
// joined the old: also an overestimate.
//
// One exception keeps it live: the cars of one timestamp cannot be split, so when the first
// timestamp alone can complete more cars than the whole bound (the room when nothing waits
// for prices), its parts go through at once: waiting for more room would wait forever.
//
// Filling by whole timestamps, the waiting set can stop short of its bound: producers stamp a
// batch's records alike, so dozens of cars may complete at one millisecond, and when they do
// not all fit in the room left, none go. The set is then as full as timestamps allow; it is
// never over its bound.
import { ALL_SLOTS } from "../join/car.ts";

/** A part that started waiting in a join worker: its timestamp, car and slot (0–6). */
export interface TakenPart {
  timestamp: number;
  carId: string;
  slot: number;
}

/** A waiting part, and the settle (wall-clock ms, the caller's) that took it in. */
interface WaitingPart extends TakenPart {
  takenAt: number;
}

export class JoinBudget {
  /** The waiting parts, ascending by timestamp from `head`. */
  private waiting: WaitingPart[] = [];
  private head = 0;
  /** Waiting parts per car. */
  private readonly waitingOf = new Map<string, number>();
  /** Slots joined (a bitmask) per car with waiting parts, as reported. */
  private readonly joined = new Map<string, number>();
  /** The join's safe time: never decreases. */
  private value: number;

  constructor(floor = Number.NEGATIVE_INFINITY) {
    this.value = floor;
  }

  get safeTime(): number {
    return this.value;
  }

  get size(): number {
    return this.waiting.length - this.head;
  }

  /**
   * The join's safe time for this tick: `safeTime` if the parts below it (the waiting ones and
   * the `handed` records' timestamps) can complete at most `room` cars; else the first
   * timestamp at which they could complete more, but never lower than before. `bound`: the room
   * when no car waits (the exception above). `cars`: how many may complete below it. `held`:
   * it is below `safeTime` for lack of room (when every task is held, input pauses: see
   * TaskManager.setNoRoom).
   */
  advance(safeTime: number, room: number, handed: readonly number[], bound: number): { safeTime: number; cars: number; held: boolean } {
    const target = Math.max(safeTime, this.value);
    const extra = [...handed].sort((a, b) => a - b);
    const result = (cars: number) => ({ safeTime: this.value, cars, held: this.value < target });
    if (target === this.value) return result(this.walk(extra, this.value, Number.POSITIVE_INFINITY).cars);
    const { cars, overflowAt } = this.walk(extra, target, room);
    if (overflowAt === undefined) {
      this.value = target;
      return result(cars);
    }
    if (overflowAt > this.value) {
      // `cars` are those below the overflowing timestamp: below the new safe time.
      this.value = overflowAt;
      return result(cars);
    }
    if (room >= bound) this.value = Math.min(this.firstAbove(extra, overflowAt), target);
    return result(this.walk(extra, this.value, Number.POSITIVE_INFINITY).cars);
  }

  /**
   * After the tick: the parts the workers took in, the joined slots they report, and the parts
   * that left (below the join's safe time) dropped, with what is known of cars none of whose
   * parts wait any more.
   * Returns how long each part that left waited: from the settle that took it in to `now`
   * (the safe-time wait stage; the caller's clock, the same in every settle).
   */
  settle(taken: readonly TakenPart[], touched: readonly { carId: string; slots: number }[] = [], now = 0): number[] {
    this.insert(taken, now);
    for (const p of taken) this.waitingOf.set(p.carId, (this.waitingOf.get(p.carId) ?? 0) + 1);
    for (const { carId, slots } of touched) if (this.waitingOf.has(carId)) this.joined.set(carId, slots);
    const waited: number[] = [];
    let h = this.head;
    for (; h < this.waiting.length && this.waiting[h]!.timestamp < this.value; h++) {
      const p = this.waiting[h]!;
      waited.push(now - p.takenAt);
      const left = this.waitingOf.get(p.carId)! - 1;
      if (left > 0) this.waitingOf.set(p.carId, left);
      else {
        this.waitingOf.delete(p.carId);
        this.joined.delete(p.carId);
      }
    }
    this.head = h;
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    return waited;
  }

  /**
   * Walks waiting ∪ extra in timestamp order below `until`, counting the cars that become
   * complete; stops at the first timestamp whose cars would make more than `room`.
   */
  private walk(extra: readonly number[], until: number, room: number): { cars: number; overflowAt?: number } {
    const slots = new Map<string, number>();
    let cars = 0;
    let i = this.head;
    let j = 0;
    let groupTs = Number.NaN;
    let beforeGroup = 0;
    for (;;) {
      const a = i < this.waiting.length ? this.waiting[i]!.timestamp : Number.POSITIVE_INFINITY;
      const b = j < extra.length ? extra[j]! : Number.POSITIVE_INFINITY;
      const t = Math.min(a, b);
      if (!(t < until)) return { cars };
      if (t !== groupTs) {
        groupTs = t;
        beforeGroup = cars;
      }
      if (a <= b) {
        const p = this.waiting[i++]!;
        const before = slots.get(p.carId) ?? this.joined.get(p.carId) ?? -1;
        if (before === -1) {
          // Not reported: it may complete now, once.
          slots.set(p.carId, ALL_SLOTS);
          cars++;
        } else if (before !== ALL_SLOTS) {
          const after = before | (1 << p.slot);
          slots.set(p.carId, after);
          if (after === ALL_SLOTS) cars++;
        }
      } else {
        cars++;
        j++;
      }
      if (cars > room) return { cars: beforeGroup, overflowAt: groupTs };
    }
  }

  private firstAbove(extra: readonly number[], t: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (let k = this.head; k < this.waiting.length; k++) {
      if (this.waiting[k]!.timestamp > t) {
        next = this.waiting[k]!.timestamp;
        break;
      }
    }
    for (const x of extra) if (x > t && x < next) next = x;
    return next;
  }

  /**
   * A tick's parts come from several workers, each in timestamp order but not with each other:
   * sorted, then merged with the waiting parts from the first one above their smallest
   * timestamp. Equal timestamps keep arrival order.
   */
  private insert(taken: readonly TakenPart[], takenAt: number): void {
    if (taken.length === 0) return;
    const sorted = taken.map((p): WaitingPart => ({ ...p, takenAt })).sort((a, b) => a.timestamp - b.timestamp);
    const w = this.waiting;
    const first = sorted[0]!.timestamp;
    let lo = this.head;
    let hi = w.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (w[mid]!.timestamp <= first) lo = mid + 1;
      else hi = mid;
    }
    const above = w.splice(lo);
    let i = 0;
    let j = 0;
    while (i < above.length && j < sorted.length) w.push(above[i]!.timestamp <= sorted[j]!.timestamp ? above[i++]! : sorted[j++]!);
    while (i < above.length) w.push(above[i++]!);
    while (j < sorted.length) w.push(sorted[j++]!);
  }
}
