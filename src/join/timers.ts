// Event-time timers: a binary min-heap of (due time, carId). Cancelling is lazy: the owner
// checks, when a timer fires, that it still means something (the car's window end still
// equals the due time). O(log n) insert and pop; 100k+ open cars cost a few MB.

export interface Timer {
  due: number;
  carId: string;
}

export class TimerHeap {
  private readonly heap: Timer[] = [];

  get size(): number {
    return this.heap.length;
  }

  add(due: number, carId: string): void {
    const h = this.heap;
    h.push({ due, carId });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  /** Removes and returns every timer due at or before `time`, earliest first (ties by carId). */
  popDue(time: number): Timer[] {
    const out: Timer[] = [];
    while (this.heap.length > 0 && this.heap[0]!.due <= time) out.push(this.pop());
    return out;
  }

  private pop(): Timer {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.due < b.due || (a.due === b.due && a.carId < b.carId);
}
