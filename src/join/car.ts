// One car's open window: its slots (one body, one engine, one remote control, a wheel per
// placement), what conflicts with them, when it is complete, and the records it becomes.
// Mutable and of one fixed shape (V8/JSC keep it monomorphic); snapshots for the changelog
// and the emitted Car are fresh objects, so effects never alias state that changes later.
import type { Body, Car, Engine, MissingKind, Part, PartKind, RemoteControl, Situation, Wheel } from "../domain.ts";
import { missingKinds, WHEELS_PER_CAR } from "../domain.ts";
import type { OpenCarState } from "./state.ts";

export class OpenCar {
  body: Body | undefined = undefined;
  engine: Engine | undefined = undefined;
  remoteControl: RemoteControl | undefined = undefined;
  /** In arrival order; placements are distinct (a second one is a conflict). */
  wheels: Wheel[] = [];

  constructor(public firstPartAt: number) {}

  static fromState(s: OpenCarState): OpenCar {
    const car = new OpenCar(s.firstPartAt);
    car.body = s.body;
    car.engine = s.engine;
    car.remoteControl = s.remoteControl;
    car.wheels = s.wheels.slice();
    return car;
  }

  /** Whether a part with this partId already joined (at most seven to look at). */
  holds(partId: string): boolean {
    if (this.body?.partId === partId || this.engine?.partId === partId || this.remoteControl?.partId === partId) return true;
    for (const w of this.wheels) if (w.partId === partId) return true;
    return false;
  }

  /** Why `part` cannot take its slot (naming the slot and the part in it), or undefined when the slot is free. */
  conflict(kind: PartKind, part: Part): string | undefined {
    let slot: string;
    let taken: Part | undefined;
    switch (kind) {
      case "BODY":
        [slot, taken] = ["body", this.body];
        break;
      case "ENGINE":
        [slot, taken] = ["engine", this.engine];
        break;
      case "REMOTE_CONTROL":
        [slot, taken] = ["remote control", this.remoteControl];
        break;
      case "WHEEL": {
        const placement = (part as Wheel).placement;
        slot = `${placement} wheel`;
        taken = this.wheels.find((w) => w.placement === placement);
        break;
      }
    }
    return taken === undefined ? undefined : `car ${part.carId} already has ${slot} ${taken.partId}; ${part.partId} is a second one`;
  }

  /** Puts the part in its slot; the caller has checked `conflict` first. */
  place(kind: PartKind, part: Part): void {
    if (kind === "BODY") this.body = part as Body;
    else if (kind === "ENGINE") this.engine = part as Engine;
    else if (kind === "REMOTE_CONTROL") this.remoteControl = part as RemoteControl;
    else this.wheels.push(part as Wheel);
  }

  /** Placements are distinct by construction, so four wheels are four placements. */
  isComplete(): boolean {
    return this.body !== undefined && this.engine !== undefined && this.remoteControl !== undefined && this.wheels.length === WHEELS_PER_CAR;
  }

  missing(): MissingKind[] {
    return missingKinds({
      body: this.body !== undefined,
      engine: this.engine !== undefined,
      remoteControl: this.remoteControl !== undefined,
      wheelPlacements: this.wheels.length,
    });
  }

  partIds(): string[] {
    const ids: string[] = [];
    if (this.body) ids.push(this.body.partId);
    if (this.engine) ids.push(this.engine.partId);
    if (this.remoteControl) ids.push(this.remoteControl.partId);
    for (const w of this.wheels) ids.push(w.partId);
    return ids;
  }

  /** The changelog view: absent slots are left out (smaller, and msgpack has no undefined). */
  toState(): OpenCarState {
    const s: OpenCarState = { firstPartAt: this.firstPartAt, wheels: this.wheels.slice() };
    if (this.body) s.body = this.body;
    if (this.engine) s.engine = this.engine;
    if (this.remoteControl) s.remoteControl = this.remoteControl;
    return s;
  }

  /** The output record; the car object is not used after this, so its wheels array is handed over. */
  toCar(carId: string, situation: Situation | "AWAITING_PRICE", missing: MissingKind[], assembledAt: number): Car {
    // Built in output key order: carId, situation, missing, body, engine, remoteControl, wheels, times.
    const car: Car = { carId, situation, missing } as Car;
    if (this.body) car.body = this.body;
    if (this.engine) car.engine = this.engine;
    if (this.remoteControl) car.remoteControl = this.remoteControl;
    car.wheels = this.wheels;
    car.firstPartAt = this.firstPartAt;
    car.assembledAt = assembledAt;
    return car;
  }
}
