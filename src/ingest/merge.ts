// Timestamp synchronisation of one input partition's four topic-partitions (a "partition
// group", as Kafka Streams calls a task's inputs). Pure: the caller passes fetch times.
//
// Release rule: records leave in timestamp order — the smallest head first, ties by topic
// (body, engine, remoteControl, wheel), then by offset — and only while every other
// topic-partition either has a buffered record or is caught up: its buffer is empty and the
// latest evidence that it reached its log end (a fetch that ended there, or a log-end probe)
// is not older than its own last fetched data nor than the fetch that brought the record
// about to leave. (Without the last condition, a record could overtake an older one that
// came in the same fetch response but was handed over a moment later.) A topic-partition
// that is behind and empty blocks the group: its next record may be older than anything
// buffered. So a backlog is read in the same order at any speed.
//
// Watermark: the largest timestamp released so far. When every topic-partition is drained and
// caught up, it may also advance to (oldest caught-up evidence − idleGraceMs): everything
// produced before that has been delivered, allowing idleGraceMs for the producer to reach the
// log. The watermark advances only on evidence; if fetching stops (broker down), it stops.
import type { InputRole } from "../domain.ts";
import { INPUT_ROLES } from "../domain.ts";

export interface Timestamped {
  offset: string;
  timestamp: number;
  /** When the record was fetched. */
  fetchedAt: number;
}

export interface MergeOptions {
  idleGraceMs: number;
  /** Records buffered per topic-partition before isFull() asks the source to pause it. */
  maxBufferedPerTopic: number;
}

export interface Released<R> {
  role: InputRole;
  record: R;
}

interface Lane<R> {
  queue: R[];
  head: number;
  /** When records were last fetched for this topic-partition. */
  lastFetchAt: number;
  /** When it was last known to be at its log end. */
  caughtUpAt: number;
}

export class PartitionGroup<R extends Timestamped> {
  private readonly lanes = new Map<InputRole, Lane<R>>();
  private watermark = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: MergeOptions) {
    this.clear();
  }

  /** Forgets every buffered record and all evidence (after seeking back to committed offsets). */
  clear(): void {
    for (const role of INPUT_ROLES) this.lanes.set(role, { queue: [], head: 0, lastFetchAt: Number.NEGATIVE_INFINITY, caughtUpAt: Number.NEGATIVE_INFINITY });
  }

  push(role: InputRole, records: readonly R[], fetchedAt: number): void {
    const lane = this.lanes.get(role)!;
    for (const r of records) lane.queue.push(r);
    lane.lastFetchAt = Math.max(lane.lastFetchAt, fetchedAt);
  }

  markCaughtUp(role: InputRole, at: number): void {
    const lane = this.lanes.get(role)!;
    lane.caughtUpAt = Math.max(lane.caughtUpAt, at);
  }

  isFull(role: InputRole): boolean {
    const lane = this.lanes.get(role)!;
    return lane.queue.length - lane.head >= this.options.maxBufferedPerTopic;
  }

  buffered(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.queue.length - lane.head;
    return n;
  }

  currentWatermark(): number {
    return this.watermark;
  }

  /** Releases what the rule allows (at most `limit` records), in order, and the watermark after it. */
  drain(limit = Number.POSITIVE_INFINITY): { records: Released<R>[]; watermark: number } {
    const out: Released<R>[] = [];
    while (out.length < limit) {
      let best: InputRole | undefined;
      let bestRecord: R | undefined;
      for (const role of INPUT_ROLES) {
        const lane = this.lanes.get(role)!;
        const r = lane.queue[lane.head];
        if (r !== undefined && (bestRecord === undefined || r.timestamp < bestRecord.timestamp)) {
          best = role;
          bestRecord = r;
        }
      }
      if (best === undefined || bestRecord === undefined) break;
      const fetchedAt = bestRecord.fetchedAt;
      const blocked = [...this.lanes.values()].some((l) => l.head === l.queue.length && !(caughtUp(l) && l.caughtUpAt >= fetchedAt));
      if (blocked) break;
      const lane = this.lanes.get(best)!;
      lane.head++;
      out.push({ role: best, record: bestRecord });
      if (bestRecord.timestamp > this.watermark) this.watermark = bestRecord.timestamp;
    }
    for (const lane of this.lanes.values()) compact(lane);
    const lanes = [...this.lanes.values()];
    if (lanes.every((l) => l.head === l.queue.length && caughtUp(l))) {
      const evidence = Math.min(...lanes.map((l) => l.caughtUpAt));
      if (evidence - this.options.idleGraceMs > this.watermark) this.watermark = evidence - this.options.idleGraceMs;
    }
    return { records: out, watermark: this.watermark };
  }
}

function caughtUp<R>(lane: Lane<R>): boolean {
  return lane.head === lane.queue.length && lane.caughtUpAt >= lane.lastFetchAt && lane.caughtUpAt > Number.NEGATIVE_INFINITY;
}

/** Drops released records from the front once they are a good part of the array. */
function compact<R>(lane: Lane<R>): void {
  if (lane.head === lane.queue.length) {
    lane.queue = [];
    lane.head = 0;
  } else if (lane.head > 4096 && lane.head * 2 > lane.queue.length) {
    lane.queue = lane.queue.slice(lane.head);
    lane.head = 0;
  }
}
