// One car's open window, kept compact: its first part's timestamp, a bit per filled slot, and
// its parts packed into ONE flat string (PackedParts below). Six parsed part objects cost
// ~650 bytes of heap; their packed string (~100 chars) ~140. The join reads only what it needs
// from the string (partIds, which slots are filled); the part objects are rebuilt when the
// car leaves (toCar), equal to the parsed input (same fields, same key order, extra fields
// included).
//
// PackedParts: segments in arrival order. A segment starts with a code char naming its slot:
//   PLAIN + slot   a part of its kind's usual shape (carId, partId, sku, then the kind's own
//                  fields, in that key order, nothing else, no control characters in its
//                  strings): the fields' values joined by \x1f, starting with partId, without
//                  carId (the car's key) and without placement (the slot says it). A partId that
//                  starts with the carId keeps only "\x01" + the rest.
//   AS_JSON + slot any other part (extra fields, other key order): JSON.stringify of it.
// Slots: 0 body, 1 engine, 2 remote control, 3..6 a wheel by placement (WHEEL_PLACEMENTS order).
// Valid JSON text has no raw character below 0x20 and plain values have none either, so the
// code chars (0x10..0x1e) mark segment starts unambiguously. Strings are built with join(""),
// not `+`: JSC keeps a `+` result as a rope that holds its pieces.
import type { Body, Car, MissingKind, Part, PartKind, RemoteControl, Situation, Wheel, WheelPlacement } from "../domain.ts";
import { missingKinds, WHEEL_PLACEMENTS } from "../domain.ts";
import type { OpenCarState } from "./state.ts";

const BODY = 0;
const ENGINE = 1;
const REMOTE = 2;
const WHEEL0 = 3;
const SLOTS = 7;
export const ALL_SLOTS = (1 << SLOTS) - 1;
/** A bit beside the slots: some segment is JSON (holds() then looks at those too). */
const HAS_JSON = 1 << SLOTS;
const PLAIN = 0x10;
const AS_JSON = 0x18;
const FIELD = "\x1f";
const FIELD_CODE = 0x1f;
const CAR_ID = "\x01";
const PLAIN_CODE = Array.from({ length: SLOTS }, (_, s) => String.fromCharCode(PLAIN + s));
const JSON_CODE = Array.from({ length: SLOTS }, (_, s) => String.fromCharCode(AS_JSON + s));
const PLACEMENT_SLOT: Record<string, number> = Object.fromEntries(WHEEL_PLACEMENTS.map((p, i) => [p, WHEEL0 + i]));
const SLOT_NAME = ["body", "engine", "remote control", ...WHEEL_PLACEMENTS.map((p) => `${p} wheel`)];
/** The usual key order of each slot's part (what PLAIN segments rebuild). */
const PLAIN_KEYS: readonly (readonly string[])[] = [
  ["carId", "partId", "sku", "color", "material", "weightKg"],
  ["carId", "partId", "sku"],
  ["carId", "partId", "sku", "channelFrequency"],
  ...WHEEL_PLACEMENTS.map(() => ["carId", "partId", "sku", "placement"]),
];

export class OpenCar {
  /** Bit s = slot s is filled; HAS_JSON = some segment is JSON. */
  slots = 0;
  parts = "";

  constructor(public firstPartAt: number) {}

  static fromState(s: OpenCarState): OpenCar {
    const car = new OpenCar(s.firstPartAt);
    car.parts = s.parts;
    forEachSegment(s.parts, (code) => {
      car.slots |= code >= AS_JSON ? (1 << (code - AS_JSON)) | HAS_JSON : 1 << (code - PLAIN);
    });
    return car;
  }

  /** Whether a part with this partId already joined. */
  holds(carId: string, partId: string): boolean {
    const parts = this.parts;
    if (isPlainText(partId)) {
      // A plain segment's partId field sits between its code char and the first \x1f; an
      // elided one is \x01 + the rest (searched for without building the field).
      const elided = partId.length > carId.length && partId.startsWith(carId);
      const needle = elided ? partId.slice(carId.length) : partId;
      const lead = elided ? 1 : 0;
      for (let at = parts.indexOf(needle, 1 + lead); at >= 0; at = parts.indexOf(needle, at + 1)) {
        if (elided && parts.charCodeAt(at - 1) !== 1) continue;
        const code = parts.charCodeAt(at - 1 - lead);
        if (code >= PLAIN && code < PLAIN + SLOTS && parts.charCodeAt(at + needle.length) === FIELD_CODE) return true;
      }
    }
    // A JSON segment is JSON.stringify of its part, so it holds the partId's own JSON text:
    // when that text is nowhere, no JSON segment has the partId (the usual answer, no parsing).
    if ((this.slots & HAS_JSON) === 0 || !parts.includes(JSON.stringify(partId))) return false;
    let held = false;
    forEachSegment(parts, (code, start, end) => {
      held ||= code >= AS_JSON && partIdOf(carId, parts, code, start, end) === partId;
    });
    return held;
  }

  /** Why `part` cannot take its slot (naming the slot and the part in it), or undefined when the slot is free. */
  conflict(kind: PartKind, part: Part): string | undefined {
    const slot = slotOf(kind, part);
    if ((this.slots & (1 << slot)) === 0) return undefined;
    let taken = "";
    forEachSegment(this.parts, (code, start, end) => {
      if (code === PLAIN + slot || code === AS_JSON + slot) taken = partIdOf(part.carId, this.parts, code, start, end);
    });
    return `car ${part.carId} already has ${SLOT_NAME[slot]} ${taken}; ${part.partId} is a second one`;
  }

  /** Puts the part in its slot; the caller has checked `conflict` first. */
  place(kind: PartKind, part: Part): void {
    const slot = slotOf(kind, part);
    const plain = isPlain(slot, part);
    this.slots |= (1 << slot) | (plain ? 0 : HAS_JSON);
    // The segment may be a rope; join copies both into one flat string (~40 ns a part less
    // than joining the segment's pieces one by one).
    this.parts = [this.parts, plain ? plainSegment(slot, part) : JSON_CODE[slot]! + JSON.stringify(part)].join("");
  }

  /** Placements are distinct by construction, so four wheels are four placements. */
  isComplete(): boolean {
    return (this.slots & ALL_SLOTS) === ALL_SLOTS;
  }

  missing(): MissingKind[] {
    const s = this.slots;
    let wheels = 0;
    for (let w = WHEEL0; w < SLOTS; w++) if ((s & (1 << w)) !== 0) wheels++;
    return missingKinds({
      body: (s & (1 << BODY)) !== 0,
      engine: (s & (1 << ENGINE)) !== 0,
      remoteControl: (s & (1 << REMOTE)) !== 0,
      wheelPlacements: wheels,
    });
  }

  /** The changelog view (a snapshot: strings are immutable). */
  toState(): OpenCarState {
    return { firstPartAt: this.firstPartAt, parts: this.parts };
  }

  /** The output record, with the part objects rebuilt. */
  toCar(carId: string, situation: Situation | "AWAITING_PRICE", missing: MissingKind[], assembledAt: number): Car {
    const u = unpackParts(carId, this.parts);
    // Built in output key order: carId, situation, missing, body, engine, remoteControl, wheels, times.
    const car: Car = { carId, situation, missing } as Car;
    if (u.body) car.body = u.body;
    if (u.engine) car.engine = u.engine;
    if (u.remoteControl) car.remoteControl = u.remoteControl;
    car.wheels = u.wheels;
    car.firstPartAt = this.firstPartAt;
    car.assembledAt = assembledAt;
    return car;
  }
}

/** The parts an open window holds, as objects (wheels in arrival order). */
export interface UnpackedParts {
  body?: Body;
  engine?: Part;
  remoteControl?: RemoteControl;
  wheels: Wheel[];
}

export function unpackParts(carId: string, parts: string): UnpackedParts {
  const u: UnpackedParts = { wheels: [] };
  const n = parts.length;
  for (let start = 0; start < n;) {
    const end = segmentEnd(parts, start);
    const code = parts.charCodeAt(start);
    const slot = slotOfCode(code);
    const part = code >= AS_JSON ? (JSON.parse(parts.slice(start + 1, end)) as Part) : plainPart(carId, slot, parts.slice(start + 1, end).split(FIELD));
    if (slot === BODY) u.body = part as Body;
    else if (slot === ENGINE) u.engine = part;
    else if (slot === REMOTE) u.remoteControl = part as RemoteControl;
    else u.wheels.push(part as Wheel);
    start = end;
  }
  return u;
}

/** Packs parts (validated, of one car, one per slot) in the given arrival order. */
export function packParts(carId: string, parts: ReadonlyArray<{ kind: PartKind; part: Part }>): string {
  const car = new OpenCar(0);
  for (const { kind, part } of parts) {
    if (part.carId !== carId) throw new Error(`part ${part.partId} is of car ${part.carId}, not ${carId}`);
    const slot = slotOf(kind, part);
    if (slot === undefined) throw new Error(`part ${part.partId}: no ${kind} slot`);
    if ((car.slots & (1 << slot)) !== 0) throw new Error(`part ${part.partId}: ${SLOT_NAME[slot]} is filled twice`);
    car.place(kind, part);
  }
  return car.parts;
}

/** A part's slot in its car: 0 body, 1 engine, 2 remote control, 3–6 the wheels by placement. */
export function slotOf(kind: PartKind, part: Part): number {
  // (undefined only for a wheel with no valid placement: parts here are validated)
  switch (kind) {
    case "BODY":
      return BODY;
    case "ENGINE":
      return ENGINE;
    case "REMOTE_CONTROL":
      return REMOTE;
    case "WHEEL":
      return PLACEMENT_SLOT[(part as Wheel).placement]!;
  }
}

function slotOfCode(code: number): number {
  return code >= AS_JSON ? code - AS_JSON : code - PLAIN;
}

/** Calls `f` per segment: its code char, its start (the code's index) and its end (exclusive). */
function forEachSegment(parts: string, f: (code: number, start: number, end: number) => void): void {
  for (let start = 0; start < parts.length;) {
    const end = segmentEnd(parts, start);
    f(parts.charCodeAt(start), start, end);
    start = end;
  }
}

/** Where the segment starting at `start` ends: the next code char, or the string's end. */
function segmentEnd(parts: string, start: number): number {
  const n = parts.length;
  let end = start + 1;
  while (end < n) {
    const c = parts.charCodeAt(end);
    if (c >= PLAIN && c < AS_JSON + SLOTS) break;
    end++;
  }
  return end;
}

function partIdOf(carId: string, parts: string, code: number, start: number, end: number): string {
  if (code >= AS_JSON) return (JSON.parse(parts.slice(start + 1, end)) as Part).partId;
  const sep = parts.indexOf(FIELD, start + 1);
  return fromIdField(carId, parts.slice(start + 1, sep < 0 || sep > end ? end : sep));
}

/**
 * A partId from its field, copied into a string of its own (join): a `+` result is a rope
 * that would keep the packed string it was cut from alive while the partId is remembered
 * for the dedup retention.
 */
function fromIdField(carId: string, field: string): string {
  return field.charCodeAt(0) !== 1 ? field : [carId, field.slice(1)].join("");
}

function isPlainText(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20) return false;
  return true;
}

/** The part has exactly its slot's usual keys, in order, and no control characters in its free text. */
function isPlain(slot: number, part: Part): boolean {
  const keys = PLAIN_KEYS[slot]!;
  let i = 0;
  for (const k in part) if (k !== keys[i++]) return false;
  if (i !== keys.length || typeof part.partId !== "string" || typeof part.sku !== "string" || !isPlainText(part.partId) || !isPlainText(part.sku)) return false;
  if (slot === BODY) {
    const b = part as Body;
    return typeof b.color === "string" && typeof b.material === "string" && typeof b.weightKg === "number" && isPlainText(b.color) && isPlainText(b.material);
  }
  return slot !== REMOTE || (typeof (part as RemoteControl).channelFrequency === "string" && isPlainText((part as RemoteControl).channelFrequency));
}

/** A PLAIN segment (possibly a rope: the caller flattens it). */
function plainSegment(slot: number, part: Part): string {
  const { carId, partId } = part;
  const id = partId.length > carId.length && partId.startsWith(carId) ? CAR_ID + partId.slice(carId.length) : partId;
  const head = `${PLAIN_CODE[slot]!}${id}${FIELD}${part.sku}`;
  if (slot === BODY) {
    const b = part as Body;
    return `${head}${FIELD}${b.color}${FIELD}${b.material}${FIELD}${b.weightKg}`;
  }
  return slot === REMOTE ? `${head}${FIELD}${(part as RemoteControl).channelFrequency}` : head;
}

/** Rebuilds a PLAIN segment's part in its usual key order. */
function plainPart(carId: string, slot: number, f: string[]): Part {
  const partId = fromIdField(carId, f[0]!);
  const sku = f[1]!;
  if (slot === BODY) return { carId, partId, sku, color: f[2]!, material: f[3]!, weightKg: Number(f[4]) } satisfies Body;
  if (slot === ENGINE) return { carId, partId, sku };
  if (slot === REMOTE) return { carId, partId, sku, channelFrequency: f[2] as RemoteControl["channelFrequency"] } satisfies RemoteControl;
  return { carId, partId, sku, placement: WHEEL_PLACEMENTS[slot - WHEEL0] as WheelPlacement } satisfies Wheel;
}
