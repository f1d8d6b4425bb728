// Stage 2 of one input partition in one join worker: decoded parts wait here until the
// partition's safe time passes them, then leave in event-time order. Pure: the caller passes
// the safe time; nothing here reads a clock.
//
// Why. A partition's cars get parts from two kinds of lanes: its own input topic-partitions
// (parts already on their car's partition) and its repartition topic-partitions (parts that
// arrived elsewhere and were re-keyed by carId, SPEC §9). A repartition topic-partition
// interleaves the parts of every source partition in commit order, which depends on timing.
// Joining in arrival order would make outcomes depend on read speed (SPEC §4).
//
// Rules.
//  1. Order. Parts leave in (timestamp, role index, origin partition, origin offset) order,
//     where origin is the input topic-partition and offset the producer wrote the record to.
//     The key is unique per record, so the order is total and the same in every run.
//  2. Safe time S (given by the caller, never decreasing): no part that has not arrived yet
//     has a timestamp below S, late parts aside (see below). releaseBefore(S) lets out every
//     part with timestamp < S and only those, so the parts of a car leave in the order of
//     rule 1 whatever order they arrived in.
//  3. Late parts (timestamp < S on arrival: a producer whose clock or append lag broke the
//     idle grace) leave at the next release; their place among other parts then depends on
//     arrival, as a late record's does in any watermark-based stream processor.
//  4. Commit position. A lane's records arrive in offset order; lowestPending(lane) is the
//     smallest lane offset still waiting, so the caller never commits past a part that has
//     not been joined.
import type { Part, PartKind } from "../domain.ts";
import { MinHeap } from "../heap.ts";

export interface PendingPart {
  part: Part;
  kind: PartKind;
  timestamp: number;
  roleIndex: number;
  originPartition: number;
  originOffset: number;
  /** The lane the record was read from (its index in LANES) and its offset there. */
  lane: number;
  laneOffset: number;
  /** The record's key as its producer wrote it, and its value: what a dead letter carries. */
  key: Uint8Array | null;
  value: Uint8Array;
}

interface Entry {
  p: PendingPart;
  released: boolean;
}

function before(a: Entry, b: Entry): boolean {
  const x = a.p;
  const y = b.p;
  if (x.timestamp !== y.timestamp) return x.timestamp < y.timestamp;
  if (x.roleIndex !== y.roleIndex) return x.roleIndex < y.roleIndex;
  if (x.originPartition !== y.originPartition) return x.originPartition < y.originPartition;
  return x.originOffset < y.originOffset;
}

/** A lane's waiting entries in offset order; released ones are dropped from the front lazily. */
class LaneQueue {
  items: Entry[] = [];
  head = 0;

  lowest(): number {
    while (this.head < this.items.length && this.items[this.head]!.released) this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      return -1;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return this.items[this.head]!.p.laneOffset;
  }
}

export class SafeTimeBuffer {
  private readonly heap = new MinHeap<Entry>(before);
  private readonly lanes: LaneQueue[];
  /** Waiting parts per carId. */
  private readonly perCar = new Map<string, number>();

  constructor(laneCount: number) {
    this.lanes = Array.from({ length: laneCount }, () => new LaneQueue());
  }

  get size(): number {
    return this.heap.size;
  }

  /** Whether a part of this carId waits. */
  holdsPartOf(carId: string): boolean {
    return this.perCar.has(carId);
  }

  add(p: PendingPart): void {
    const e: Entry = { p, released: false };
    this.heap.push(e);
    this.lanes[p.lane]!.items.push(e);
    this.perCar.set(p.part.carId, (this.perCar.get(p.part.carId) ?? 0) + 1);
  }

  /** Rule 2: every part with timestamp < safeTime, in rule 1's order. */
  releaseBefore(safeTime: number): PendingPart[] {
    const out: PendingPart[] = [];
    for (let e = this.heap.peek(); e !== undefined && e.p.timestamp < safeTime; e = this.heap.peek()) {
      this.heap.pop();
      e.released = true;
      out.push(e.p);
      const carId = e.p.part.carId;
      const left = this.perCar.get(carId)! - 1;
      if (left === 0) this.perCar.delete(carId);
      else this.perCar.set(carId, left);
    }
    return out;
  }

  /** Rule 4: per lane, the smallest offset still waiting, or -1 when none waits. */
  lowestPending(): number[] {
    return this.lanes.map((l) => l.lowest());
  }
}
