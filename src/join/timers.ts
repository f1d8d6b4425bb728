// Event-time timers of the join: (due, carId) pairs popped in exact (due, carId) order.
//
// Why a binary heap and not a bucketed wheel: the order in which a watermark closes windows
// must be exact and deterministic — (end, then carId) — so that a restarted engine emits the
// same sequence. A wheel with 100 ms slots would still have to sort each slot on pop, and its
// O(1) insert buys little here: parts arrive almost in timestamp order, so a new due time is
// usually the largest in the heap and sift-up stops after one comparison; pop is O(log n),
// about 17 levels at 100k timers. The heap is two flat arrays (no object per timer), so 100k+
// timers cost ~2 MB and no GC churn.
//
// Cancelling is lazy: a timer that no longer means anything (its car completed early, or its
// window start moved) stays until due, and the owner ignores it then. So every armed deadline
// has a timer, and some timers are stale; `JoinShard` checks, on pop, that the deadline is real.

export interface Timer {
  due: number;
  carId: string;
}

export class TimerHeap {
  private readonly dues: number[] = [];
  private readonly ids: string[] = [];
  /** Comparisons made so far (tests check the cost stays logarithmic). */
  comparisons = 0;

  get size(): number {
    return this.dues.length;
  }

  /** Due time of the earliest timer, +Infinity when there is none (so `peekDue() <= t` needs `size > 0` too when t may be +Infinity). */
  peekDue(): number {
    return this.dues.length === 0 ? Number.POSITIVE_INFINITY : this.dues[0]!;
  }

  /** carId of the earliest timer (undefined when empty). */
  peekCarId(): string | undefined {
    return this.ids[0];
  }

  add(due: number, carId: string): void {
    const dues = this.dues;
    const ids = this.ids;
    let i = dues.length;
    dues.push(due);
    ids.push(carId);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(due, carId, dues[parent]!, ids[parent]!)) break;
      dues[i] = dues[parent]!;
      ids[i] = ids[parent]!;
      i = parent;
    }
    dues[i] = due;
    ids[i] = carId;
  }

  /** Removes the earliest timer. */
  pop(): void {
    const dues = this.dues;
    const ids = this.ids;
    const lastDue = dues.pop();
    const lastId = ids.pop();
    const n = dues.length;
    if (n === 0 || lastDue === undefined || lastId === undefined) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && this.before(dues[r]!, ids[r]!, dues[l]!, ids[l]!) ? r : l;
      if (!this.before(dues[m]!, ids[m]!, lastDue, lastId)) break;
      dues[i] = dues[m]!;
      ids[i] = ids[m]!;
      i = m;
    }
    dues[i] = lastDue;
    ids[i] = lastId;
  }

  /** Removes and returns every timer due at or before `time`, earliest first (ties by carId). */
  popDue(time: number): Timer[] {
    const out: Timer[] = [];
    while (this.dues.length > 0 && this.dues[0]! <= time) {
      out.push({ due: this.dues[0]!, carId: this.ids[0]! });
      this.pop();
    }
    return out;
  }

  private before(aDue: number, aId: string, bDue: number, bId: string): boolean {
    this.comparisons++;
    return aDue < bDue || (aDue === bDue && aId < bId);
  }
}
