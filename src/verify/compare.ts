// Judges what the engine wrote against the manifest: every expected car exactly once, on the
// right topic, with the right situation, missing kinds, parts and price; every expected dead
// letter exactly once with the right class, source and bytes; nothing else. Pure.
import type { Topics } from "../config.ts";
import { amountToCents, catalogPriceCents, classOfReason, type Situation } from "../domain.ts";
import { partsDigest } from "../generate/index.ts";
import type { ExpectedCar, ExpectedDeadLetter, Manifest } from "../generate/index.ts";

export interface FoundRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Uint8Array | null;
  timestamp?: string;
}

export interface CompareOptions {
  /** An expected COMPLETED car may be FAILED_GET_PRICE instead (runs against a failing price API). */
  allowFailedPrice: boolean;
}

export const PROBLEM_KINDS = {
  lostCar: "expected car not found",
  duplicateCar: "car found more than once",
  unexpectedCar: "car found that was not expected (carId + partIds match no expected car)",
  wrongTopic: "car on the wrong output topic",
  wrongSituation: "car with the wrong situation",
  wrongMissing: "car with the wrong missing list",
  wrongTotal: "COMPLETED car whose totalPrice is not the expected whole number of cents",
  wrongPrices: "COMPLETED car whose prices map is not the catalog price of each of its SKUs",
  wrongParts: "car whose parts differ from the parts as sent (fields, extra fields)",
  wrongFirstPartAt: "car whose firstPartAt is not the timestamp of its first part",
  wrongKey: "output record whose key is not its carId",
  failedPriceWithoutError: "FAILED_GET_PRICE car without an error",
  badOutput: "output record that is not a well-formed Car or DeadLetter",
  partIdInSeveralCars: "partId found in more than one car",
  partIdNeverOutput: "expected partId found in no car",
  lostDeadLetter: "expected dead letter not found",
  duplicateDeadLetter: "dead letter found more than once",
  unexpectedDeadLetter: "dead letter found that was not expected",
  wrongDeadLetterClass: "dead letter whose reason does not start with the expected CLASS:",
  wrongDeadLetterSource: "dead letter with the wrong source topic, partition or offset",
  wrongDeadLetterKey: "dead letter with the wrong key",
} as const;
export type ProblemKind = keyof typeof PROBLEM_KINDS;

export interface ProblemSummary {
  count: number;
  /** The first few, for people. */
  examples: string[];
}

export interface Report {
  ok: boolean;
  situations: Array<{ situation: string; expected: number; found: number }>;
  deadLetterClasses: Array<{ cls: string; expected: number; found: number }>;
  cars: { expected: number; found: number };
  deadLetters: { expected: number; found: number };
  /** Expected COMPLETED cars found as FAILED_GET_PRICE, allowed by allowFailedPrice. */
  failedPrice: number;
  problems: Partial<Record<ProblemKind, ProblemSummary>>;
}

const EXAMPLES = 10;
const SITUATION_ORDER: readonly Situation[] = ["COMPLETED", "MISSING_BODY", "MISSING_ENGINE", "MISSING_REMOTE_CONTROL", "MISSING_WHEELS", "FAILED_GET_PRICE"];

type Obj = Record<string, unknown>;

interface FoundCar {
  record: FoundRecord;
  car: Obj;
  carId: string;
  parts: Obj[];
  partIds: string[];
}

interface FoundDeadLetter {
  record: FoundRecord;
  dl: Obj;
  valueKey: string;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const carKey = (carId: string, partIds: readonly string[]) => `${carId}\u0000${[...partIds].sort().join("\u0000")}`;
const where = (r: FoundRecord) => `${r.topic}/${r.partition}@${r.offset}`;

export function compare(manifest: Manifest, found: readonly FoundRecord[], opts: CompareOptions): Report {
  const topics: Topics = manifest.topics;
  const problems: Report["problems"] = {};
  const problem = (kind: ProblemKind, detail: string) => {
    const p = (problems[kind] ??= { count: 0, examples: [] });
    p.count++;
    if (p.examples.length < EXAMPLES) p.examples.push(detail);
  };

  // ---- decode ----
  const cars: FoundCar[] = [];
  const dls: FoundDeadLetter[] = [];
  for (const r of found) {
    if (r.topic === topics.completed || r.topic === topics.incomplete) {
      const c = decodeCar(r);
      if (typeof c === "string") problem("badOutput", `${where(r)}: ${c}`);
      else cars.push(c);
    } else if (r.topic === topics.dlq) {
      const d = decodeDeadLetter(r);
      if (typeof d === "string") problem("badOutput", `${where(r)}: ${d}`);
      else dls.push(d);
    }
  }

  // ---- cars ----
  const foundByKey = new Map<string, FoundCar[]>();
  for (const c of cars) {
    const k = carKey(c.carId, c.partIds);
    foundByKey.set(k, [...(foundByKey.get(k) ?? []), c]);
    if (c.record.key !== c.carId) problem("wrongKey", `${where(c.record)}: key ${JSON.stringify(c.record.key)}, carId ${c.carId}`);
  }
  const expectedKeys = new Set<string>();
  let failedPrice = 0;
  for (const e of manifest.cars) {
    const k = carKey(e.carId, e.partIds);
    expectedKeys.add(k);
    const list = foundByKey.get(k) ?? [];
    if (list.length === 0) {
      problem("lostCar", `${e.carId} ${e.situation} [${e.partIds.join(" ")}]`);
      continue;
    }
    if (list.length > 1) problem("duplicateCar", `${e.carId} found ${list.length} times: ${list.map((c) => where(c.record)).join(", ")}`);
    if (checkCar(e, list[0]!, topics, opts, problem)) failedPrice++;
  }
  for (const [k, list] of foundByKey) {
    if (expectedKeys.has(k)) continue;
    for (const c of list) problem("unexpectedCar", `${where(c.record)}: ${c.carId} ${String(c.car.situation)} [${c.partIds.join(" ")}]`);
  }

  // Conservation of parts: every expected partId in exactly one car.
  const carsOfPart = new Map<string, Set<string>>();
  for (const [k, list] of foundByKey) {
    for (const id of list[0]!.partIds) carsOfPart.set(id, (carsOfPart.get(id) ?? new Set()).add(k));
  }
  for (const [id, keys] of carsOfPart) {
    if (keys.size > 1) problem("partIdInSeveralCars", `${id} in ${keys.size} cars: ${[...keys].map((k) => k.split("\u0000")[0]).join(", ")}`);
  }
  for (const e of manifest.cars) {
    for (const id of e.partIds) if (!carsOfPart.has(id)) problem("partIdNeverOutput", `${id} (car ${e.carId})`);
  }

  // ---- dead letters ----
  const expectedDl = new Map<string, ExpectedDeadLetter>();
  for (const e of manifest.deadLetters) expectedDl.set(e.valueBase64 ?? "null", e);
  const foundDl = new Map<string, FoundDeadLetter[]>();
  for (const d of dls) foundDl.set(d.valueKey, [...(foundDl.get(d.valueKey) ?? []), d]);
  for (const [valueKey, e] of expectedDl) {
    const list = foundDl.get(valueKey) ?? [];
    const label = `${e.class} from ${e.topic}/${e.partition}@${e.offset}`;
    if (list.length === 0) {
      problem("lostDeadLetter", label);
      continue;
    }
    if (list.length > 1) problem("duplicateDeadLetter", `${label} found ${list.length} times`);
    checkDeadLetter(e, list[0]!, label, problem);
  }
  for (const [valueKey, list] of foundDl) {
    if (expectedDl.has(valueKey)) continue;
    for (const d of list) problem("unexpectedDeadLetter", `${where(d.record)}: ${String(d.dl.reason)} (${valueKey.slice(0, 60)})`);
  }

  // ---- tables ----
  const count = <T>(items: readonly T[], of: (t: T) => string) => {
    const m = new Map<string, number>();
    for (const t of items) m.set(of(t), (m.get(of(t)) ?? 0) + 1);
    return m;
  };
  const expSit = count(manifest.cars, (c) => c.situation);
  const foundSit = count(cars, (c) => String(c.car.situation));
  const sitNames = [...SITUATION_ORDER, ...[...foundSit.keys()].filter((s) => !(SITUATION_ORDER as readonly string[]).includes(s))];
  const expCls = count(manifest.deadLetters, (d) => d.class);
  const foundCls = count(dls, (d) => classOfReason(String(d.dl.reason)) ?? "(no class)");
  const clsNames = [...new Set([...expCls.keys(), ...foundCls.keys()])].sort();

  return {
    ok: Object.keys(problems).length === 0,
    situations: sitNames.map((s) => ({ situation: s, expected: expSit.get(s) ?? 0, found: foundSit.get(s) ?? 0 })).filter((r) => r.expected > 0 || r.found > 0),
    deadLetterClasses: clsNames.map((c) => ({ cls: c, expected: expCls.get(c) ?? 0, found: foundCls.get(c) ?? 0 })),
    cars: { expected: manifest.cars.length, found: cars.length },
    deadLetters: { expected: manifest.deadLetters.length, found: dls.length },
    failedPrice,
    problems,
  };
}

/** Checks one found car against its expectation; true when it is an allowed FAILED_GET_PRICE. */
function checkCar(e: ExpectedCar, f: FoundCar, topics: Topics, opts: CompareOptions, problem: (k: ProblemKind, d: string) => void): boolean {
  const c = f.car;
  const label = `${where(f.record)} ${e.carId}`;
  const failedInstead = opts.allowFailedPrice && e.situation === "COMPLETED" && c.situation === "FAILED_GET_PRICE";
  const expectTopic = e.situation === "COMPLETED" && !failedInstead ? topics.completed : topics.incomplete;
  if (f.record.topic !== expectTopic) problem("wrongTopic", `${label}: ${String(c.situation)} on ${f.record.topic}, expected on ${expectTopic}`);
  if (!failedInstead && c.situation !== e.situation) problem("wrongSituation", `${label}: ${String(c.situation)}, expected ${e.situation}`);
  const missing = Array.isArray(c.missing) ? c.missing : [];
  if (missing.join(",") !== e.missing.join(",")) problem("wrongMissing", `${label}: missing [${missing.join(",")}], expected [${e.missing.join(",")}]`);
  if (partsDigest(f.parts) !== e.partsDigest) problem("wrongParts", `${label}: parts differ from what was sent`);
  if (c.firstPartAt !== e.firstPartAt) problem("wrongFirstPartAt", `${label}: firstPartAt ${String(c.firstPartAt)}, expected ${e.firstPartAt}`);

  if (failedInstead) {
    if (typeof c.error !== "string" || c.error.trim() === "") problem("failedPriceWithoutError", `${label}: error ${JSON.stringify(c.error)}`);
    if (c.totalPrice !== undefined || c.prices !== undefined) problem("badOutput", `${label}: FAILED_GET_PRICE with prices`);
    return true;
  }
  if (c.situation === "COMPLETED" && e.situation === "COMPLETED") {
    const cents = typeof c.totalPrice === "number" ? amountToCents(c.totalPrice) : null;
    if (cents !== e.totalCents) problem("wrongTotal", `${label}: totalPrice ${JSON.stringify(c.totalPrice)}, expected ${(e.totalCents! / 100).toFixed(2)}`);
    const why = pricesProblem(c.prices, f.parts);
    if (why) problem("wrongPrices", `${label}: ${why}`);
  } else if (c.totalPrice !== undefined || c.prices !== undefined) {
    problem("badOutput", `${label}: ${String(c.situation)} car with prices`);
  }
  return false;
}

function pricesProblem(prices: unknown, parts: Obj[]): string | undefined {
  if (!isObj(prices)) return `prices is ${JSON.stringify(prices)}`;
  const skus = new Set(parts.map((p) => String(p.sku)));
  const keys = Object.keys(prices);
  const extra = keys.filter((k) => !skus.has(k));
  if (extra.length) return `prices for SKUs the car does not have: ${extra.join(", ")}`;
  for (const sku of skus) {
    const v = prices[sku];
    const cents = typeof v === "number" ? amountToCents(v) : null;
    if (cents !== catalogPriceCents(sku)) return `prices[${sku}] = ${JSON.stringify(v)}, catalog ${(catalogPriceCents(sku) / 100).toFixed(2)}`;
  }
  return undefined;
}

function checkDeadLetter(e: ExpectedDeadLetter, f: FoundDeadLetter, label: string, problem: (k: ProblemKind, d: string) => void): void {
  const d = f.dl;
  const reason = String(d.reason);
  if (classOfReason(reason) !== e.class || reason.slice(reason.indexOf(":") + 1).trim() === "") {
    problem("wrongDeadLetterClass", `${where(f.record)}: reason ${JSON.stringify(reason.slice(0, 120))}, expected ${e.class}: <detail>`);
  }
  if (d.topic !== e.topic || d.partition !== e.partition || String(d.offset) !== e.offset) {
    problem(
      "wrongDeadLetterSource",
      `${where(f.record)}: from ${String(d.topic)}/${String(d.partition)}@${String(d.offset)}, expected ${e.topic}/${e.partition}@${e.offset}`,
    );
  }
  if (d.key !== e.key || f.record.key !== e.key) {
    problem("wrongDeadLetterKey", `${label}: key ${JSON.stringify(d.key)} (record key ${JSON.stringify(f.record.key)}), expected ${JSON.stringify(e.key)}`);
  }
}

function parseJson(r: FoundRecord): Obj | string {
  if (r.value === null) return "null value";
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(r.value));
  } catch {
    return "value is not UTF-8 JSON";
  }
  return isObj(v) ? v : "value is not a JSON object";
}

function decodeCar(r: FoundRecord): FoundCar | string {
  const car = parseJson(r);
  if (typeof car === "string") return car;
  if (typeof car.carId !== "string") return "carId is not a string";
  for (const f of ["situation"]) if (typeof car[f] !== "string") return `${f} is not a string`;
  for (const f of ["missing", "wheels"]) if (!Array.isArray(car[f])) return `${f} is not an array`;
  for (const f of ["firstPartAt", "assembledAt"]) if (typeof car[f] !== "number") return `${f} is not a number`;
  const parts: Obj[] = [];
  for (const f of ["body", "engine", "remoteControl"]) {
    if (car[f] === undefined) continue;
    if (!isObj(car[f])) return `${f} is not an object`;
    parts.push(car[f] as Obj);
  }
  for (const w of car.wheels as unknown[]) {
    if (!isObj(w)) return "a wheel is not an object";
    parts.push(w);
  }
  if (parts.some((p) => typeof p.partId !== "string")) return "a part without a string partId";
  return { record: r, car, carId: car.carId, parts, partIds: parts.map((p) => p.partId as string).sort() };
}

function decodeDeadLetter(r: FoundRecord): FoundDeadLetter | string {
  const dl = parseJson(r);
  if (typeof dl === "string") return dl;
  if (typeof dl.reason !== "string") return "reason is not a string";
  if (dl.value !== null && typeof dl.value !== "string") return "value is neither base64 text nor null";
  // Re-encode so that any valid base64 spelling of the same bytes matches.
  const valueKey = dl.value === null ? "null" : Buffer.from(dl.value as string, "base64").toString("base64");
  return { record: r, dl, valueKey };
}
