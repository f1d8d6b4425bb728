// Timestamp synchronisation of one input partition's four topic-partitions (a "partition
// group", as Kafka Streams calls a task's inputs), so that every join rule is a function of
// the input records alone, whatever order and pace the client fetches them in. Pure: the
// caller passes fetch times; no clock is read here.
//
// Lanes. One per input role (body, engine, remoteControl, wheel) = one topic-partition. A lane
// holds fetched, not yet released records in offset order (the caller pushes each
// topic-partition's records in offset order, without gaps or repeats), the time of its
// latest fetch with data (lastFetchAt), and caughtUpAt: the latest time F for which it is
// known that everything appended to the topic-partition before F has been pushed — from a
// fetch that ended at the log end (push with a highWatermark, or markCaughtUp(role, F)),
// or from a log-end probe that found the consumer position at the end (markCaughtUp).
//
// A lane is *caught up* when it is empty and caughtUpAt >= lastFetchAt (the evidence is not
// older than its own newest data).
//
// Release rule. The candidate is the smallest head by timestamp; ties go to the role order
// body, engine, remoteControl, wheel, and within a lane to offset order. The candidate leaves
// only if every other lane either has a buffered head (so nothing older can come before it:
// lanes are in offset order and the candidate is the smallest head) or is caught up with
// caughtUpAt >= the candidate's fetchedAt. The last condition stops a record from overtaking
// an older one that was already in another lane's log when the candidate was fetched but has
// not been handed over yet. An empty lane that is behind blocks the whole group: its next
// record may be older than anything buffered. So a backlog leaves in the same order at any
// read speed and under any interleaving of fetches.
//
// Watermark. Starts at -Infinity and never goes back. It is the largest timestamp released
// so far; in addition, when every lane is empty and caught up, it may advance to
// min over lanes of (caughtUpAt) − idleGraceMs: everything appended before the oldest
// evidence has been released, and a producer is allowed idleGraceMs between a record's
// timestamp and its append. The clock enters only through evidence: if fetches and probes
// stop (broker down), caughtUpAt stops and so does the watermark.
//
// Announced watermark (for the repartition hop, src/engine/safe-time.ts): what this group
// promises about the records it releases later. The largest timestamp released only bounds
// them up to the producers' disorder: records appended out of timestamp order by up to
// idleGraceMs (the grace SPEC §4 allows between a record's timestamp and its append) are not
// late. So it is max(largest released − idleGraceMs, the idle advance), which the idle advance
// keeps at the clock − idleGraceMs while the group is caught up.
//
// Bound. isFull(role) once a lane holds maxBufferedPerTopic records: the caller pauses that
// topic-partition and resumes it when isFull turns false after a drain.
import type { InputRole } from "../domain.ts";
import { INPUT_ROLES, ROLE_INDEX } from "../domain.ts";

export interface Timestamped {
  offset: string;
  /** Event time: the Kafka record timestamp. */
  timestamp: number;
  /** When the record was fetched (wall clock of the caller). */
  fetchedAt: number;
}

export interface MergeOptions {
  idleGraceMs: number;
  /** Records buffered per topic-partition before isFull() asks the caller to pause it. */
  maxBufferedPerTopic: number;
}

export interface Released<R> {
  role: InputRole;
  record: R;
}

export interface LaneStats {
  role: InputRole;
  buffered: number;
  lastFetchAt: number;
  caughtUpAt: number;
  caughtUp: boolean;
}

class Lane<R> {
  queue: R[] = [];
  head = 0;
  lastFetchAt = Number.NEGATIVE_INFINITY;
  caughtUpAt = Number.NEGATIVE_INFINITY;

  constructor(readonly role: InputRole) {}

  get size(): number {
    return this.queue.length - this.head;
  }

  caughtUp(): boolean {
    return this.head === this.queue.length && this.caughtUpAt > Number.NEGATIVE_INFINITY && this.caughtUpAt >= this.lastFetchAt;
  }

  /** Drops released records from the front once they are a good part of the array. */
  compact(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}

export class PartitionGroup<R extends Timestamped> {
  /** Indexed in role order, which is also the tie order. */
  private lanes: Lane<R>[] = [];
  private watermark = Number.NEGATIVE_INFINITY;
  private largestReleased = Number.NEGATIVE_INFINITY;
  private idleAdvance = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: MergeOptions) {
    this.clear();
  }

  /** Forgets every buffered record and all evidence (after seeking back to committed offsets). The watermark stays. */
  clear(): void {
    this.lanes = INPUT_ROLES.map((role) => new Lane<R>(role));
  }

  /**
   * Buffers records of one fetch (offset order, continuing the lane's previous push).
   * `highWatermark`, the topic-partition's log end as the fetch response reported it, makes
   * this fetch evidence of being caught up at `fetchedAt` when the records reach it.
   */
  push(role: InputRole, records: readonly R[], fetchedAt: number, highWatermark?: string | bigint): void {
    const lane = this.lanes[ROLE_INDEX[role]]!;
    for (const r of records) lane.queue.push(r);
    if (records.length > 0 && fetchedAt > lane.lastFetchAt) lane.lastFetchAt = fetchedAt;
    if (highWatermark !== undefined) {
      const last = records[records.length - 1];
      if (last === undefined || BigInt(last.offset) + 1n >= BigInt(highWatermark)) this.markCaughtUp(role, fetchedAt);
    }
  }

  /** Everything appended to this topic-partition before `at` has been pushed. */
  markCaughtUp(role: InputRole, at: number): void {
    const lane = this.lanes[ROLE_INDEX[role]]!;
    if (at > lane.caughtUpAt) lane.caughtUpAt = at;
  }

  isFull(role: InputRole): boolean {
    return this.lanes[ROLE_INDEX[role]]!.size >= this.options.maxBufferedPerTopic;
  }

  buffered(): number {
    let n = 0;
    for (const lane of this.lanes) n += lane.size;
    return n;
  }

  currentWatermark(): number {
    return this.watermark;
  }

  /** No record released from now on is stamped below this, unless a producer broke the grace (see the header). */
  announcedWatermark(): number {
    return Math.max(this.largestReleased - this.options.idleGraceMs, this.idleAdvance);
  }

  stats(): LaneStats[] {
    return this.lanes.map((l) => ({ role: l.role, buffered: l.size, lastFetchAt: l.lastFetchAt, caughtUpAt: l.caughtUpAt, caughtUp: l.caughtUp() }));
  }

  /**
   * Releases what the rule allows (at most `limit` records, none stamped after `until`), in
   * order, and the watermark after it. `until` holds a source back for alignment
   * (src/engine/safe-time.ts rule 5); what it holds is released, in the same order, later.
   */
  drain(limit = Number.POSITIVE_INFINITY, until = Number.POSITIVE_INFINITY): { records: Released<R>[]; watermark: number } {
    const out: Released<R>[] = [];
    const lanes = this.lanes;
    while (out.length < limit) {
      let best: Lane<R> | undefined;
      let bestRecord: R | undefined;
      for (const lane of lanes) {
        const r = lane.queue[lane.head];
        // Strict <: on equal timestamps the earlier role wins.
        if (r !== undefined && (bestRecord === undefined || r.timestamp < bestRecord.timestamp)) {
          best = lane;
          bestRecord = r;
        }
      }
      if (best === undefined || bestRecord === undefined) break;
      if (bestRecord.timestamp > until || this.blocked(bestRecord.fetchedAt)) break;
      best.head++;
      out.push({ role: best.role, record: bestRecord });
      if (bestRecord.timestamp > this.watermark) this.watermark = bestRecord.timestamp;
      if (bestRecord.timestamp > this.largestReleased) this.largestReleased = bestRecord.timestamp;
    }
    let idle = true;
    let evidence = Number.POSITIVE_INFINITY;
    for (const lane of lanes) {
      lane.compact();
      if (!lane.caughtUp()) idle = false;
      else if (lane.caughtUpAt < evidence) evidence = lane.caughtUpAt;
    }
    if (idle && evidence - this.options.idleGraceMs > this.idleAdvance) this.idleAdvance = evidence - this.options.idleGraceMs;
    if (this.idleAdvance > this.watermark) this.watermark = this.idleAdvance;
    return { records: out, watermark: this.watermark };
  }

  /** Some empty lane might still hold, in its log, a record older than one fetched at `fetchedAt`. */
  private blocked(fetchedAt: number): boolean {
    for (const lane of this.lanes) {
      if (lane.head === lane.queue.length && !(lane.caughtUp() && lane.caughtUpAt >= fetchedAt)) return true;
    }
    return false;
  }
}
