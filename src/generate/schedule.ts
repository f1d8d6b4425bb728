// When each planned record goes out, and its timestamp. Pure: the producer drives it with the
// wall clock, tests and dry runs with a virtual one. Timestamps are the send times, strictly
// increasing per car so the order of a car's records is unambiguous; a record with a planned
// wrong clock gets the send time plus its offset, or its fixed bad value, and takes no part in
// that order.
import { MinHeap } from "../heap.ts";
import type { Plan, PlannedRecord } from "./plan.ts";

export interface Stamped {
  record: PlannedRecord;
  timestamp: number;
  /** The clock when the record was taken for sending: no engine can read it earlier. */
  sentAt: number;
}

interface Due {
  at: number;
  record: PlannedRecord;
}

export class Scheduler {
  private readonly timely: PlannedRecord[];
  private next = 0;
  /** Late records wait here until their car's first part has a timestamp. */
  private readonly lateOf = new Map<number, PlannedRecord[]>();
  private readonly heap = new MinHeap<Due>(before);
  private readonly lastTs = new Map<number, number>();
  private waitingLate = 0;

  constructor(
    plan: Plan,
    private readonly startMs: number,
  ) {
    this.timely = plan.records.filter((r) => r.send.after === "start");
    for (const r of plan.records) {
      if (r.send.after !== "carFirst") continue;
      const list = this.lateOf.get(r.carIndex) ?? [];
      list.push(r);
      this.lateOf.set(r.carIndex, list);
      this.waitingLate++;
    }
  }

  get remaining(): number {
    return this.timely.length - this.next + this.heap.size + this.waitingLate;
  }

  /** Earliest clock time at which something can be sent; undefined when everything was sent. */
  nextDueAt(): number | undefined {
    const t = this.timely[this.next];
    const a = t ? this.startMs + t.send.ms : Infinity;
    const b = this.heap.peek()?.at ?? Infinity;
    const at = Math.min(a, b);
    if (at !== Infinity) return at;
    if (this.waitingLate > 0) throw new Error("late records whose car never opened: the plan is inconsistent");
    return undefined;
  }

  /** Up to `max` records due at `now`, stamped; late records of cars opened here become due. */
  take(now: number, max: number): Stamped[] {
    const out: Stamped[] = [];
    while (out.length < max) {
      const t = this.timely[this.next];
      const tAt = t ? this.startMs + t.send.ms : Infinity;
      const lAt = this.heap.peek()?.at ?? Infinity;
      if (Math.min(tAt, lAt) > now) break;
      let record: PlannedRecord;
      if (tAt <= lAt) {
        record = t!;
        this.next++;
      } else {
        record = this.heap.pop()!.record;
      }
      const clock = record.clock;
      let timestamp: number;
      if (clock === undefined) {
        timestamp = Math.max(now, (this.lastTs.get(record.carIndex) ?? -Infinity) + 1);
        this.lastTs.set(record.carIndex, timestamp);
      } else {
        timestamp = "aheadMs" in clock ? now + clock.aheadMs : clock.fixed;
      }
      out.push({ record, timestamp, sentAt: now });
      if (record.opensCar) {
        for (const late of this.lateOf.get(record.carIndex) ?? []) {
          this.heap.push({ at: timestamp + late.send.ms, record: late });
          this.waitingLate--;
        }
        this.lateOf.delete(record.carIndex);
      }
    }
    return out;
  }
}

function before(a: Due, b: Due): boolean {
  return a.at < b.at || (a.at === b.at && a.record.seq < b.record.seq);
}

/** The timestamps a run would get on a virtual clock that advances `msPerBatch` per batch. */
export function simulate(plan: Plan, startMs: number, opts: { batchSize?: number; msPerBatch?: number } = {}): Stamped[] {
  const batchSize = opts.batchSize ?? 500;
  const msPerBatch = opts.msPerBatch ?? 1;
  const s = new Scheduler(plan, startMs);
  const out: Stamped[] = [];
  let now = startMs;
  for (;;) {
    const due = s.nextDueAt();
    if (due === undefined) return out;
    now = Math.max(now, Math.ceil(due));
    out.push(...s.take(now, batchSize));
    now += msPerBatch;
  }
}
