// The generator is the test oracle: its plan must be reproducible, its malformed records must
// have exactly one defect, its model must implement SPEC §4 rule by rule, and what it writes to
// Kafka must be what the manifest says (keys, partitions, offsets, real timestamps).
import { describe, expect, test } from "bun:test";
import { ConfigResourceTypes, type Kafka, type KafkaMessage } from "kafkajs";
import { checkGeneratorSettings, ConfigError, generatorSpec, kafkaSpec, loadSettings, topicsOf, type KafkaSettings, type Topics } from "../src/config.ts";
import { catalogPriceCents, KIND_OF_ROLE, type InputRole } from "../src/domain.ts";
import { createKafka, Partitioners, TIMESTAMP_GUARD } from "../src/kafka.ts";
import { generate, generatorDefaults, planOptionsOf } from "../src/generate/index.ts";
import { checkIntent } from "../src/generate/intent.ts";
import { MALFORMED_CLASSES } from "../src/generate/malformed.ts";
import { buildManifest, modelRecordsOf, type Manifest } from "../src/generate/manifest.ts";
import { runModel, type ModelRecord, type ModelRules } from "../src/generate/model.ts";
import { placeOnEmptyTopics } from "../src/generate/placement.ts";
import { BAD_TIMESTAMPS, buildPlan, LATE_MARGIN_MS, type PlanOptions } from "../src/generate/plan.ts";
import { createRng } from "../src/generate/prng.ts";
import { simulate } from "../src/generate/schedule.ts";
import { validatePart } from "../src/ingest/validate.ts";
import { freshTopics } from "./support/kafka.ts";

const CHAOS = {
  lateRate: 0.15,
  dupRate: 0.15,
  conflictRate: 0.15,
  malformedRate: 0.15,
  missingBody: 0.05,
  missingEngine: 0.05,
  missingRemote: 0.05,
  missingWheels: 0.1,
  extraFieldRate: 0.2,
};
const options = (o: Partial<PlanOptions> = {}): PlanOptions => ({ ...planOptionsOf(generatorDefaults()), ...o });
const TOPICS: Topics = topicsOf(loadSettings(kafkaSpec, { env: {}, argv: [] }));
const ROLE_TOPICS: Record<InputRole, string> = { body: TOPICS.body, engine: TOPICS.engine, remoteControl: TOPICS.remoteControl, wheel: TOPICS.wheel };

/** A whole run without Kafka: plan, virtual clock, broker-like offsets, model, manifest. */
function dryRun(o: PlanOptions, startMs = 1_700_000_000_000, msPerBatch = 1) {
  const plan = buildPlan(o);
  const sent = placeOnEmptyTopics(simulate(plan, startMs, { msPerBatch }), ROLE_TOPICS, 4);
  const model = runModel(modelRecordsOf(sent), o);
  return { plan, sent, model, manifest: buildManifest(plan, sent, model, TOPICS) };
}

/** The outcome of a manifest without anything that depends on when or where records landed. */
// What a run must produce, without the wall-clock times it was stamped with.
function outcomes(m: Manifest) {
  const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    cars: m.cars.map(({ firstPartAt: _f, emittedAt: _e, ...rest }) => rest).sort((a, b) => byText(a.carId + a.partIds.join(), b.carId + b.partIds.join())),
    deadLetters: m.deadLetters
      .map(({ partition: _p, offset: _o, detail: _d, timestamp: _t, ...rest }) => rest)
      .sort((a, b) => byText(a.valueBase64 ?? "", b.valueBase64 ?? "")),
  };
}

describe("plan", () => {
  test("same seed and options give the same records; another seed does not", () => {
    const strip = (o: PlanOptions) => buildPlan(o).records.map((r) => ({ ...r, value: Buffer.from(r.value).toString("base64"), malformed: r.malformed?.cls }));
    const a = strip(options({ cars: 300, seed: 11, ...CHAOS }));
    const b = strip(options({ cars: 300, seed: 11, ...CHAOS }));
    const c = strip(options({ cars: 300, seed: 12, ...CHAOS }));
    expect(a.length).toBeGreaterThan(300 * 6);
    expect(b).toEqual(a);
    expect(c.map((r) => r.value)).not.toEqual(a.map((r) => r.value));
  });

  test("same seed gives the same outcomes whatever the timing; another seed does not", () => {
    const a = dryRun(options({ cars: 300, seed: 5, ...CHAOS }), 1_700_000_000_000, 1);
    const b = dryRun(options({ cars: 300, seed: 5, ...CHAOS }), 1_800_000_000_000, 3);
    const c = dryRun(options({ cars: 300, seed: 6, ...CHAOS }));
    expect(checkIntent(a.plan, a.sent, a.model)).toEqual([]);
    expect(checkIntent(b.plan, b.sent, b.model)).toEqual([]);
    expect(outcomes(b.manifest)).toEqual(outcomes(a.manifest));
    expect(outcomes(c.manifest)).not.toEqual(outcomes(a.manifest));
  });

  test("partIds are unique, cars get their parts interleaved, extras happen at the asked rates", () => {
    const { plan, manifest } = dryRun(options({ cars: 2000, seed: 3, ...CHAOS }));
    const partRecords = plan.records.filter((r) => r.intent === "part" || r.intent === "late" || r.intent === "conflict");
    const ids = partRecords.map((r) => JSON.parse(new TextDecoder().decode(r.value)).partId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [name, n] of [
      ["late", plan.stats.late],
      ["duplicates", plan.stats.duplicates],
      ["conflicts", plan.stats.conflicts],
      ["malformed", plan.stats.malformed],
    ] as const) {
      expect({ name, rate: n / 2000 > 0.1 && n / 2000 < 0.2 }).toEqual({ name, rate: true });
    }
    // Interleaving: about `interleave` cars are in progress at once.
    const firstTimely = plan.records.filter((r) => r.send.after === "start");
    const window = firstTimely.slice(1000, 1300);
    expect(new Set(window.map((r) => r.carId)).size).toBeGreaterThan(25);
    // Every distinct part ends in exactly one expected car.
    expect(manifest.counts.distinctPartIds).toBe(ids.length - plan.stats.conflicts);
    expect(manifest.counts.absorbed).toBe(plan.stats.duplicates);
  });

  test("timestamps strictly increase per car; late parts come after the window, timely ones well inside", () => {
    const o = options({ cars: 500, seed: 9, ...CHAOS, rate: 400 });
    const { plan, sent } = dryRun(o);
    const last = new Map<number, number>();
    const first = new Map<number, number>();
    for (const s of [...sent].sort((a, b) => a.timestamp - b.timestamp || a.record.seq - b.record.seq)) {
      expect(s.timestamp).toBeGreaterThan(last.get(s.record.carIndex) ?? -Infinity);
      last.set(s.record.carIndex, s.timestamp);
      if (s.record.opensCar) first.set(s.record.carIndex, s.timestamp);
    }
    for (const s of sent) {
      const age = s.timestamp - first.get(s.record.carIndex)!;
      if (s.record.intent === "late") expect(age).toBeGreaterThanOrEqual(o.joinTimeoutMs + LATE_MARGIN_MS);
      if (s.record.intent === "part" || s.record.intent === "conflict") expect(age).toBeLessThanOrEqual(o.joinTimeoutMs - 1000);
    }
    // Pacing: 500 cars at 400 cars/s take about 1.25 s of (virtual) clock before the late parts.
    const timely = sent.filter((s) => s.record.intent !== "late").map((s) => s.timestamp);
    const span = Math.max(...timely) - Math.min(...timely);
    expect(span).toBeGreaterThan(1000);
    expect(span).toBeLessThan(1000 + o.joinTimeoutMs);
    expect(plan.stats.late).toBeGreaterThan(0);
  });

  test("a run too slow for the plan is refused", () => {
    // Each batch of 10 records takes 2 s: timely parts drift out of their windows.
    const o = options({ cars: 50, seed: 1, ...CHAOS });
    const plan = buildPlan(o);
    const sent = placeOnEmptyTopics(simulate(plan, 0, { batchSize: 10, msPerBatch: 2000 }), ROLE_TOPICS, 4);
    const problems = checkIntent(plan, sent, runModel(modelRecordsOf(sent), o));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.some((p) => p.intent === "part" && p.detail.includes("timely parts must be within"))).toBe(true);
  });
});

describe("malformed records", () => {
  const o = options({ cars: 600, seed: 21, malformedRate: 1 });
  const plan = buildPlan(o);
  const bad = plan.records.filter((r) => r.intent === "malformed");
  const parse = (v: Uint8Array) => JSON.parse(new TextDecoder().decode(v)) as Record<string, unknown>;

  test("every class appears, each record has a unique value", () => {
    const classes = new Set(bad.map((r) => r.malformed!.cls));
    expect([...classes].sort()).toEqual([...MALFORMED_CLASSES].sort());
    const values = new Set(bad.map((r) => Buffer.from(r.value).toString("base64")));
    expect(values.size).toBe(bad.length);
    // Each value carries its partId token, so it can be found by its bytes.
    for (const r of bad) expect(Buffer.from(r.value).includes(Buffer.from(`${r.carId}-X`))).toBe(true);
  });

  test("each is valid except for exactly its one defect", () => {
    for (const r of bad) {
      const m = r.malformed!;
      const kind = KIND_OF_ROLE[r.role];
      const v = validatePart(kind, r.value, o.maxPartBytes);
      expect({ defect: m.defect, cls: v.ok ? "valid" : v.cls }).toEqual({ defect: m.defect, cls: m.cls });
      expect(validatePart(kind, m.repaired.value, o.maxPartBytes).ok).toBe(true);
      switch (m.cls) {
        case "OVERSIZED": {
          expect(r.value.length).toBeGreaterThan(o.maxPartBytes);
          expect(validatePart(kind, r.value, Infinity).ok).toBe(true);
          const { padding: _p, ...rest } = parse(r.value);
          expect(rest).toEqual(parse(m.repaired.value));
          break;
        }
        case "MISSING_FIELD":
        case "WRONG_TYPE":
        case "BAD_VALUE": {
          const a = parse(r.value);
          const b = parse(m.repaired.value);
          const differing = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
          expect({ defect: m.defect, differing: differing.length }).toEqual({ defect: m.defect, differing: 1 });
          expect(differing[0]).not.toBe("carId");
          expect(r.key).toBe(r.carId);
          break;
        }
        case "NOT_JSON":
          expect(r.key).toBe(r.carId);
          break;
      }
    }
  });

  test("every other planned record is a valid part", () => {
    for (const r of buildPlan(options({ cars: 300, seed: 2, ...CHAOS })).records) {
      if (r.intent === "malformed") continue;
      expect(validatePart(KIND_OF_ROLE[r.role], r.value, o.maxPartBytes).ok).toBe(true);
    }
  });
});

describe("model: SPEC §4 rule by rule", () => {
  const RULES: ModelRules = { maxClockSkewMs: 60000, joinTimeoutMs: 5000, dedupRetentionMs: 60000, maxPartBytes: 65536 };
  const T0 = 1_700_000_000_000;
  let seq = 0;
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const rec = (
    role: InputRole,
    part: Record<string, unknown>,
    timestamp: number,
    key: string | null = part.carId as string,
    producedAt = timestamp,
  ): ModelRecord => ({
    seq: seq++,
    topic: ROLE_TOPICS[role],
    role,
    key,
    value: enc(part),
    timestamp,
    producedAt,
    partition: 0,
    offset: String(seq),
  });
  const body = (carId: string, id = "B") => ({ carId, partId: `${carId}-${id}`, sku: `BD-${id}`, color: "red", material: "ABS", weightKg: 1.25 });
  const engine = (carId: string, id = "E") => ({ carId, partId: `${carId}-${id}`, sku: `EN-${id}` });
  const remote = (carId: string, id = "R") => ({ carId, partId: `${carId}-${id}`, sku: `RC-${id}`, channelFrequency: "RF_27" });
  const wheel = (carId: string, placement: string, id = placement) => ({ carId, partId: `${carId}-${id}`, sku: "WH-0001", placement });
  const PLACEMENTS = ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"];
  /** The seven parts of a car, 10 ms apart from t. */
  const fullCar = (carId: string, t: number): ModelRecord[] => [
    rec("body", body(carId), t),
    rec("engine", engine(carId), t + 10),
    rec("remoteControl", remote(carId), t + 20),
    ...PLACEMENTS.map((p, i) => rec("wheel", wheel(carId, p), t + 30 + 10 * i)),
  ];

  test("a complete car is emitted at its 7th part with the catalog total", () => {
    const records = fullCar("c1", T0);
    const m = runModel(records, RULES);
    expect(m.cars).toHaveLength(1);
    const car = m.cars[0]!;
    expect(car.situation).toBe("COMPLETED");
    expect(car.missing).toEqual([]);
    expect(car.emittedAt).toBe(T0 + 60);
    expect(car.firstPartAt).toBe(T0);
    const skus = records.map((r) => JSON.parse(new TextDecoder().decode(r.value!)).sku as string);
    expect(car.totalCents).toBe(skus.reduce((s, k) => s + catalogPriceCents(k), 0));
    expect(m.deadLetters).toEqual([]);
  });

  test("the window ends at exactly JOIN_TIMEOUT_MS: a part at that instant is not joined, it opens a new window", () => {
    const m = runModel([rec("body", body("c2"), T0), rec("engine", engine("c2"), T0 + 4999), rec("remoteControl", remote("c2"), T0 + 5000)], RULES);
    expect(m.cars.map((c) => [c.situation, c.missing, c.partIds, c.firstPartAt])).toEqual([
      ["MISSING_REMOTE_CONTROL", ["REMOTE_CONTROL", "WHEELS"], ["c2-B", "c2-E"], T0],
      ["MISSING_BODY", ["BODY", "ENGINE", "WHEELS"], ["c2-R"], T0 + 5000],
    ]);
    expect(m.cars[0]!.emittedAt).toBe(T0 + 5000);
  });

  test("a late part opens a new window that ends incomplete; order of the input does not matter, timestamps do", () => {
    const records = fullCar("c3", T0);
    const late = records.pop()!;
    late.timestamp = T0 + 5000 + 1500;
    const m = runModel([late, ...records.reverse()], RULES);
    expect(m.cars.map((c) => [c.situation, c.partIds.length, c.firstPartAt])).toEqual([
      ["MISSING_WHEELS", 6, T0],
      ["MISSING_BODY", 1, T0 + 6500],
    ]);
    expect(m.cars[1]!.missing).toEqual(["BODY", "ENGINE", "REMOTE_CONTROL", "WHEELS"]);
  });

  test("a duplicate is absorbed while the car is open and after it was emitted, until the retention ends", () => {
    const records = fullCar("c4", T0);
    // Redeliveries: the same records, written again later.
    const whileOpen = { ...records[1]!, seq: seq++, timestamp: T0 + 15, producedAt: T0 + 15 };
    const afterEmit = { ...records[0]!, seq: seq++, timestamp: T0 + 30_000, producedAt: T0 + 30_000 };
    const afterRetention = { ...records[2]!, seq: seq++, timestamp: T0 + 60 + 60_000, producedAt: T0 + 60 + 60_000 };
    const m = runModel([...records, whileOpen, afterEmit, afterRetention], RULES);
    expect(m.absorbed).toBe(2);
    expect(m.fates.get(whileOpen.seq)).toMatchObject({ kind: "absorbed", whileOpen: true });
    expect(m.fates.get(afterEmit.seq)).toMatchObject({ kind: "absorbed", whileOpen: false, sinceEmittedMs: 30_000 - 60 });
    // Forgotten after DEDUP_RETENTION_MS: the part opens a car of its own.
    expect(m.cars.map((c) => [c.situation, c.partIds])).toEqual([
      ["COMPLETED", records.map((r) => JSON.parse(new TextDecoder().decode(r.value!)).partId).sort()],
      ["MISSING_BODY", ["c4-R"]],
    ]);
    expect(m.deadLetters).toEqual([]);
  });

  test("a second body or a second wheel for a filled placement while open is a CONFLICT; the car keeps the first", () => {
    const records = fullCar("c5", T0);
    const secondBody = rec("body", body("c5", "B2"), T0 + 5);
    const secondWheel = rec("wheel", wheel("c5", "FRONT_LEFT", "FL2"), T0 + 35);
    const m = runModel([...records, secondBody, secondWheel], RULES);
    expect(m.deadLetters.map((d) => [d.seq, d.cls])).toEqual([
      [secondBody.seq, "CONFLICT"],
      [secondWheel.seq, "CONFLICT"],
    ]);
    expect(m.cars).toHaveLength(1);
    expect(m.cars[0]!.situation).toBe("COMPLETED");
    expect(m.cars[0]!.parts.body!.partId).toBe("c5-B");
    expect(m.cars[0]!.parts.wheels.find((w) => w.placement === "FRONT_LEFT")!.partId).toBe("c5-FRONT_LEFT");
  });

  test("equal timestamps: a car's parts are taken in the engine's order (role, then source partition, then offset as a number), not as listed", () => {
    const at = (r: ModelRecord, partition: number, offset: string): ModelRecord => ({ ...r, partition, offset });
    const t = T0 + 50;
    // Listed (and numbered) the other way round from the engine's order each time.
    const flOnP2 = at(rec("wheel", wheel("c30", "FRONT_LEFT", "FL-p2"), t), 2, "3");
    const flOnP1 = at(rec("wheel", wheel("c30", "FRONT_LEFT", "FL-p1"), t), 1, "9");
    const frAt10 = at(rec("wheel", wheel("c30", "FRONT_RIGHT", "FR-o10"), t), 0, "10");
    const frAt9 = at(rec("wheel", wheel("c30", "FRONT_RIGHT", "FR-o9"), t), 0, "9");
    const rlOnP3 = at(rec("wheel", wheel("c30", "REAR_LEFT"), t), 3, "1");
    const rrOnP0 = at(rec("wheel", wheel("c30", "REAR_RIGHT"), t), 0, "11");
    // A second body stamped with the last wheels comes before them (body < wheel): it meets the
    // car still open, so it is a CONFLICT, not the first part of a new car.
    const secondBody = at(rec("body", body("c30", "B2"), t), 3, "0");
    const records = [
      at(rec("body", body("c30"), T0), 0, "0"),
      at(rec("engine", engine("c30"), T0 + 10), 0, "0"),
      at(rec("remoteControl", remote("c30"), T0 + 20), 0, "0"),
      flOnP2,
      flOnP1,
      frAt10,
      frAt9,
      rlOnP3,
      rrOnP0,
      secondBody,
    ];
    const judged = (m: ReturnType<typeof runModel>) => ({
      cars: m.cars.map((c): unknown[] => [c.situation, c.partIds, c.parts.wheels.map((w) => w.partId)]),
      deadLetters: m.deadLetters.map((d) => [JSON.parse(new TextDecoder().decode(d.value!)).partId, d.cls]),
    });
    const expected = {
      cars: [
        [
          "COMPLETED",
          ["c30-B", "c30-E", "c30-FL-p1", "c30-FR-o9", "c30-R", "c30-REAR_LEFT", "c30-REAR_RIGHT"],
          ["c30-FR-o9", "c30-REAR_RIGHT", "c30-FL-p1", "c30-REAR_LEFT"],
        ],
      ],
      deadLetters: [
        ["c30-B2", "CONFLICT"],
        ["c30-FL-p2", "CONFLICT"],
        ["c30-FR-o10", "CONFLICT"],
      ],
    };
    const judgedSorted = (m: ReturnType<typeof runModel>) => ({ ...judged(m), deadLetters: judged(m).deadLetters.sort() });
    expect(judgedSorted(runModel(records, RULES))).toEqual(expected);
    // The order the records are listed in (the engine's fetch order) changes nothing.
    expect(judgedSorted(runModel([...records].reverse(), RULES))).toEqual(expected);
    const shuffled = createRng(5).shuffle([...records]);
    expect(judgedSorted(runModel(shuffled, RULES))).toEqual(expected);
  });

  test("a different part after the car completed is no conflict: it opens a new window", () => {
    const records = fullCar("c6", T0);
    const extraBody = rec("body", body("c6", "B2"), T0 + 100);
    const m = runModel([...records, extraBody], RULES);
    expect(m.deadLetters).toEqual([]);
    expect(m.cars.map((c) => [c.situation, c.partIds, c.firstPartAt])).toEqual([
      ["COMPLETED", expect.any(Array), T0],
      ["MISSING_ENGINE", ["c6-B2"], T0 + 100],
    ]);
  });

  test("bad records become dead letters of their class and never join a car", () => {
    const m = runModel(
      [
        rec("body", body("c7"), T0),
        rec("wheel", { ...wheel("c7", "MIDDLE") }, T0 + 2),
        { ...rec("engine", engine("c7"), T0 + 3), value: new TextEncoder().encode("{not json") },
        rec("remoteControl", { carId: "c7", partId: "c7-R" }, T0 + 4),
      ],
      RULES,
    );
    expect(m.deadLetters.map((d) => d.cls)).toEqual(["BAD_VALUE", "NOT_JSON", "MISSING_FIELD"]);
    expect(m.cars.map((c) => c.partIds)).toEqual([["c7-B"]]);
  });

  test("a valid part is joined by its carId whatever its key: its partId, no key, another car's id", () => {
    const records = fullCar("c8", T0);
    records[1]!.key = "c8-E";
    records[2]!.key = null;
    records[3]!.key = "C8";
    records[4]!.key = "c9";
    const m = runModel(records, RULES);
    expect(m.deadLetters).toEqual([]);
    expect(m.cars.map((c) => [c.carId, c.situation, c.partIds.length])).toEqual([["c8", "COMPLETED", 7]]);
  });

  test("a part stamped more than MAX_CLOCK_SKEW_MS ahead of the clock it was written by is FUTURE_TIMESTAMP; at the limit it is valid", () => {
    const records = fullCar("c10", T0);
    const atLimit = records[1]!;
    atLimit.producedAt = atLimit.timestamp - RULES.maxClockSkewMs;
    const future = records[2]!;
    future.producedAt = future.timestamp;
    future.timestamp += 86_400_000;
    const m = runModel(records, RULES);
    expect(m.deadLetters.map((d) => [d.seq, d.cls, d.detail, d.timestamp])).toEqual([
      [future.seq, "FUTURE_TIMESTAMP", "stamped 86400000 ms ahead of the engine's clock (MAX_CLOCK_SKEW_MS=60000)", future.timestamp],
    ]);
    // The car is judged without it: it misses its remote control, its window ends on time.
    expect(m.cars.map((c) => [c.situation, c.partIds.length, c.firstPartAt, c.emittedAt])).toEqual([["MISSING_REMOTE_CONTROL", 6, T0, T0 + 5000]]);
  });

  test("a negative timestamp is BAD_TIMESTAMP, whatever the value", () => {
    const records = fullCar("c11", T0);
    records[6]!.timestamp = -1;
    records[5]!.timestamp = -1000;
    const m = runModel(records, RULES);
    expect(m.deadLetters.map((d) => [d.seq, d.cls])).toEqual([
      [records[5]!.seq, "BAD_TIMESTAMP"],
      [records[6]!.seq, "BAD_TIMESTAMP"],
    ]);
    expect(m.cars.map((c) => [c.situation, c.partIds.length, c.firstPartAt])).toEqual([["MISSING_WHEELS", 5, T0]]);
  });

  test("wrong clocks take no part in the event-time rules: they open, close and split no window", () => {
    // Without the two wrong-clock records the car completes; a model that let them count would
    // open the window at -1 (closing it before the body) or at +1 day (splitting nothing but
    // holding the car), or absorb/conflict the real remote control.
    const records = fullCar("c12", T0);
    const early = rec("remoteControl", remote("c12", "R"), -1);
    const late = rec("engine", engine("c12", "E"), T0 + 86_400_000, "c12", T0);
    const lateWheel = rec("wheel", wheel("c12", "FRONT_LEFT", "FL2"), T0 + 70_000, "c12", T0 + 5);
    const m = runModel([early, late, lateWheel, ...records], RULES);
    expect(m.cars.map((c) => [c.situation, c.partIds.length, c.firstPartAt, c.emittedAt])).toEqual([["COMPLETED", 7, T0, T0 + 60]]);
    expect(m.deadLetters.map((d) => d.cls)).toEqual(["BAD_TIMESTAMP", "FUTURE_TIMESTAMP", "FUTURE_TIMESTAMP"]);
    expect(m.absorbed).toBe(0);
    // The same records without the wrong clocks give the same cars.
    expect(runModel(records, RULES).cars.map((c) => c.partIds)).toEqual(m.cars.map((c) => c.partIds));
  });
});

describe("wrong producer clocks (FUTURE_STAMPED, BAD_TIMESTAMP)", () => {
  const o = options({ cars: 400, seed: 31, ...CHAOS, futureStamped: 7, badTimestamp: 5 });
  const run = dryRun(o);
  const wrong = run.sent.filter((s) => s.record.clock !== undefined);
  const carsOf = (m: Manifest) => m.cars.map((c) => `${c.carId} ${c.situation} ${c.partIds.join(",")}`).sort();

  test("N parts on N distinct cars, each exactly one dead letter of its class; the run is as planned", () => {
    expect(checkIntent(run.plan, run.sent, run.model)).toEqual([]);
    expect(run.manifest.counts.futureStamped).toBe(7);
    expect(run.manifest.counts.badTimestamp).toBe(5);
    expect(run.manifest.counts.deadLettersByClass.FUTURE_TIMESTAMP).toBe(7);
    expect(run.manifest.counts.deadLettersByClass.BAD_TIMESTAMP).toBe(5);
    expect(new Set(wrong.map((s) => s.record.carIndex)).size).toBe(12);
    for (const s of wrong) {
      // Each is a valid part: only its timestamp is wrong.
      expect(validatePart(KIND_OF_ROLE[s.record.role], s.record.value, o.maxPartBytes).ok).toBe(true);
      const dl = run.manifest.deadLetters.filter((d) => d.valueBase64 === Buffer.from(s.record.value).toString("base64"));
      expect(dl.map((d) => [d.class, d.topic, d.partition, d.offset, d.timestamp])).toEqual([
        [s.record.intent === "futureStamped" ? "FUTURE_TIMESTAMP" : "BAD_TIMESTAMP", s.topic, s.partition, s.offset, s.timestamp],
      ]);
      if (s.record.intent === "futureStamped") expect(s.timestamp - s.sentAt).toBe(o.futureAheadMs);
      else expect(BAD_TIMESTAMPS).toContain(s.timestamp);
    }
    expect(new Set(wrong.filter((s) => s.timestamp < 0).map((s) => s.timestamp))).toEqual(new Set(BAD_TIMESTAMPS));
    // Spread over cars, and so over partitions.
    expect(new Set(wrong.map((s) => s.partition)).size).toBeGreaterThan(1);
    // startedAt/finishedAt span the run's real clock only.
    expect(run.manifest.startedAt).toBeGreaterThan(0);
    expect(run.manifest.finishedAt).toBeLessThan(Math.min(...wrong.filter((s) => s.timestamp > 0).map((s) => s.timestamp)));
  });

  test("the rest of each such car is judged without it; every other car is as in the same run without wrong clocks", () => {
    const without = runModel(modelRecordsOf(run.sent.filter((s) => s.record.clock === undefined)), o);
    expect(run.model.cars.map((c) => [c.carId, c.situation, c.partIds, c.firstPartAt])).toEqual(
      without.cars.map((c) => [c.carId, c.situation, c.partIds, c.firstPartAt]),
    );
    const plain = dryRun(options({ cars: 400, seed: 31, ...CHAOS }));
    const affected = new Set(wrong.map((s) => s.record.carId));
    const others = (m: Manifest) => carsOf(m).filter((c) => !affected.has(c.split(" ")[0]!));
    expect(others(run.manifest)).toEqual(others(plain.manifest));
    // Taking a slot away leaves those cars incomplete (unless the part was an extra one).
    const incomplete = run.manifest.cars.filter((c) => affected.has(c.carId) && c.situation !== "COMPLETED");
    expect(incomplete.length).toBeGreaterThan(0);
  });

  test("same seed and options give the same records; the options draw nothing from other cars' streams", () => {
    const strip = (p: ReturnType<typeof buildPlan>) =>
      p.records.map((r) => ({ ...r, value: Buffer.from(r.value).toString("base64"), malformed: r.malformed?.cls }));
    expect(strip(buildPlan(o))).toEqual(strip(run.plan));
    const affected = new Set(wrong.map((s) => s.record.carIndex));
    const plainRecords = strip(buildPlan(options({ cars: 400, seed: 31, ...CHAOS }))).filter((r) => !affected.has(r.carIndex));
    expect(
      strip(run.plan)
        .filter((r) => !affected.has(r.carIndex))
        .map(({ seq: _s, duplicateOf: _d, ...r }) => r),
    ).toEqual(plainRecords.map(({ seq: _s, duplicateOf: _d, ...r }) => r));
  });

  test("settings that cannot work are refused with one line naming them", () => {
    const base = { cars: 10, futureStamped: 6, badTimestamp: 5, futureAheadMs: 86_400_000, maxClockSkewMs: 60_000 };
    expect(() => checkGeneratorSettings(base)).toThrow(/^FUTURE_STAMPED=6 \+ BAD_TIMESTAMP=5 must be <= CARS=10/);
    expect(() => checkGeneratorSettings({ ...base, badTimestamp: 0, futureAheadMs: 100_000 })).toThrow(/^FUTURE_AHEAD_MS=100000 must be >= MAX_CLOCK_SKEW_MS/);
    expect(() => checkGeneratorSettings({ ...base, badTimestamp: 4 })).not.toThrow();
    expect(() => loadSettings(generatorSpec, { env: { KEY_BY: "carIdd" }, argv: [] })).toThrow(
      'KEY_BY="carIdd" is invalid: must be one of carId, partId, none, mixed',
    );
    // Enum settings ignore case and keep their canonical spelling (as LOG_LEVEL=DEBUG does).
    expect(loadSettings(generatorSpec, { env: { KEY_BY: "PARTID" }, argv: [] }).keyBy).toBe("partId");
    expect(loadSettings(generatorSpec, { env: {}, argv: ["--key-by", "partId", "--future-stamped", "3", "--bad-timestamp=2"] })).toMatchObject({
      keyBy: "partId",
      futureStamped: 3,
      badTimestamp: 2,
    });
  });
});

describe("keying (KEY_BY)", () => {
  const chaos = { cars: 300, seed: 41, ...CHAOS, malformedRate: 0.3 };
  const runs = Object.fromEntries((["carId", "partId", "none", "mixed"] as const).map((k) => [k, dryRun(options({ ...chaos, keyBy: k }))]));
  const partIdOf = (v: Uint8Array) => JSON.parse(new TextDecoder().decode(v)).partId as string;

  test("every record gets the asked key, malformed ones too (the partId they spoil); no KEY_MISMATCH anywhere", () => {
    for (const [keyBy, r] of Object.entries(runs)) {
      expect(checkIntent(r.plan, r.sent, r.model)).toEqual([]);
      expect(r.manifest.deadLetters.filter((d) => (d.class as string) === "KEY_MISMATCH")).toEqual([]);
      const malformedKeys = new Set<string>();
      for (const s of r.sent) {
        const rec = s.record;
        const partId = rec.intent === "malformed" ? `${rec.carId}-X` : partIdOf(rec.value);
        const want = rec.keying === "carId" ? rec.carId : rec.keying === "partId" ? partId : null;
        expect(rec.key).toBe(want);
        if (keyBy !== "mixed") expect(rec.keying).toBe(keyBy as "carId");
        if (rec.intent === "malformed") malformedKeys.add(rec.keying);
      }
      expect([...malformedKeys].sort()).toEqual(keyBy === "mixed" ? ["carId", "none", "partId"] : [keyBy]);
    }
    const k = runs.mixed!.manifest.counts.keying;
    for (const n of [k.carId, k.partId, k.none]) expect(n).toBeGreaterThan(runs.mixed!.sent.length / 5);
  });

  test("keyless records are spread over the partitions; keyed ones land by murmur2 of their key", () => {
    const none = runs.none!.sent.filter((s) => s.record.key === null);
    expect(none.length).toBeGreaterThan(1000);
    const perPartition = [0, 1, 2, 3].map((p) => none.filter((s) => s.partition === p).length);
    for (const n of perPartition) expect(n).toBeGreaterThan(none.length / 8);
    const pm = Array.from({ length: 4 }, (_, id) => ({ partitionErrorCode: 0, partitionId: id, leader: 0, replicas: [0], isr: [0] }));
    for (const s of runs.partId!.sent.slice(0, 500)) {
      expect(s.partition).toBe((javaMurmur2(new TextEncoder().encode(s.record.key!)) & 0x7fffffff) % 4);
      expect(Partitioners.DefaultPartitioner()({ topic: s.topic, partitionMetadata: pm, message: { key: s.record.key!, value: null } })).toBe(s.partition);
    }
  });

  test("the outcome is the same whatever the keying; only non-carId keying spreads a car over partitions", () => {
    const cars = (m: Manifest) => outcomes(m).cars;
    const dls = (m: Manifest) => outcomes(m).deadLetters.map(({ key: _k, ...d }) => d);
    for (const k of ["partId", "none", "mixed"]) {
      expect(cars(runs[k]!.manifest)).toEqual(cars(runs.carId!.manifest));
      expect(dls(runs[k]!.manifest)).toEqual(dls(runs.carId!.manifest));
      expect(runs[k]!.manifest.counts.carsSpanningPartitions).toBeGreaterThan(250);
    }
    expect(runs.carId!.manifest.counts.carsSpanningPartitions).toBe(0);
  });

  test("a dead letter keeps the key and coordinates of the record as the producer wrote it", () => {
    const r = runs.mixed!;
    const byValue = new Map(r.sent.map((s) => [Buffer.from(s.record.value).toString("base64"), s]));
    let nonCarIdKeys = 0;
    for (const d of r.manifest.deadLetters) {
      const s = byValue.get(d.valueBase64!)!;
      expect([d.topic, d.partition, d.offset, d.key]).toEqual([s.topic, s.partition, s.offset, s.record.key]);
      if (s.record.key !== s.record.carId) nonCarIdKeys++;
    }
    expect(nonCarIdKeys).toBeGreaterThan(0);
  });
});

// ---- against the real broker -------------------------------------------------------------

/** Java's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), written out independently. */
function javaMurmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ data.length;
  const n4 = data.length >> 2;
  for (let i = 0; i < n4; i++) {
    const j = i * 4;
    let k = data[j]! | (data[j + 1]! << 8) | (data[j + 2]! << 16) | (data[j + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const j = n4 * 4;
  const rest = data.length & 3;
  if (rest === 3) h ^= data[j + 2]! << 16;
  if (rest >= 2) h ^= data[j + 1]! << 8;
  if (rest >= 1) h = Math.imul(h ^ data[j]!, m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

test("the independent murmur2 matches Java's test vectors", () => {
  const vectors: Array<[string, number]> = [
    ["21", -973932308],
    ["foobar", -790332482],
    ["a-little-bit-long-string", -985981536],
    ["a-little-bit-longer-string", -1486304829],
    ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ["abc", 479470107],
  ];
  for (const [s, h] of vectors) expect([s, javaMurmur2(new TextEncoder().encode(s))]).toEqual([s, h]);
});

async function readInputs(kafka: Kafka, topics: string[], count: number, ms: number) {
  const consumer = kafka.consumer({ groupId: `gen-test-${crypto.randomUUID()}` });
  await consumer.connect();
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
  const got: Array<{ topic: string; partition: number; message: KafkaMessage }> = [];
  await consumer.run({ eachMessage: async ({ topic, partition, message }) => void got.push({ topic, partition, message }) });
  const deadline = Date.now() + ms;
  while (got.length < count && Date.now() < deadline) await Bun.sleep(50);
  await Bun.sleep(300);
  await consumer.disconnect();
  return got;
}

/** Reads the input topics back and checks every record against the manifest; returns what it read. */
async function checkAgainstLog(manifest: Manifest, settings: KafkaSettings, topics: Topics, window: { before: number; after: number }) {
  const kafka = createKafka(settings, "gen-test");
  const inputs = [topics.body, topics.engine, topics.remoteControl, topics.wheel];
  const got = await readInputs(kafka, inputs, manifest.counts.recordsSent, 30_000);
  const readAt = Date.now();
  expect(got.length).toBe(manifest.counts.recordsSent);

  const perTopic: Record<string, number> = {};
  for (const g of got) perTopic[g.topic] = (perTopic[g.topic] ?? 0) + 1;
  expect(perTopic).toEqual(manifest.counts.recordsByTopic);

  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: settings.inputPartitions }, (_, id) => ({
    partitionErrorCode: 0,
    partitionId: id,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));
  const dlAt = new Map(manifest.deadLetters.map((d) => [`${d.topic}/${d.partition}/${d.offset}`, d]));
  const roleOf: Record<string, InputRole> = {
    [topics.body]: "body",
    [topics.engine]: "engine",
    [topics.remoteControl]: "remoteControl",
    [topics.wheel]: "wheel",
  };
  const readBack: ModelRecord[] = [];
  const keyings = { carId: 0, partId: 0, none: 0 };
  for (const [i, g] of got.entries()) {
    const key = g.message.key === null ? null : g.message.key.toString();
    // A timestamp comes back as the decimal text the producer wrote, negative ones included.
    const ts = Number(g.message.timestamp);
    expect(String(ts)).toBe(g.message.timestamp);
    const dl = dlAt.get(`${g.topic}/${g.partition}/${g.message.offset}`);
    if (dl?.class === "FUTURE_TIMESTAMP" || dl?.class === "BAD_TIMESTAMP") {
      expect(ts).toBe(dl.timestamp);
      if (dl.class === "FUTURE_TIMESTAMP") expect(ts - readAt).toBeGreaterThan(manifest.options.futureAheadMs - 60_000);
      else expect(ts).toBeLessThan(0);
    } else {
      expect(ts).toBeGreaterThanOrEqual(window.before);
      expect(ts).toBeLessThanOrEqual(window.after);
      expect(ts).toBeGreaterThanOrEqual(manifest.startedAt);
      expect(ts).toBeLessThanOrEqual(manifest.finishedAt);
    }
    if (dl) {
      // The manifest's source coordinates point at exactly this record.
      expect(g.message.value!.toString("base64")).toBe(dl.valueBase64!);
      expect(key).toBe(dl.key);
    }
    const value = g.message.value === null ? undefined : tryJson(g.message.value);
    if (key !== null) {
      const expected = (javaMurmur2(new TextEncoder().encode(key)) & 0x7fffffff) % settings.inputPartitions;
      expect(g.partition).toBe(expected);
      expect(partitioner({ topic: g.topic, partitionMetadata, message: { key, value: null } })).toBe(expected);
      if (value?.carId === key || /^car-\d+-\d+$/.test(key)) keyings.carId++;
      else {
        // A malformed record is keyed by the partId it spoils, which its value may not show.
        if (dl && (MALFORMED_CLASSES as readonly string[]).includes(dl.class)) expect(key).toMatch(/^car-\d+-\d+-X$/);
        else expect(key).toBe(value?.partId as string);
        keyings.partId++;
      }
    } else {
      keyings.none++;
    }
    // The reader's clock stands in for the engine's: it read the record after it was written.
    readBack.push({
      seq: i,
      topic: g.topic,
      role: roleOf[g.topic]!,
      key,
      value: g.message.value,
      timestamp: ts,
      producedAt: readAt,
      partition: g.partition,
      offset: g.message.offset,
    });
  }
  expect(keyings).toEqual(manifest.counts.keying);
  expect(got.filter((g) => dlAt.has(`${g.topic}/${g.partition}/${g.message.offset}`)).length).toBe(manifest.counts.deadLetters);

  // The manifest follows from the log alone: the model over the records read back agrees.
  const again = runModel(readBack, manifest.options);
  expect(again.cars.map((c) => [c.carId, c.situation, c.partIds, c.firstPartAt, c.totalCents])).toEqual(
    manifest.cars.map((c) => [c.carId, c.situation, c.partIds, c.firstPartAt, c.totalCents]),
  );
  const where = (d: { topic: string; partition: number; offset: string }) => `${d.topic}/${d.partition}/${d.offset.padStart(12, "0")}`;
  expect(again.deadLetters.map((d) => `${where(d)} ${d.cls}`).sort()).toEqual(manifest.deadLetters.map((d) => `${where(d)} ${d.class}`).sort());
  expect(again.absorbed).toBe(manifest.counts.absorbed);
  return got;
}

function tryJson(v: Buffer): Record<string, unknown> | undefined {
  try {
    return JSON.parse(v.toString()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

test("against the broker: the records on the input topics are exactly what the manifest describes", async () => {
  const { settings, topics } = await freshTopics("gen");
  const before = Date.now();
  const manifest = await generate({ cars: 200, seed: 77, ...CHAOS, batchSize: 150 }, settings);
  const after = Date.now();
  expect(manifest.counts.late).toBeGreaterThan(0);
  expect(manifest.counts.malformed).toBeGreaterThan(0);
  // A run with late parts lasts past the join timeout.
  expect(after - before).toBeGreaterThanOrEqual(5000 + LATE_MARGIN_MS);
  const got = await checkAgainstLog(manifest, settings, topics, { before, after });
  // Keyed by carId: every record's key is its car's id.
  for (const g of got) expect(g.message.key?.toString()).toMatch(/^car-77-\d+$/);
}, 60_000);

test("against the broker: mixed keys and wrong clocks on unguarded topics are exactly what the manifest describes", async () => {
  const { settings, topics } = await freshTopics("genclk", {}, { timestampGuard: false });
  const before = Date.now();
  const manifest = await generate({ cars: 200, seed: 78, ...CHAOS, keyBy: "mixed", futureStamped: 4, badTimestamp: 3, batchSize: 150 }, settings);
  const after = Date.now();
  expect(manifest.counts.deadLettersByClass).toMatchObject({ FUTURE_TIMESTAMP: 4, BAD_TIMESTAMP: 3 });
  expect(manifest.counts.carsSpanningPartitions).toBeGreaterThan(100);
  for (const k of ["carId", "partId", "none"] as const) expect(manifest.counts.keying[k]).toBeGreaterThan(100);
  const got = await checkAgainstLog(manifest, settings, topics, { before, after });
  expect(got.filter((g) => g.message.timestamp === "-1").length).toBeGreaterThan(0);
}, 60_000);

test("against the broker: input topics the project creates refuse a record stamped an hour ahead; unguarded ones take it", async () => {
  const guarded = await freshTopics("guard");
  const open = await freshTopics("noguard", {}, { timestampGuard: false });
  const kafka = createKafka(guarded.settings, "gen-test-guard", { quiet: true });
  const admin = kafka.admin();
  await admin.connect();
  // INVALID_TIMESTAMP is not retriable: the refusal surfaces at once.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const guardOf = async (topic: string) => {
      const res = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [TIMESTAMP_GUARD] }],
        includeSynonyms: false,
      });
      return res.resources[0]!.configEntries[0]!.configValue;
    };
    expect(await guardOf(guarded.topics.wheel)).toBe("60000");
    expect(await guardOf(open.topics.wheel)).not.toBe("60000");
    const hourAhead = String(Date.now() + 3_600_000);
    const send = (topic: string, timestamp: string) =>
      producer.send({ topic, acks: -1, messages: [{ key: "car-1", value: `{"at":${timestamp}}`, timestamp }] });
    const refused = await send(guarded.topics.wheel, hourAhead).then(
      () => undefined,
      (e: Error & { type?: string }) => e,
    );
    expect(refused?.type ?? refused?.message).toMatch(/INVALID_TIMESTAMP|out of acceptable range/);
    // Output topics carry no guard: the engine writes cars with the parts' own times.
    expect(await guardOf(guarded.topics.completed)).not.toBe("60000");
    expect((await send(open.topics.wheel, hourAhead))[0]!.errorCode).toBe(0);
    // The guard bounds only the future: a negative timestamp passes it, so the engine must catch it.
    expect((await send(guarded.topics.wheel, "-1"))[0]!.errorCode).toBe(0);
    const got = await readInputs(kafka, [open.topics.wheel, guarded.topics.wheel], 2, 20_000);
    expect(got.map((g) => [g.topic, g.message.timestamp]).sort()).toEqual(
      [
        [open.topics.wheel, hourAhead],
        [guarded.topics.wheel, "-1"],
      ].sort(),
    );
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
}, 60_000);

test("against the broker: FUTURE_STAMPED on guarded topics is refused before anything is sent", async () => {
  const { settings, topics } = await freshTopics("genguard");
  const err = await generate({ cars: 20, seed: 79, futureStamped: 1 }, settings).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  expect(err!.message).toContain(`${TIMESTAMP_GUARD}=60000`);
  const kafka = createKafka(settings, "gen-test-guard-offsets");
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of [topics.body, topics.engine, topics.remoteControl, topics.wheel]) {
      // A topic just created may briefly answer NOT_LEADER_FOR_PARTITION.
      let offsets: Array<{ high: string }> = [];
      for (let attempt = 0; ; attempt++) {
        try {
          offsets = await admin.fetchTopicOffsets(topic);
          break;
        } catch (e) {
          if (attempt >= 20) throw e;
          await Bun.sleep(250);
        }
      }
      expect(offsets.map((o) => o.high)).toEqual(offsets.map(() => "0"));
    }
  } finally {
    await admin.disconnect();
  }
}, 60_000);
