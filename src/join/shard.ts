// Keyed join state of one input partition's cars (SPEC §4), in event time. Pure: no I/O, no
// clock, no randomness; time is the parts' timestamps and the watermark the caller passes in.
// The same inputs give the same effects, in the same order, on any thread and after a restore.
//
// A car's window is [firstPartAt, firstPartAt + joinTimeoutMs). Rules, per carId:
//  1. If the car's open window has ended (end <= the part's timestamp), it closes first: the
//     car is emitted incomplete (MISSING_*), and the part is then judged with no open window.
//  2. A partId already in the open window, or in a car of this carId emitted less than
//     dedupRetentionMs of event time before the part's timestamp (and not yet forgotten by
//     the watermark), is absorbed: no effect, only the `absorbed` counter.
//  3. Open window, slot free: the part joins. Complete (a body, an engine, a remote control
//     and four wheels with four different placements) → emitted at once as AWAITING_PRICE.
//     Slot filled by a different part → a CONFLICT dead letter naming the slot; the car keeps
//     the first.
//  4. No open window: the part opens one at its own timestamp.
// Out-of-order parts (possible live: a part produced before the watermark but appended to its
// log later than IDLE_GRACE_MS) follow the same rules. A part older than its open window's
// start joins it and moves the start back to its own timestamp (the window opens at the
// car's first part, wherever that arrived); a window whose end is already behind the
// watermark closes at the next onWatermark, so parts of the same batch still join it.
//
// The watermark (onWatermark) closes every open window with end <= watermark, in (end, carId)
// order, and forgets emitted partIds whose `until` <= watermark, with a state effect each.
//
// Times on the emitted car are event time, so outputs do not depend on read speed:
// firstPartAt = the window start; assembledAt = the completing part's timestamp for a
// complete car, the window end for an incomplete one. Dedup memory runs from assembledAt.
import type { Car, Part, PartKind } from "../domain.ts";
import { deadLetterReason, situationFor } from "../domain.ts";
import { ALL_SLOTS, OpenCar } from "./car.ts";
import type { CarState, RecentCar } from "./state.ts";
import { TimerHeap } from "./timers.ts";

export type { CarState, OpenCarState, RecentCar } from "./state.ts";

/** Where a record came from: what a dead letter names. */
export interface SourceRef {
  topic: string;
  partition: number;
  offset: string;
}

export type JoinEffect =
  /** AWAITING_PRICE (complete) or MISSING_* (window closed). */
  | { type: "emit"; car: Car }
  | { type: "deadLetter"; source: SourceRef; reason: string; part: Part }
  /** The carId's changelog value after this step; null = delete (tombstone). A snapshot: never mutated later. */
  | { type: "state"; carId: string; state: CarState | null };

export interface JoinOptions {
  joinTimeoutMs: number;
  /** 0 = no dedup memory after emission. */
  dedupRetentionMs: number;
}

export interface JoinStats {
  openCars: number;
  /** carIds with emitted partIds still remembered. */
  rememberedCars: number;
  /** Armed timers, stale ones included. */
  timers: number;
  absorbed: number;
  conflicts: number;
  emitted: number;
  watermark: number;
}

interface Entry {
  open: OpenCar | undefined;
  /** Immutable: replaced, never mutated, so a state snapshot can share it. */
  recent: readonly RecentCar[] | undefined;
}

export class JoinShard {
  private readonly cars = new Map<string, Entry>();
  private readonly timers = new TimerHeap();
  private open = 0;
  private remembered = 0;
  private absorbed = 0;
  private conflicts = 0;
  private emitted = 0;
  private watermark = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: JoinOptions) {}

  /** Whether the carId has state (an open window or remembered partIds): a live changelog entry. */
  holds(carId: string): boolean {
    return this.cars.has(carId);
  }

  /** The slots a carId's open window has filled (bit s = slot s), 0 when it has none. */
  openSlots(carId: string): number {
    return (this.cars.get(carId)?.open?.slots ?? 0) & ALL_SLOTS;
  }

  openCars(): number {
    return this.open;
  }

  stats(): JoinStats {
    return {
      openCars: this.open,
      rememberedCars: this.remembered,
      timers: this.timers.size,
      absorbed: this.absorbed,
      conflicts: this.conflicts,
      emitted: this.emitted,
      watermark: this.watermark,
    };
  }

  onPart(part: Part, kind: PartKind, timestamp: number, source: SourceRef): JoinEffect[] {
    const effects: JoinEffect[] = [];
    const carId = part.carId;
    let entry = this.cars.get(carId);
    // Rule 1.
    if (entry?.open !== undefined && this.endOf(entry.open) <= timestamp) {
      this.close(carId, entry, effects);
      entry = this.cars.get(carId);
    }
    // Rule 2.
    if (entry !== undefined && (entry.open?.holds(carId, part.partId) || remembers(entry.recent, part.partId, timestamp))) {
      this.absorbed++;
      return effects;
    }
    if (entry === undefined) {
      entry = { open: undefined, recent: undefined };
      this.cars.set(carId, entry);
    }
    let car = entry.open;
    if (car === undefined) {
      // Rule 4.
      car = new OpenCar(timestamp);
      entry.open = car;
      this.open++;
      this.timers.add(this.endOf(car), carId);
    } else {
      // Rule 3, filled slot.
      const conflict = car.conflict(kind, part);
      if (conflict !== undefined) {
        this.conflicts++;
        effects.push({ type: "deadLetter", source, reason: deadLetterReason("CONFLICT", conflict), part });
        return effects;
      }
      if (timestamp < car.firstPartAt) {
        car.firstPartAt = timestamp;
        this.timers.add(this.endOf(car), carId); // the old timer goes stale
      }
    }
    // Rule 3, free slot.
    car.place(kind, part);
    if (car.isComplete()) this.emit(carId, entry, car, "AWAITING_PRICE", timestamp, effects);
    else effects.push({ type: "state", carId, state: stateOf(entry) });
    return effects;
  }

  /**
   * Closes every window with end <= watermark, in (end, carId) order, and forgets emitted
   * partIds whose retention ended. The watermark never goes back (a smaller one is ignored),
   * but an equal one still closes windows opened behind it since the last call.
   */
  onWatermark(watermark: number): JoinEffect[] {
    if (watermark > this.watermark) this.watermark = watermark;
    const wm = this.watermark;
    const effects: JoinEffect[] = [];
    const timers = this.timers;
    while (timers.size > 0 && timers.peekDue() <= wm) {
      const due = timers.peekDue();
      const carId = timers.peekCarId()!;
      timers.pop();
      const entry = this.cars.get(carId);
      if (entry === undefined) continue; // stale
      // A window closes only on its own timer, so closes come out in exact (end, carId) order.
      if (entry.open !== undefined && this.endOf(entry.open) === due) {
        this.close(carId, entry, effects);
      } else if (entry.recent !== undefined && entry.recent.some((r) => r.until <= wm)) {
        const kept = entry.recent.filter((r) => r.until > wm);
        this.setRecent(entry, kept.length > 0 ? kept : undefined);
        this.settle(carId, entry, effects);
      }
    }
    return effects;
  }

  /**
   * Rebuilds a carId from its changelog value (after a restart or a rebalance), re-arming its
   * timers; null (a tombstone) forgets it. Entries may come in any order; a later one for the
   * same carId replaces the earlier.
   */
  restore(carId: string, state: CarState | null): void {
    const prev = this.cars.get(carId);
    if (prev !== undefined) {
      if (prev.open !== undefined) this.open--;
      this.setRecent(prev, undefined);
      this.cars.delete(carId);
    }
    if (state === null) return;
    const entry: Entry = { open: undefined, recent: undefined };
    if (state.open !== undefined) {
      entry.open = OpenCar.fromState(state.open);
      this.open++;
      this.timers.add(this.endOf(entry.open), carId);
    }
    if (state.recent !== undefined && state.recent.length > 0) {
      this.setRecent(entry, state.recent);
      for (const r of state.recent) this.timers.add(r.until, carId);
    }
    if (entry.open !== undefined || entry.recent !== undefined) this.cars.set(carId, entry);
  }

  private endOf(car: OpenCar): number {
    return car.firstPartAt + this.options.joinTimeoutMs;
  }

  /** The window ended: the car leaves incomplete, stamped with the window's end. */
  private close(carId: string, entry: Entry, effects: JoinEffect[]): void {
    const car = entry.open!;
    const missing = car.missing();
    const out = car.toCar(carId, situationFor(missing), missing, this.endOf(car));
    effects.push({ type: "emit", car: out });
    this.leave(carId, entry, out, this.endOf(car), effects);
  }

  /** A complete car leaves at its completing part's timestamp. */
  private emit(carId: string, entry: Entry, car: OpenCar, situation: "AWAITING_PRICE", at: number, effects: JoinEffect[]): void {
    const out = car.toCar(carId, situation, [], at);
    effects.push({ type: "emit", car: out });
    this.leave(carId, entry, out, at, effects);
  }

  /** The car is out of the join; its partIds stay known for the retention (from `at`, event time). */
  private leave(carId: string, entry: Entry, car: Car, at: number, effects: JoinEffect[]): void {
    this.emitted++;
    entry.open = undefined;
    this.open--;
    if (this.options.dedupRetentionMs > 0) {
      const until = at + this.options.dedupRetentionMs;
      this.setRecent(entry, [...(entry.recent ?? []), { partIds: partIdsOf(car), until }]);
      this.timers.add(until, carId);
    }
    this.settle(carId, entry, effects);
  }

  private setRecent(entry: Entry, recent: readonly RecentCar[] | undefined): void {
    if ((entry.recent === undefined) !== (recent === undefined)) this.remembered += recent === undefined ? -1 : 1;
    entry.recent = recent;
  }

  /** Writes the carId's state, or deletes it when nothing is left. */
  private settle(carId: string, entry: Entry, effects: JoinEffect[]): void {
    if (entry.open === undefined && entry.recent === undefined) {
      this.cars.delete(carId);
      effects.push({ type: "state", carId, state: null });
    } else {
      effects.push({ type: "state", carId, state: stateOf(entry) });
    }
  }
}

function stateOf(entry: Entry): CarState {
  const s: CarState = {};
  if (entry.open !== undefined) s.open = entry.open.toState();
  if (entry.recent !== undefined) s.recent = entry.recent as RecentCar[];
  return s;
}

/** Body, engine, remote control, then the wheels in arrival order. */
function partIdsOf(car: Car): string[] {
  const ids: string[] = [];
  if (car.body) ids.push(car.body.partId);
  if (car.engine) ids.push(car.engine.partId);
  if (car.remoteControl) ids.push(car.remoteControl.partId);
  for (const w of car.wheels) ids.push(w.partId);
  return ids;
}

function remembers(recent: readonly RecentCar[] | undefined, partId: string, timestamp: number): boolean {
  if (recent === undefined) return false;
  for (const r of recent) if (timestamp < r.until && r.partIds.includes(partId)) return true;
  return false;
}
