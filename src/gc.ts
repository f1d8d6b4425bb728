// When a thread asks for a full garbage collection. Pure: the caller passes the clock and what
// it did; the collection is the caller's.
//
// Why at all. JSC frees the objects of a burst (fetched records, cloned batches, the parts that
// waited for the safe time, encoded states) in its quick collections, but the pages they
// occupied stay resident until a full one, and JSC runs those when it decides to. Measured
// with `bun run bench -- --bench-parts memory` (100,000 open cars, the input then idle): with
// no explicit collection, or one only when a tick hands a worker nothing, RSS stayed at
// 345–400 MB for ~230 MB once collected, and the main thread's heap at 28–63 MB for 22 MB.
//
// Rules.
//  1. Never more often than every `minIntervalMs`. On the main thread `Bun.gc(false)` collects
//     concurrently and has mimalloc return the freed pages: ~1 ms to call, event-loop gaps of
//     4–7 ms on a 44 MB heap, where the synchronous `Bun.gc(true)` paused it 120–140 ms (every
//     price response and commit waits that long). A join worker idles between tasks, and a
//     concurrent collection asked for there never finished (its heap stayed at 70–80 MB), so a
//     worker collects synchronously, between tasks.
//  2. After `afterWork` units of work (records a worker was handed or joined, records the main
//     thread read): a steady stream gets one collection per interval at most.
//  3. After any work at all once the thread is quiet (it was handed nothing and nothing waits):
//     the tail of a burst is collected too, not only its bulk.
export class CollectionPolicy {
  private work = 0;
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly minIntervalMs: number,
    private readonly afterWork: number,
  ) {}

  /** Counts work done since the last collection. */
  did(units: number): void {
    this.work += units;
  }

  /** Whether to collect now; if so, counts it as done at `now`. */
  due(now: number, quiet: boolean): boolean {
    if (this.work === 0 || now - this.lastAt < this.minIntervalMs) return false;
    if (this.work < this.afterWork && !quiet) return false;
    this.work = 0;
    this.lastAt = now;
    return true;
  }
}
