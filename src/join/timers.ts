// Event-time timers: a min-heap of (due time, carId). Cancelling is lazy: the owner checks,
// when a timer fires, that it still means something (the car's window end still equals the
// due time). O(log n) insert and pop; 100k+ open cars cost a few MB. A hashed wheel would be
// O(1) per timer, but a heap pops in an exact, deterministic order at no measurable cost here.
import { MinHeap } from "../heap.ts";

export interface Timer {
  due: number;
  carId: string;
}

export class TimerHeap {
  private readonly heap = new MinHeap<Timer>((a, b) => a.due < b.due || (a.due === b.due && a.carId < b.carId));

  get size(): number {
    return this.heap.size;
  }

  add(due: number, carId: string): void {
    this.heap.push({ due, carId });
  }

  /** Removes and returns every timer due at or before `time`, earliest first (ties by carId). */
  popDue(time: number): Timer[] {
    const out: Timer[] = [];
    while ((this.heap.peek()?.due ?? Number.POSITIVE_INFINITY) <= time) out.push(this.heap.pop()!);
    return out;
  }
}
