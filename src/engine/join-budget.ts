// How far a partition's join may go this tick, so that the cars waiting for prices stay within
// PRICE_MAX_WAITING_CARS (SPEC §5). Pure: timestamps in, a safe time out.
//
// Each part that reaches the join completes at most one car, and parts reach it when the safe
// time passes them (src/join/safe-time.ts). So the room for cars (the bound minus the cars
// waiting) is spent on parts: the join's safe time is the partition's safe time, lowered so
// that no more parts than the room lie below it. Lowering it by timestamp, never inside one,
// keeps rule 2 of the safe time ("every part below it was joined, none at or above it"), which
// the committed positions rely on (lane-position.ts).
//
// One exception keeps it live: parts that share one timestamp cannot be split, so when the
// first such group alone is larger than the whole bound (the room when nothing waits for
// prices), it goes through at once: waiting for more room would wait forever.
//
// The parts waiting in the join workers are mirrored here by their timestamps (the workers
// report what they took in each tick). The records handed over in the same tick are not known
// yet to be parts (they may be re-keyed or dead letters): they count as parts, so the room is
// never overspent, only sometimes underspent by a tick.
export class JoinBudget {
  /** Timestamps of the parts waiting in the workers, ascending from `head`. */
  private waiting: number[] = [];
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
   * The join's safe time for this tick: `safeTime` if at most `room` parts (the waiting ones
   * and the `handed` records) lie below it; else the timestamp of the first part past the
   * room (parts below it fit), but never lower than before. `bound`: the room when nothing
   * waits for prices (the exception above).
   */
  advance(safeTime: number, room: number, handed: readonly number[], bound = room): { safeTime: number; parts: number } {
    const target = Math.max(safeTime, this.value);
    const below = (t: number) => this.countBelow(t) + count(handed, (x) => x < t);
    const all = below(target);
    if (all <= room || target === this.value) {
      // Parts below a safe time already reached (late ones) leave whatever the room.
      this.value = target;
      return { safeTime: this.value, parts: all };
    }
    // The (room + 1)-th smallest timestamp of waiting ∪ handed.
    const extra = [...handed].sort((a, b) => a - b);
    let i = this.head;
    let j = 0;
    let t = Number.NEGATIVE_INFINITY;
    for (let k = 0; k <= room; k++) {
      const a = i < this.waiting.length ? this.waiting[i]! : Number.POSITIVE_INFINITY;
      const b = j < extra.length ? extra[j]! : Number.POSITIVE_INFINITY;
      if (a <= b) {
        t = a;
        i++;
      } else {
        t = b;
        j++;
      }
    }
    if (t > this.value) this.value = Math.min(t, target);
    else if (room >= bound) {
      // Nothing fits although the whole bound is free: let the first timestamp's parts through.
      const first = Math.min(this.waiting[this.head] ?? Number.POSITIVE_INFINITY, extra[0] ?? Number.POSITIVE_INFINITY);
      let next = target;
      for (let k = this.head; k < this.waiting.length; k++)
        if (this.waiting[k]! > first) {
          next = Math.min(next, this.waiting[k]!);
          break;
        }
      for (const x of extra)
        if (x > first) {
          next = Math.min(next, x);
          break;
        }
      this.value = Math.max(this.value, next);
    }
    return { safeTime: this.value, parts: below(this.value) };
  }

  /** After the tick: the parts the workers took in, then the ones that left (below the join's safe time). */
  settle(taken: readonly number[]): void {
    for (const t of taken) this.insert(t);
    let h = this.head;
    while (h < this.waiting.length && this.waiting[h]! < this.value) h++;
    this.head = h;
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }

  private countBelow(t: number): number {
    let lo = this.head;
    let hi = this.waiting.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.waiting[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.head;
  }

  /** Parts mostly arrive in timestamp order: insertion walks back from the end. */
  private insert(t: number): void {
    const w = this.waiting;
    let i = w.length;
    w.push(t);
    while (i > this.head && w[i - 1]! > t) {
      w[i] = w[i - 1]!;
      i--;
    }
    w[i] = t;
  }
}

function count(xs: readonly number[], pred: (x: number) => boolean): number {
  let n = 0;
  for (const x of xs) if (pred(x)) n++;
  return n;
}
