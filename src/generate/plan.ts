// The pure half of the generator: which records to send, in which order, and when, as a
// function of the seed and options alone. Timestamps are not planned: they are the real send
// times, stamped by the scheduler, and the model computes outcomes from those.
import type { KeyBy } from "../config.ts";
import { KIND_OF_ROLE, WHEEL_PLACEMENTS, type InputRole, type WheelPlacement } from "../domain.ts";
import { makeMalformed, MALFORMED_CLASSES, type MalformedClass } from "./malformed.ts";
import { chooseSku, encodeJson, makePart, PLACEMENT_CODE, ROLE_OF_KIND } from "./parts.ts";
import { createRng, mixSeed, type Rng } from "./prng.ts";

export interface PlanOptions {
  cars: number;
  seed: number;
  /** Catalog SKUs per kind. */
  skus: number;
  distinctSkus: boolean;
  /** Probability that a car lacks its body / engine / remote control / 1–4 of its wheels. */
  missingBody: number;
  missingEngine: number;
  missingRemote: number;
  missingWheels: number;
  /** Fraction of cars with one part sent after their window closed. */
  lateRate: number;
  /** Fraction of cars with one part delivered twice. */
  dupRate: number;
  /** Fraction of cars that get a second part for a filled slot while open. */
  conflictRate: number;
  /** Fraction of cars with one malformed record. */
  malformedRate: number;
  /** Fraction of parts carrying an unknown extra field. */
  extraFieldRate: number;
  /** Keys of every record, malformed ones included (their partId is the one they spoil). */
  keyBy: KeyBy;
  /** Valid parts stamped `futureAheadMs` ahead of the wall clock, one on each of that many random cars. */
  futureStamped: number;
  futureAheadMs: number;
  /** Valid parts with a negative timestamp, one on each of that many other random cars. */
  badTimestamp: number;
  /** The engine's MAX_CLOCK_SKEW_MS: what counts as stamped in the future. */
  maxClockSkewMs: number;
  /** Cars in progress at once. */
  interleave: number;
  /** Cars per second; 0 = as fast as possible. */
  rate: number;
  joinTimeoutMs: number;
  dedupRetentionMs: number;
  maxPartBytes: number;
}

export type Intent = "part" | "late" | "duplicate" | "conflict" | "malformed" | "futureStamped" | "badTimestamp";

/** What a record's key is. */
export type Keying = "carId" | "partId" | "none";

/** How a record's timestamp is made when it is sent: the send time unless one of these says otherwise. */
export type PlannedClock = { aheadMs: number } | { fixed: number };

/** Negative timestamps BAD_TIMESTAMP parts get, in turn: Kafka's NO_TIMESTAMP, and a broken clock's. */
export const BAD_TIMESTAMPS: readonly number[] = [-1, -1000];

export interface PlannedRecord {
  seq: number;
  carIndex: number;
  carId: string;
  role: InputRole;
  key: string | null;
  keying: Keying;
  value: Uint8Array;
  intent: Intent;
  /** A producer with a wrong clock (futureStamped, badTimestamp); absent: stamped with the send time. */
  clock?: PlannedClock;
  /** The car's first part: its timestamp opens the car's window. */
  opensCar: boolean;
  /** Earliest send time: ms after the run started, or (late parts) after the car's first part. */
  send: { after: "start" | "carFirst"; ms: number };
  /** For a duplicate: the seq of the record it repeats. */
  duplicateOf?: number;
  malformed?: { cls: MalformedClass; defect: string; repaired: { key: string; value: Uint8Array } };
}

export interface PlanStats {
  cars: number;
  parts: number;
  late: number;
  duplicates: number;
  conflicts: number;
  malformed: number;
  malformedByClass: Record<string, number>;
  futureStamped: number;
  badTimestamp: number;
}

export interface Plan {
  options: PlanOptions;
  records: PlannedRecord[];
  stats: PlanStats;
}

/** Timely parts are sent at least this long before their window closes. */
export function timelyMarginMs(joinTimeoutMs: number): number {
  return Math.min(1000, Math.floor(joinTimeoutMs / 2));
}
/** Late parts are sent at least this long after their window closed (plus up to LATE_SPREAD_MS). */
export const LATE_MARGIN_MS = 1000;
export const LATE_SPREAD_MS = 1000;

interface Draft {
  rec: Omit<PlannedRecord, "seq" | "duplicateOf">;
  dupOf?: Draft;
  pos: number;
  nominalMs: number;
  order: number;
}

// Independent random streams of a car (mixSeed(seed, carIndex, stream)), so that options which
// are off draw nothing and leave every other record of the seed as it was.
const CLOCK_STREAM = 1;
const KEY_STREAM = 2;
/** The run-level stream that picks the cars with a wrong-clock part. */
const CLOCK_CARS_STREAM = 0x636c6b;

interface Slot {
  role: InputRole;
  code: string;
  placement?: WheelPlacement;
}

export function buildPlan(o: PlanOptions): Plan {
  // A car's timely records spread over `spread` car slots; with pacing, that must stay well
  // inside the window, so slow rates shrink the interleave.
  const budgetMs = (o.joinTimeoutMs - timelyMarginMs(o.joinTimeoutMs)) * 0.7;
  const spread = o.rate > 0 ? Math.min(o.interleave, (o.rate * budgetMs) / 1000) : o.interleave;
  const msOf = (pos: number) => (o.rate > 0 ? (pos * 1000) / o.rate : 0);
  const drafts: Draft[] = [];
  const stats: PlanStats = {
    cars: o.cars,
    parts: 0,
    late: 0,
    duplicates: 0,
    conflicts: 0,
    malformed: 0,
    malformedByClass: {},
    futureStamped: 0,
    badTimestamp: 0,
  };
  let order = 0;
  let malformedCount = 0;
  const clockOfCar = wrongClockCars(o);

  for (let i = 0; i < o.cars; i++) {
    const rng = createRng(mixSeed(o.seed, i));
    const keyRng = o.keyBy === "mixed" ? createRng(mixSeed(o.seed, i, KEY_STREAM)) : undefined;
    const carId = `car-${o.seed}-${i}`;
    const keyOf = (partId: string): { key: string | null; keying: Keying } => {
      const keying: Keying = keyRng ? keyRng.pick(KEYINGS) : o.keyBy === "mixed" ? "carId" : o.keyBy;
      return { key: keying === "carId" ? carId : keying === "partId" ? partId : null, keying };
    };
    const slots = carSlots(rng, o);
    const [isLate, isDup, isConflict, isMalformed] = [rng.chance(o.lateRate), rng.chance(o.dupRate), rng.chance(o.conflictRate), rng.chance(o.malformedRate)];
    const add = (rec: Draft["rec"], pos: number, nominalMs = msOf(pos)): Draft => {
      const d: Draft = { rec, pos, nominalMs, order: order++ };
      drafts.push(d);
      return d;
    };
    const partRecord = (slot: Slot, partId: string, intent: Intent, partRng: Rng = rng): Draft["rec"] => {
      const kind = KIND_OF_ROLE[slot.role];
      const sku = chooseSku(kind, partId, partRng, o);
      const part = makePart({ role: slot.role, carId, partId, sku, placement: slot.placement }, partRng, o.extraFieldRate);
      return { carIndex: i, carId, role: slot.role, ...keyOf(partId), value: encodeJson(part), intent, opensCar: false, send: { after: "start", ms: 0 } };
    };
    const wrongClock = clockOfCar.get(i);
    const clockRng = wrongClock ? createRng(mixSeed(o.seed, i, CLOCK_STREAM)) : undefined;
    let wrongClockPlaced = false;
    const addWrongClock = (rec: Draft["rec"], pos: number) => {
      const w = wrongClock!;
      wrongClockPlaced = true;
      rec.intent = w.intent;
      rec.clock = w.clock;
      add(rec, pos);
      stats[w.intent]++;
    };

    if (slots.length > 0) {
      const offsets = slots
        .slice(1)
        .map(() => rng.next())
        .sort((a, b) => a - b);
      const positions = [i, ...offsets.map((u) => i + spread * u)];
      const lateIndex = isLate && slots.length >= 2 ? 1 + rng.int(slots.length - 1) : -1;
      // A wrong-clock part takes one of the car's slots, never the first (whose timestamp opens the
      // window and times the late part) nor the late one: the car is judged without it.
      let wrongClockIndex = -1;
      if (clockRng) {
        const eligible = slots.map((_, k) => k).filter((k) => k >= 1 && k !== lateIndex);
        if (eligible.length > 0) wrongClockIndex = clockRng.pick(eligible);
      }
      const timely: Draft[] = [];
      // The first part first, then a conflict right behind it, so the conflict lands while the car is open.
      slots.forEach((slot, k) => {
        if (k === lateIndex) return;
        const rec = partRecord(slot, `${carId}-${slot.code}`, "part");
        rec.send = { after: "start", ms: msOf(positions[k]!) };
        if (k === wrongClockIndex) {
          addWrongClock(rec, positions[k]!);
          return;
        }
        if (k === 0) rec.opensCar = true;
        timely.push(add(rec, positions[k]!));
        stats.parts++;
        if (k === 0 && isConflict) {
          const c = partRecord(slot, `${carId}-${slot.code}2`, "conflict");
          c.send = { after: "start", ms: msOf(positions[0]!) };
          add(c, positions[0]!);
          stats.conflicts++;
        }
      });
      if (lateIndex >= 0) {
        const slot = slots[lateIndex]!;
        const rec = partRecord(slot, `${carId}-${slot.code}`, "late");
        const lateMs = o.joinTimeoutMs + LATE_MARGIN_MS + rng.int(LATE_SPREAD_MS);
        rec.send = { after: "carFirst", ms: lateMs };
        add(rec, positions[0]!, msOf(positions[0]!) + lateMs);
        stats.parts++;
        stats.late++;
      }
      if (isDup) {
        const original = rng.pick(timely);
        const last = Math.max(...timely.map((d) => d.pos));
        // Half the redeliveries come while the car is still open, half after it was emitted.
        const pos = rng.chance(0.5) ? original.pos + (last - original.pos) * rng.next() : last + spread * 0.5 * rng.next();
        const d = add({ ...original.rec, intent: "duplicate", opensCar: false, send: { after: "start", ms: msOf(pos) } }, pos);
        d.dupOf = original;
        stats.duplicates++;
      }
    }
    if (clockRng && !wrongClockPlaced) {
      // No slot to take (a car of one or two parts, one of them late): an extra engine of its own.
      const pos = i + spread * clockRng.next();
      const rec = partRecord({ role: "engine", code: "T" }, `${carId}-T`, "part", clockRng);
      rec.send = { after: "start", ms: msOf(pos) };
      addWrongClock(rec, pos);
    }
    if (isMalformed) {
      const cls = MALFORMED_CLASSES[malformedCount % MALFORMED_CLASSES.length]!;
      const variant = Math.floor(malformedCount / MALFORMED_CLASSES.length);
      malformedCount++;
      const m = makeMalformed({ cls, variant, carId, partId: `${carId}-X`, maxPartBytes: o.maxPartBytes, sku: o }, rng);
      const pos = i + spread * rng.next();
      add(
        {
          carIndex: i,
          carId,
          role: m.role,
          // Keyed as the run keys its parts (the partId of the part it spoils): a record whose
          // value cannot be read is a dead letter whatever its key, with its own coordinates.
          ...keyOf(`${carId}-X`),
          value: m.value,
          intent: "malformed",
          opensCar: false,
          send: { after: "start", ms: msOf(pos) },
          malformed: { cls, defect: m.defect, repaired: m.repaired },
        },
        pos,
      );
      stats.malformed++;
      stats.malformedByClass[cls] = (stats.malformedByClass[cls] ?? 0) + 1;
    }
  }

  drafts.sort((a, b) => a.nominalMs - b.nominalMs || a.pos - b.pos || a.order - b.order);
  const seqOf = new Map<Draft, number>();
  drafts.forEach((d, seq) => seqOf.set(d, seq));
  const records = drafts.map((d, seq): PlannedRecord => {
    const r: PlannedRecord = { ...d.rec, seq };
    if (d.dupOf) r.duplicateOf = seqOf.get(d.dupOf)!;
    return r;
  });
  return { options: o, records, stats };
}

const KEYINGS: readonly Keying[] = ["carId", "partId", "none"];

interface WrongClock {
  intent: "futureStamped" | "badTimestamp";
  clock: PlannedClock;
}

/** The cars that get a wrong-clock part: futureStamped + badTimestamp distinct cars, at random. */
function wrongClockCars(o: PlanOptions): Map<number, WrongClock> {
  const out = new Map<number, WrongClock>();
  const k = o.futureStamped + o.badTimestamp;
  if (k === 0) return out;
  if (k > o.cars) throw new Error(`futureStamped + badTimestamp (${k}) must be <= cars (${o.cars})`);
  const rng = createRng(mixSeed(o.seed, CLOCK_CARS_STREAM));
  // Floyd's sampling: k distinct indices without materialising all cars, then a random order.
  const chosen = new Set<number>();
  for (let j = o.cars - k; j < o.cars; j++) {
    const t = rng.int(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  rng.shuffle([...chosen]).forEach((car, n) => {
    out.set(
      car,
      n < o.futureStamped
        ? { intent: "futureStamped", clock: { aheadMs: o.futureAheadMs } }
        : { intent: "badTimestamp", clock: { fixed: BAD_TIMESTAMPS[(n - o.futureStamped) % BAD_TIMESTAMPS.length]! } },
    );
  });
  return out;
}

/** The parts a car will have, in the order the factory sends them. */
function carSlots(rng: Rng, o: PlanOptions): Slot[] {
  const slots: Slot[] = [];
  if (!rng.chance(o.missingBody)) slots.push({ role: ROLE_OF_KIND.BODY, code: "B" });
  if (!rng.chance(o.missingEngine)) slots.push({ role: ROLE_OF_KIND.ENGINE, code: "E" });
  if (!rng.chance(o.missingRemote)) slots.push({ role: ROLE_OF_KIND.REMOTE_CONTROL, code: "R" });
  let placements = [...WHEEL_PLACEMENTS] as WheelPlacement[];
  if (rng.chance(o.missingWheels)) placements = rng.shuffle(placements).slice(1 + rng.int(4));
  for (const p of placements) slots.push({ role: "wheel", code: PLACEMENT_CODE[p], placement: p });
  return rng.shuffle(slots);
}
