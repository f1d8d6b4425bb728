// How far a partition's join may go this tick, so that the cars waiting for prices stay within
// PRICE_MAX_WAITING_CARS (SPEC §5). Pure: parts in, a safe time out.
//
// Parts reach the join when the safe time passes them (src/join/safe-time.ts), and the parts
// of one car complete it at most once. So the room for cars (the bound minus the cars waiting)
// is spent on distinct cars: the join's safe time is the partition's safe time, lowered so that
// no more distinct cars than the room have parts below it. Lowering it by timestamp, never
// inside one, keeps rule 2 of the safe time ("every part below it was joined, none at or
// above it"), which the committed positions rely on (lane-position.ts).
//
// One exception keeps it live: the cars of one timestamp cannot be split, so when the first
// timestamp alone has more cars than the whole bound (the room when nothing waits for
// prices), its parts go through at once: waiting for more room would wait forever.
//
// The parts waiting in the join workers are mirrored here by timestamp and carId (the workers
// report the parts they took in each tick). The records handed over in the same tick are not
// decoded yet: each counts as a car of its own, so the room is never overspent, only sometimes
// underspent by a tick.

/** A part that started waiting in a join worker: its timestamp and car. */
export interface TakenPart {
  timestamp: number;
  carId: string;
}

export class JoinBudget {
  /** The waiting parts, ascending by timestamp from `head`. */
  private waiting: TakenPart[] = [];
  private head = 0;
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
   * the `handed` records' timestamps) are of at most `room` cars; else the first timestamp at
   * which they would be more, but never lower than before. `bound`: the room when no car waits
   * (the exception above). `cars`: how many cars may complete below it.
   */
  advance(safeTime: number, room: number, handed: readonly number[], bound = room): { safeTime: number; cars: number } {
    const target = Math.max(safeTime, this.value);
    const extra = [...handed].sort((a, b) => a - b);
    const carsBelow = (t: number) => this.walk(extra, t, Number.POSITIVE_INFINITY).cars;
    if (target === this.value) return { safeTime: this.value, cars: carsBelow(this.value) };
    const { cars, overflowAt } = this.walk(extra, target, room);
    if (overflowAt === undefined) {
      this.value = target;
      return { safeTime: this.value, cars };
    }
    if (overflowAt > this.value) this.value = overflowAt;
    else if (room >= bound) {
      // The first timestamp's cars do not fit even in the whole bound: let them through.
      const next = this.firstAbove(extra, overflowAt);
      this.value = Math.min(next, target);
    }
    return { safeTime: this.value, cars: carsBelow(this.value) };
  }

  /** After the tick: the parts the workers took in, then drops those that left (below the join's safe time). */
  settle(taken: readonly TakenPart[]): void {
    for (const p of taken) this.insert(p);
    let h = this.head;
    while (h < this.waiting.length && this.waiting[h]!.timestamp < this.value) h++;
    this.head = h;
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Walks waiting ∪ extra (each extra record a car of its own) in timestamp order below
   * `until`, counting distinct cars; stops at the first timestamp whose cars would make more
   * than `room` (`overflowAt`).
   */
  private walk(extra: readonly number[], until: number, room: number): { cars: number; overflowAt?: number } {
    const seen = new Set<string>();
    let anonymous = 0;
    let i = this.head;
    let j = 0;
    let groupTs = Number.NaN;
    let beforeGroup = 0;
    for (;;) {
      const a = i < this.waiting.length ? this.waiting[i]!.timestamp : Number.POSITIVE_INFINITY;
      const b = j < extra.length ? extra[j]! : Number.POSITIVE_INFINITY;
      const t = Math.min(a, b);
      if (!(t < until)) return { cars: seen.size + anonymous };
      if (t !== groupTs) {
        groupTs = t;
        beforeGroup = seen.size + anonymous;
      }
      if (a <= b) seen.add(this.waiting[i++]!.carId);
      else {
        anonymous++;
        j++;
      }
      if (seen.size + anonymous > room) return { cars: beforeGroup, overflowAt: groupTs };
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

  /** Parts mostly arrive in timestamp order: insertion walks back from the end. */
  private insert(p: TakenPart): void {
    const w = this.waiting;
    let i = w.length;
    w.push(p);
    while (i > this.head && w[i - 1]!.timestamp > p.timestamp) {
      w[i] = w[i - 1]!;
      i--;
    }
    w[i] = p;
  }
}
