// The reference model of SPEC §4: each car's expected outcome, computed from the input records
// with their actual timestamps. Written for clarity, not speed; it is the oracle the engine
// is judged against, so every rule is spelled out in the order the spec states it.
import {
  catalogPriceCents,
  KIND_OF_ROLE,
  missingKinds,
  situationFor,
  type Body,
  type DeadLetterClass,
  type Engine,
  type InputRole,
  ROLE_INDEX,
  type MissingKind,
  type Part,
  type PartKind,
  type RemoteControl,
  type Situation,
  type Wheel,
} from "../domain.ts";
import { validatePart, type Validation } from "../ingest/index.ts";

export interface ModelRecord {
  seq: number;
  topic: string;
  role: InputRole;
  key: string | null;
  value: Uint8Array | null;
  /** The Kafka record timestamp: the part's event time. */
  timestamp: number;
  /** Wall clock when the record was written: an engine reading it has at least this time. */
  producedAt: number;
  partition: number;
  offset: string;
}

export interface ModelRules {
  /** Records stamped further ahead of the clock are FUTURE_TIMESTAMP dead letters. */
  maxClockSkewMs: number;
  joinTimeoutMs: number;
  dedupRetentionMs: number;
  maxPartBytes: number;
}

export interface CarParts {
  body?: Body;
  engine?: Engine;
  remoteControl?: RemoteControl;
  wheels: Wheel[];
}

export interface ModelCar {
  carId: string;
  situation: Situation;
  missing: MissingKind[];
  parts: CarParts;
  partIds: string[];
  firstPartAt: number;
  /** Event time at which the car left the join: its 7th part, or its window's end. */
  emittedAt: number;
  totalCents?: number;
  /** Seqs of the records that joined the car. */
  seqs: number[];
}

export interface ModelDeadLetter {
  seq: number;
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Uint8Array | null;
  timestamp: number;
  cls: DeadLetterClass;
  detail: string;
}

export type Fate =
  | { kind: "joined"; car: ModelCar; opened: boolean }
  | { kind: "absorbed"; car: ModelCar; whileOpen: boolean; sinceEmittedMs?: number }
  | { kind: "deadLetter"; cls: DeadLetterClass };

export interface ModelResult {
  cars: ModelCar[];
  deadLetters: ModelDeadLetter[];
  /** What happened to each record, by seq. */
  fates: Map<number, Fate>;
  absorbed: number;
}

interface Valid {
  record: ModelRecord;
  part: Part;
}

interface Open {
  car: ModelCar;
  ids: Set<string>;
  wheelAt: Set<string>;
}

export function runModel(records: readonly ModelRecord[], rules: ModelRules): ModelResult {
  const fates = new Map<number, Fate>();
  const deadLetters: ModelDeadLetter[] = [];
  const byCar = new Map<string, Valid[]>();
  const deadLetter = (r: ModelRecord, cls: DeadLetterClass, detail: string) => {
    deadLetters.push({ seq: r.seq, topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, value: r.value, timestamp: r.timestamp, cls, detail });
    fates.set(r.seq, { kind: "deadLetter", cls });
  };

  for (const r of records) {
    // A record without a usable event time is a dead letter before anything else is looked at,
    // and is gone from every event-time rule below: it opens, joins and closes no window.
    const clock = clockProblem(r, rules);
    if (clock) {
      deadLetter(r, clock.cls, clock.detail);
      continue;
    }
    const v = validatePart(KIND_OF_ROLE[r.role], r.value, rules.maxPartBytes);
    if (!v.ok) {
      deadLetter(r, v.cls, v.detail);
      continue;
    }
    const list = byCar.get(v.part.carId) ?? [];
    list.push({ record: r, part: v.part });
    byCar.set(v.part.carId, list);
  }

  const cars: ModelCar[] = [];
  let absorbed = 0;
  for (const [carId, parts] of byCar) {
    parts.sort((a, b) => engineOrder(a.record, b.record));
    let open: Open | undefined;
    const emitted: Array<{ car: ModelCar; ids: Set<string> }> = [];
    const emit = (o: Open, at: number) => {
      finish(o.car, at);
      cars.push(o.car);
      emitted.push({ car: o.car, ids: o.ids });
      open = undefined;
    };

    for (const { record: r, part } of parts) {
      const ts = r.timestamp;
      // (1) A window that has run its course closes before this record is looked at.
      if (open && ts >= open.car.firstPartAt + rules.joinTimeoutMs) emit(open, open.car.firstPartAt + rules.joinTimeoutMs);
      // (2) Redeliveries are absorbed: in the open car, or in a car emitted within the retention.
      if (open?.ids.has(part.partId)) {
        fates.set(r.seq, { kind: "absorbed", car: open.car, whileOpen: true });
        absorbed++;
        continue;
      }
      const earlier = emitted.find((e) => e.ids.has(part.partId) && ts - e.car.emittedAt < rules.dedupRetentionMs);
      if (earlier) {
        fates.set(r.seq, { kind: "absorbed", car: earlier.car, whileOpen: false, sinceEmittedMs: ts - earlier.car.emittedAt });
        absorbed++;
        continue;
      }
      // (4) No open window: this part opens one.
      let opened = false;
      if (!open) {
        open = { car: newCar(carId, ts), ids: new Set(), wheelAt: new Set() };
        opened = true;
      }
      // (3) Into the open car: a free slot takes the part, a filled one makes it a conflict.
      const taken = slotTaken(open, r.role, part);
      if (taken !== undefined) {
        deadLetter(r, "CONFLICT", `car ${carId} already has ${taken}; ${r.role} ${part.partId} is a second one`);
        continue;
      }
      addPart(open, r.role, part);
      open.car.seqs.push(r.seq);
      fates.set(r.seq, { kind: "joined", car: open.car, opened });
      if (isComplete(open.car.parts)) emit(open, ts);
    }
    if (open) emit(open, open.car.firstPartAt + rules.joinTimeoutMs);
  }

  cars.sort((a, b) => a.firstPartAt - b.firstPartAt || (a.carId < b.carId ? -1 : a.carId > b.carId ? 1 : 0));
  deadLetters.sort((a, b) => a.seq - b.seq);
  return { cars, deadLetters, fates, absorbed };
}

/**
 * The order in which the engine processes one car's parts: by timestamp (SPEC §4), and on a tie
 * by role (body, engine, remote control, wheel), then by where the producer wrote the record
 * (partition, then offset). The engine can only break ties by what travels with a record
 * through the repartition hop, never by arrival, so its outcome is a function of the log alone;
 * on a tie this decides which of two conflicting parts wins and the order of a car's wheels.
 */
export function engineOrder(a: ModelRecord, b: ModelRecord): number {
  return a.timestamp - b.timestamp || ROLE_INDEX[a.role] - ROLE_INDEX[b.role] || a.partition - b.partition || compareOffsets(a.offset, b.offset);
}

/** Kafka offsets as decimal text (no leading zeros), compared as numbers: "9" < "10". */
function compareOffsets(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * SPEC §3: negative, or more than MAX_CLOCK_SKEW_MS ahead of the engine's clock when read. The
 * engine reads a record no earlier than it was written, so it sees it at most this far ahead; a
 * part planned as future is stamped far enough ahead that it is still future when read (config).
 */
function clockProblem(r: ModelRecord, rules: ModelRules): { cls: DeadLetterClass; detail: string } | undefined {
  if (r.timestamp < 0) return { cls: "BAD_TIMESTAMP", detail: `timestamp ${r.timestamp} is negative: the record has no usable event time` };
  const ahead = r.timestamp - r.producedAt;
  if (ahead > rules.maxClockSkewMs) {
    return { cls: "FUTURE_TIMESTAMP", detail: `stamped ${ahead} ms ahead of the engine's clock (MAX_CLOCK_SKEW_MS=${rules.maxClockSkewMs})` };
  }
  return undefined;
}

function newCar(carId: string, firstPartAt: number): ModelCar {
  return { carId, situation: "COMPLETED", missing: [], parts: { wheels: [] }, partIds: [], firstPartAt, emittedAt: firstPartAt, seqs: [] };
}

/** Describes the part already in the slot, or undefined when the slot is free. */
function slotTaken(o: Open, role: InputRole, part: Part): string | undefined {
  const p = o.car.parts;
  switch (role) {
    case "body":
      return p.body && `body ${p.body.partId}`;
    case "engine":
      return p.engine && `engine ${p.engine.partId}`;
    case "remoteControl":
      return p.remoteControl && `remote control ${p.remoteControl.partId}`;
    case "wheel": {
      const placement = (part as Wheel).placement;
      return o.wheelAt.has(placement) ? `a ${placement} wheel ${p.wheels.find((w) => w.placement === placement)!.partId}` : undefined;
    }
  }
}

function addPart(o: Open, role: InputRole, part: Part): void {
  const p = o.car.parts;
  if (role === "body") p.body = part as Body;
  else if (role === "engine") p.engine = part as Engine;
  else if (role === "remoteControl") p.remoteControl = part as RemoteControl;
  else {
    p.wheels.push(part as Wheel);
    o.wheelAt.add((part as Wheel).placement);
  }
  o.ids.add(part.partId);
}

function isComplete(p: CarParts): boolean {
  return missingOf(p).length === 0;
}

function missingOf(p: CarParts): MissingKind[] {
  return missingKinds({
    body: !!p.body,
    engine: !!p.engine,
    remoteControl: !!p.remoteControl,
    wheelPlacements: new Set(p.wheels.map((w) => w.placement)).size,
  });
}

function finish(car: ModelCar, at: number): void {
  const p = car.parts;
  car.missing = missingOf(p);
  car.situation = situationFor(car.missing);
  car.emittedAt = at;
  const all: Part[] = [p.body, p.engine, p.remoteControl, ...p.wheels].filter((x): x is Part => x !== undefined);
  car.partIds = all.map((x) => x.partId).sort();
  if (car.situation === "COMPLETED") car.totalCents = all.reduce((sum, x) => sum + catalogPriceCents(x.sku), 0);
}
