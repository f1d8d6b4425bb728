// Keyed join state of one input partition's cars (SPEC §4), in event time. Pure: no I/O, no
// clock; time is the parts' timestamps and the watermark the caller passes in.
//
// Rules, per carId, for parts fed in timestamp order:
//  1. If the car's open window has ended (end <= the part's timestamp), it closes first.
//  2. A partId already in the open car, or in a car of this carId emitted less than
//     dedupRetentionMs (event time) before the part's timestamp, is absorbed.
//  3. Into the open car: a free slot takes the part; when the car then holds a body, an
//     engine, a remote control and four wheels with four different placements it leaves at
//     once as AWAITING_PRICE. A filled slot makes the part a CONFLICT dead letter; the car
//     keeps the first.
//  4. No open car: the part opens a window [timestamp, timestamp + joinTimeoutMs).
// The watermark closes every window with end <= watermark (MISSING_*, all missing kinds) and
// forgets emitted partIds whose retention has passed.
import type { Body, Car, Engine, Part, PartKind, RemoteControl, Wheel } from "../domain.ts";
import { deadLetterReason, missingKinds, situationFor, WHEELS_PER_CAR } from "../domain.ts";
import type { SourceRef } from "./protocol.ts";
import { TimerHeap } from "./timers.ts";

export interface OpenCarState {
  firstPartAt: number;
  body?: Body;
  engine?: Engine;
  remoteControl?: RemoteControl;
  /** In arrival order. */
  wheels: Wheel[];
}

export interface RecentCar {
  partIds: string[];
  /** Event time until which redeliveries of these partIds are absorbed. */
  until: number;
}

/** Everything the changelog keeps of one carId: enough to rebuild the shard exactly. */
export interface CarState {
  open?: OpenCarState;
  recent?: RecentCar[];
}

export type JoinEffect =
  | { type: "emit"; car: Car }
  | { type: "deadLetter"; source: SourceRef; reason: string; part: Part }
  | { type: "state"; carId: string; state: CarState | null };

export interface JoinOptions {
  joinTimeoutMs: number;
  dedupRetentionMs: number;
}

interface Entry {
  open?: OpenCarState;
  /** partIds of the open car, for rule 2. */
  openIds?: Set<string>;
  recent?: RecentCar[];
}

export class JoinShard {
  private readonly cars = new Map<string, Entry>();
  private readonly timers = new TimerHeap();
  private open = 0;
  private watermark = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: JoinOptions) {}

  openCars(): number {
    return this.open;
  }

  onPart(part: Part, kind: PartKind, timestamp: number, source: SourceRef): JoinEffect[] {
    const effects: JoinEffect[] = [];
    const carId = part.carId;
    let entry = this.cars.get(carId);
    if (entry?.open && this.endOf(entry.open) <= timestamp) this.close(carId, entry, effects);
    entry = this.cars.get(carId);

    if (entry?.openIds?.has(part.partId) || entry?.recent?.some((r) => timestamp < r.until && r.partIds.includes(part.partId))) {
      return effects;
    }
    if (!entry) {
      entry = {};
      this.cars.set(carId, entry);
    }
    if (!entry.open) {
      entry.open = { firstPartAt: timestamp, wheels: [] };
      entry.openIds = new Set();
      this.open++;
      this.timers.add(this.endOf(entry.open), carId);
    }
    const car = entry.open;
    const conflict = slotConflict(car, kind, part);
    if (conflict !== undefined) {
      effects.push({ type: "deadLetter", source, reason: deadLetterReason("CONFLICT", conflict), part });
      return effects;
    }
    place(car, kind, part);
    entry.openIds!.add(part.partId);
    if (timestamp < car.firstPartAt) {
      // An older part that arrived after a newer one (possible only live, within producer
      // latency): the window starts at the car's earliest part, wherever it came in.
      car.firstPartAt = timestamp;
      this.timers.add(this.endOf(car), carId);
    }
    if (isComplete(car)) {
      this.emit(carId, entry, "AWAITING_PRICE", timestamp, effects);
    } else {
      effects.push({ type: "state", carId, state: stateOf(entry) });
    }
    return effects;
  }

  /** Closes every window that ends at or before `watermark` and forgets expired partIds. */
  onWatermark(watermark: number): JoinEffect[] {
    if (watermark <= this.watermark) return [];
    this.watermark = watermark;
    const effects: JoinEffect[] = [];
    for (const t of this.timers.popDue(watermark)) {
      const entry = this.cars.get(t.carId);
      if (!entry) continue;
      if (entry.open && this.endOf(entry.open) === t.due) {
        this.close(t.carId, entry, effects);
      } else if (entry.recent?.some((r) => r.until === t.due)) {
        entry.recent = entry.recent.filter((r) => r.until > watermark);
        if (entry.recent.length === 0) delete entry.recent;
        this.settle(t.carId, entry, effects);
      }
    }
    return effects;
  }

  /** Rebuilds a car's entry from its changelog state (after a restart or a rebalance). */
  restore(carId: string, state: CarState): void {
    const entry: Entry = {};
    if (state.open) {
      entry.open = state.open;
      entry.openIds = new Set(partsOf(state.open).map((p) => p.partId));
      this.open++;
      this.timers.add(this.endOf(state.open), carId);
    }
    if (state.recent && state.recent.length > 0) {
      entry.recent = state.recent;
      for (const r of state.recent) this.timers.add(r.until, carId);
    }
    if (entry.open || entry.recent) this.cars.set(carId, entry);
  }

  private endOf(car: OpenCarState): number {
    return car.firstPartAt + this.options.joinTimeoutMs;
  }

  private close(carId: string, entry: Entry, effects: JoinEffect[]): void {
    const missing = carMissing(entry.open!);
    this.emit(carId, entry, situationFor(missing), this.endOf(entry.open!), effects);
  }

  /** The car leaves the join; its partIds stay known for the retention. */
  private emit(carId: string, entry: Entry, situation: Car["situation"], at: number, effects: JoinEffect[]): void {
    const open = entry.open!;
    const car: Car = {
      carId,
      situation,
      missing: carMissing(open),
      ...(open.body ? { body: open.body } : {}),
      ...(open.engine ? { engine: open.engine } : {}),
      ...(open.remoteControl ? { remoteControl: open.remoteControl } : {}),
      wheels: open.wheels,
      firstPartAt: open.firstPartAt,
      assembledAt: at,
    };
    effects.push({ type: "emit", car });
    const until = at + this.options.dedupRetentionMs;
    (entry.recent ??= []).push({ partIds: [...entry.openIds!], until });
    this.timers.add(until, carId);
    delete entry.open;
    delete entry.openIds;
    this.open--;
    this.settle(carId, entry, effects);
  }

  /** Writes the entry's state, or deletes it when nothing is left. */
  private settle(carId: string, entry: Entry, effects: JoinEffect[]): void {
    if (!entry.open && !entry.recent) {
      this.cars.delete(carId);
      effects.push({ type: "state", carId, state: null });
    } else {
      effects.push({ type: "state", carId, state: stateOf(entry) });
    }
  }
}

function stateOf(entry: Entry): CarState {
  return { ...(entry.open ? { open: entry.open } : {}), ...(entry.recent ? { recent: entry.recent } : {}) };
}

function partsOf(car: OpenCarState): Part[] {
  return [car.body, car.engine, car.remoteControl, ...car.wheels].filter((p): p is Part => p !== undefined);
}

function carMissing(car: OpenCarState) {
  return missingKinds({
    body: car.body !== undefined,
    engine: car.engine !== undefined,
    remoteControl: car.remoteControl !== undefined,
    wheelPlacements: car.wheels.length,
  });
}

function isComplete(car: OpenCarState): boolean {
  return car.body !== undefined && car.engine !== undefined && car.remoteControl !== undefined && car.wheels.length === WHEELS_PER_CAR;
}

/** Why the part cannot take its slot, or undefined when the slot is free. */
function slotConflict(car: OpenCarState, kind: PartKind, part: Part): string | undefined {
  switch (kind) {
    case "BODY":
      return car.body ? `car ${part.carId} already has body ${car.body.partId}` : undefined;
    case "ENGINE":
      return car.engine ? `car ${part.carId} already has engine ${car.engine.partId}` : undefined;
    case "REMOTE_CONTROL":
      return car.remoteControl ? `car ${part.carId} already has remote control ${car.remoteControl.partId}` : undefined;
    case "WHEEL": {
      const placement = (part as Wheel).placement;
      const taken = car.wheels.find((w) => w.placement === placement);
      return taken ? `car ${part.carId} already has a ${placement} wheel ${taken.partId}` : undefined;
    }
  }
}

function place(car: OpenCarState, kind: PartKind, part: Part): void {
  if (kind === "BODY") car.body = part as Body;
  else if (kind === "ENGINE") car.engine = part as Engine;
  else if (kind === "REMOTE_CONTROL") car.remoteControl = part as RemoteControl;
  else car.wheels.push(part as Wheel);
}
