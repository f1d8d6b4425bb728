// The pure half of the generator: which records to send, in which order, and when, as a
// function of the seed and options alone. Timestamps are not planned: they are the real send
// times, stamped by the scheduler, and the model computes outcomes from those.
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
  /** Cars in progress at once. */
  interleave: number;
  /** Cars per second; 0 = as fast as possible. */
  rate: number;
  joinTimeoutMs: number;
  dedupRetentionMs: number;
  maxPartBytes: number;
}

export type Intent = "part" | "late" | "duplicate" | "conflict" | "malformed";

export interface PlannedRecord {
  seq: number;
  carIndex: number;
  carId: string;
  role: InputRole;
  key: string | null;
  value: Uint8Array;
  intent: Intent;
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
  const stats: PlanStats = { cars: o.cars, parts: 0, late: 0, duplicates: 0, conflicts: 0, malformed: 0, malformedByClass: {} };
  let order = 0;
  let malformedCount = 0;

  for (let i = 0; i < o.cars; i++) {
    const rng = createRng(mixSeed(o.seed, i));
    const carId = `car-${o.seed}-${i}`;
    const slots = carSlots(rng, o);
    const [isLate, isDup, isConflict, isMalformed] = [rng.chance(o.lateRate), rng.chance(o.dupRate), rng.chance(o.conflictRate), rng.chance(o.malformedRate)];
    const add = (rec: Draft["rec"], pos: number, nominalMs = msOf(pos)): Draft => {
      const d: Draft = { rec, pos, nominalMs, order: order++ };
      drafts.push(d);
      return d;
    };
    const partRecord = (slot: Slot, partId: string, intent: Intent): Draft["rec"] => {
      const kind = KIND_OF_ROLE[slot.role];
      const sku = chooseSku(kind, partId, rng, o);
      const part = makePart({ role: slot.role, carId, partId, sku, placement: slot.placement }, rng, o.extraFieldRate);
      return { carIndex: i, carId, role: slot.role, key: carId, value: encodeJson(part), intent, opensCar: false, send: { after: "start", ms: 0 } };
    };

    if (slots.length > 0) {
      const offsets = slots.slice(1).map(() => rng.next()).sort((a, b) => a - b);
      const positions = [i, ...offsets.map((u) => i + spread * u)];
      const lateIndex = isLate && slots.length >= 2 ? 1 + rng.int(slots.length - 1) : -1;
      const timely: Draft[] = [];
      // The first part first, then a conflict right behind it, so the conflict lands while the car is open.
      slots.forEach((slot, k) => {
        if (k === lateIndex) return;
        const rec = partRecord(slot, `${carId}-${slot.code}`, "part");
        rec.send = { after: "start", ms: msOf(positions[k]!) };
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
    if (isMalformed) {
      const cls = MALFORMED_CLASSES[malformedCount % MALFORMED_CLASSES.length]!;
      const variant = Math.floor(malformedCount / MALFORMED_CLASSES.length);
      malformedCount++;
      const m = makeMalformed({ cls, variant, carId, partId: `${carId}-X`, maxPartBytes: o.maxPartBytes, sku: o }, rng);
      const pos = i + spread * rng.next();
      add(
        { carIndex: i, carId, role: m.role, key: m.key, value: m.value, intent: "malformed", opensCar: false, send: { after: "start", ms: msOf(pos) }, malformed: { cls, defect: m.defect, repaired: m.repaired } },
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
