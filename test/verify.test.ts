// The verifier must accept exactly the right outputs: a correct output set passes, and each
// kind of engine mistake makes it fail with that specific problem. The end-to-end case reads
// real topics, read_committed, so aborted transactions stay invisible.
import { describe, expect, test } from "bun:test";
import { kafkaSpec, loadSettings, topicsOf, type Topics } from "../src/config.ts";
import type { InputRole } from "../src/domain.ts";
import { createKafka, murmur2Partitioner } from "../src/kafka.ts";
import { generatorDefaults, planOptionsOf } from "../src/generate/index.ts";
import { buildManifest, modelRecordsOf, type Manifest } from "../src/generate/manifest.ts";
import { runModel } from "../src/generate/model.ts";
import { placeOnEmptyTopics } from "../src/generate/placement.ts";
import { buildPlan, type PlanOptions } from "../src/generate/plan.ts";
import { referenceOutputs, type OutputRecord } from "../src/generate/reference-output.ts";
import { simulate } from "../src/generate/schedule.ts";
import { compare, type FoundRecord, type ProblemKind, type Report } from "../src/verify/compare.ts";
import { verify } from "../src/verify/index.ts";
import { formatReport } from "../src/verify/report.ts";
import { freshTopics } from "./support/kafka.ts";

const CHAOS = {
  lateRate: 0.1,
  dupRate: 0.1,
  conflictRate: 0.1,
  malformedRate: 0.1,
  missingBody: 0.05,
  missingEngine: 0.05,
  missingRemote: 0.05,
  missingWheels: 0.1,
  extraFieldRate: 0.3,
};

/** A manifest and the outputs a correct engine writes for it, without Kafka. */
function scenario(topics: Topics, cars = 120, seed = 4, extra: Partial<PlanOptions> = {}) {
  const o = { ...planOptionsOf(generatorDefaults()), cars, seed, ...CHAOS, ...extra };
  const plan = buildPlan(o);
  const roles: Record<InputRole, string> = { body: topics.body, engine: topics.engine, remoteControl: topics.remoteControl, wheel: topics.wheel };
  const sent = placeOnEmptyTopics(simulate(plan, 1_700_000_000_000), roles, 4);
  const model = runModel(modelRecordsOf(sent), o);
  const manifest = buildManifest(plan, sent, model, topics);
  return { manifest, outputs: referenceOutputs(model, topics) };
}

const dec = (v: Uint8Array) => JSON.parse(new TextDecoder().decode(v)) as Record<string, unknown>;
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const kinds = (r: Report) => Object.keys(r.problems).sort() as ProblemKind[];

describe("compare (pure)", () => {
  const topics = topicsOf(loadSettings(kafkaSpec, { env: {}, argv: [] }));
  const { manifest, outputs } = scenario(topics);
  const run = (found: FoundRecord[], allowFailedPrice = false) => compare(manifest, found, { allowFailedPrice });
  const index = (pred: (r: OutputRecord, v: Record<string, unknown>) => boolean) => outputs.findIndex((r) => pred(r, dec(r.value)));
  const completed = index((r) => r.topic === topics.completed);
  const incomplete = index((r, v) => r.topic === topics.incomplete && (v.missing as string[]).length >= 2);
  const dlq = index((r) => r.topic === topics.dlq);
  const withValue = (i: number, change: (v: Record<string, unknown>) => void): FoundRecord[] =>
    outputs.map((r, j) => {
      if (j !== i) return r;
      const v = dec(r.value);
      change(v);
      return { ...r, value: enc(v) };
    });

  test("the scenario has every kind of output", () => {
    expect(completed).toBeGreaterThanOrEqual(0);
    expect(incomplete).toBeGreaterThanOrEqual(0);
    expect(dlq).toBeGreaterThanOrEqual(0);
    expect(Object.keys(manifest.counts.deadLettersByClass).length).toBeGreaterThanOrEqual(5);
    expect(Object.keys(manifest.counts.bySituation).length).toBeGreaterThanOrEqual(4);
  });

  test("the correct output set is ok", () => {
    const r = run(outputs);
    expect(kinds(r)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.cars).toEqual({ expected: manifest.cars.length, found: manifest.cars.length });
    expect(formatReport(r)).toContain("OK");
  });

  test("a lost car", () => {
    const r = run(outputs.filter((_, i) => i !== completed));
    expect(r.ok).toBe(false);
    expect(kinds(r)).toEqual(["lostCar", "partIdNeverOutput"]);
    expect(r.problems.lostCar!.count).toBe(1);
    expect(r.problems.partIdNeverOutput!.count).toBe(7);
  });

  test("a duplicated car", () => {
    const r = run([...outputs, { ...outputs[incomplete]!, offset: "999999" }]);
    expect(kinds(r)).toEqual(["duplicateCar"]);
    expect(r.problems.duplicateCar!.count).toBe(1);
  });

  test("a mis-routed car", () => {
    const r = run(outputs.map((o, i) => (i === incomplete ? { ...o, topic: topics.completed } : o)));
    expect(kinds(r)).toEqual(["wrongTopic"]);
  });

  test("a wrong total", () => {
    const r = run(withValue(completed, (v) => (v.totalPrice = Math.round((v.totalPrice as number) * 100 + 1) / 100)));
    expect(kinds(r)).toEqual(["wrongTotal"]);
  });

  test("a total that is not a whole number of cents", () => {
    const r = run(withValue(completed, (v) => (v.totalPrice = (v.totalPrice as number) + 0.001)));
    expect(kinds(r)).toEqual(["wrongTotal"]);
  });

  test("a wrong price in the prices map", () => {
    const r = run(
      withValue(completed, (v) => {
        const prices = v.prices as Record<string, number>;
        const sku = Object.keys(prices)[0]!;
        prices[sku] = prices[sku]! + 1;
      }),
    );
    expect(kinds(r)).toEqual(["wrongPrices"]);
  });

  test("a wrong missing list", () => {
    const r = run(withValue(incomplete, (v) => (v.missing = (v.missing as string[]).slice(0, 1))));
    expect(kinds(r)).toEqual(["wrongMissing"]);
  });

  test("a wrong situation", () => {
    const r = run(withValue(incomplete, (v) => (v.situation = v.situation === "MISSING_WHEELS" ? "MISSING_BODY" : "MISSING_WHEELS")));
    expect(kinds(r)).toEqual(["wrongSituation"]);
  });

  test("a dropped extra field", () => {
    const withExtra = index((_, v) =>
      [v.body, v.engine, v.remoteControl, ...(v.wheels as unknown[])].some(
        (p) =>
          p && Object.keys(p as object).some((k) => !["carId", "partId", "sku", "color", "material", "weightKg", "channelFrequency", "placement"].includes(k)),
      ),
    );
    expect(withExtra).toBeGreaterThanOrEqual(0);
    const strip = (p: unknown) => {
      if (!p) return p;
      const { carId, partId, sku, color, material, weightKg, channelFrequency, placement } = p as Record<string, unknown>;
      return Object.fromEntries(
        Object.entries({ carId, partId, sku, color, material, weightKg, channelFrequency, placement }).filter(([, x]) => x !== undefined),
      );
    };
    const r = run(
      withValue(withExtra, (v) => {
        for (const k of ["body", "engine", "remoteControl"]) if (v[k]) v[k] = strip(v[k]);
        v.wheels = (v.wheels as unknown[]).map(strip);
      }),
    );
    expect(kinds(r)).toEqual(["wrongParts"]);
  });

  test("a part moved into another car", () => {
    // The engine joined a part into the wrong window: both cars are now unexpected.
    const a = index((r, v) => r.topic === topics.incomplete && (v.wheels as unknown[]).length >= 1 && (v.wheels as unknown[]).length < 4);
    const found = outputs.map((r) => ({ ...r }));
    const va = dec(found[a]!.value);
    const moved = (va.wheels as unknown[]).pop();
    found[a] = { ...found[a]!, value: enc(va) };
    const vc = dec(found[completed]!.value);
    (vc.wheels as unknown[]).push(moved);
    found[completed] = { ...found[completed]!, value: enc(vc) };
    const r = run(found);
    expect(r.ok).toBe(false);
    expect(kinds(r)).toContain("lostCar");
    expect(kinds(r)).toContain("unexpectedCar");
  });

  test("a missing dead letter", () => {
    const r = run(outputs.filter((_, i) => i !== dlq));
    expect(kinds(r)).toEqual(["lostDeadLetter"]);
  });

  test("a dead letter with the wrong class, source or key", () => {
    expect(kinds(run(withValue(dlq, (v) => (v.reason = `UNKNOWN: ${String(v.reason)}`))))).toEqual(["wrongDeadLetterClass"]);
    expect(
      kinds(run(withValue(dlq, (v) => (v.reason = String(v.reason).replace(/^[A-Z_]+:/, (c) => (c === "CONFLICT:" ? "BAD_VALUE:" : "CONFLICT:")))))),
    ).toEqual(["wrongDeadLetterClass"]);
    expect(kinds(run(withValue(dlq, (v) => (v.offset = String(Number(v.offset) + 1)))))).toEqual(["wrongDeadLetterSource"]);
    expect(kinds(run(withValue(dlq, (v) => (v.key = "someone-else"))))).toEqual(["wrongDeadLetterKey"]);
  });

  test("a dead letter whose value is not the original bytes", () => {
    const r = run(withValue(dlq, (v) => (v.value = Buffer.from(`${Buffer.from(String(v.value), "base64").toString("latin1")} `, "latin1").toString("base64"))));
    expect(kinds(r)).toEqual(["lostDeadLetter", "unexpectedDeadLetter"]);
  });

  test("FAILED_GET_PRICE instead of COMPLETED only passes with allowFailedPrice", () => {
    const found = outputs.map((r, i) => {
      if (i !== completed) return r;
      const { prices: _p, totalPrice: _t, pricedAt: _a, ...v } = dec(r.value);
      return { ...r, topic: topics.incomplete, value: enc({ ...v, situation: "FAILED_GET_PRICE", error: "HTTP 503 after 4 attempts" }) };
    });
    expect(kinds(run(found))).toEqual(["wrongSituation", "wrongTopic"]);
    const allowed = run(found, true);
    expect(kinds(allowed)).toEqual([]);
    expect(allowed.failedPrice).toBe(1);
    const noError = found.map((r, i) => (i === completed ? { ...r, value: enc({ ...dec(r.value), error: "" }) } : r));
    expect(kinds(run(noError, true))).toEqual(["failedPriceWithoutError"]);
  });

  test("an output record that is not a car", () => {
    const r = run([...outputs, { topic: topics.completed, partition: 0, offset: "1000000", key: "x", value: new TextEncoder().encode("oops") }]);
    expect(kinds(r)).toEqual(["badOutput"]);
  });
});

describe("compare (pure): wrong clocks and keys other than carId", () => {
  const topics = topicsOf(loadSettings(kafkaSpec, { env: {}, argv: [] }));
  const { manifest, outputs } = scenario(topics, 150, 9, { keyBy: "mixed", futureStamped: 4, badTimestamp: 3 });
  const run = (found: FoundRecord[]) => compare(manifest, found, { allowFailedPrice: false });
  const dlOf = (cls: string) => outputs.findIndex((r) => r.topic === topics.dlq && String(dec(r.value).reason).startsWith(`${cls}:`));
  const future = dlOf("FUTURE_TIMESTAMP");
  const bad = dlOf("BAD_TIMESTAMP");

  test("the scenario has both wrong-clock classes and dead letters keyed by something else than carId; correct outputs are ok", () => {
    expect(manifest.counts.deadLettersByClass).toMatchObject({ FUTURE_TIMESTAMP: 4, BAD_TIMESTAMP: 3 });
    expect(future).toBeGreaterThanOrEqual(0);
    expect(bad).toBeGreaterThanOrEqual(0);
    expect(manifest.deadLetters.some((d) => d.key === null)).toBe(true);
    expect(manifest.deadLetters.some((d) => d.key !== null && !/^car-\d+-\d+$/.test(d.key))).toBe(true);
    const r = run(outputs);
    expect(kinds(r)).toEqual([]);
    expect(r.deadLetterClasses.filter((c) => c.cls.endsWith("_TIMESTAMP"))).toEqual([
      { cls: "BAD_TIMESTAMP", expected: 3, found: 3 },
      { cls: "FUTURE_TIMESTAMP", expected: 4, found: 4 },
    ]);
  });

  test("a missing FUTURE_TIMESTAMP dead letter", () => {
    const r = run(outputs.filter((_, i) => i !== future));
    expect(kinds(r)).toEqual(["lostDeadLetter"]);
    expect(r.problems.lostDeadLetter!.examples[0]).toStartWith("FUTURE_TIMESTAMP from ");
  });

  test("a doubled FUTURE_TIMESTAMP dead letter", () => {
    const r = run([...outputs, { ...outputs[future]!, offset: "999999" }]);
    expect(kinds(r)).toEqual(["duplicateDeadLetter"]);
  });

  test("a missing or doubled BAD_TIMESTAMP dead letter", () => {
    expect(kinds(run(outputs.filter((_, i) => i !== bad)))).toEqual(["lostDeadLetter"]);
    expect(kinds(run([...outputs, { ...outputs[bad]!, offset: "999999" }]))).toEqual(["duplicateDeadLetter"]);
  });

  test("a future-stamped part dead-lettered under another class", () => {
    const found = outputs.map((r, i) => (i === future ? { ...r, value: enc({ ...dec(r.value), reason: "BAD_TIMESTAMP: timestamp is odd" }) } : r));
    expect(kinds(run(found))).toEqual(["wrongDeadLetterClass"]);
  });

  test("a future-stamped part joined into its car instead (the watermark bug of issue 9)", () => {
    const d = dec(outputs[future]!.value);
    const part = JSON.parse(Buffer.from(String(d.value), "base64").toString()) as Record<string, unknown>;
    const carAt = outputs.findIndex((r) => r.topic !== topics.dlq && dec(r.value).carId === part.carId);
    expect(carAt).toBeGreaterThanOrEqual(0);
    const car = dec(outputs[carAt]!.value);
    const field: Record<string, string> = { [topics.body]: "body", [topics.engine]: "engine", [topics.remoteControl]: "remoteControl" };
    if (d.topic === topics.wheel) (car.wheels as unknown[]).push(part);
    else car[field[String(d.topic)]!] = part;
    const found = outputs.filter((_, i) => i !== future).map((r) => (r === outputs[carAt] ? { ...r, value: enc(car) } : r));
    const r = run(found);
    expect(r.ok).toBe(false);
    for (const k of ["lostCar", "unexpectedCar", "lostDeadLetter"] as const) expect(kinds(r)).toContain(k);
  });

  test("a dead letter with the coordinates or key of a re-keyed copy instead of the record as written", () => {
    const rekeyed = outputs.findIndex((r) => {
      if (r.topic !== topics.dlq) return false;
      const v = dec(r.value);
      return v.key !== null && !/^car-\d+-\d+$/.test(String(v.key));
    });
    expect(rekeyed).toBeGreaterThanOrEqual(0);
    const copy = (change: (v: Record<string, unknown>) => void) =>
      outputs.map((r, i) => {
        if (i !== rekeyed) return r;
        const v = dec(r.value);
        change(v);
        return { ...r, value: enc(v) };
      });
    expect(kinds(run(copy((v) => (v.topic = `${String(v.topic)}-repartition`))))).toEqual(["wrongDeadLetterSource"]);
    const carId = (v: Record<string, unknown>) => String(JSON.parse(Buffer.from(String(v.value), "base64").toString()).carId);
    expect(kinds(run(copy((v) => (v.key = carId(v)))))).toEqual(["wrongDeadLetterKey"]);
  });
});

// ---- end to end through real topics --------------------------------------------------------

async function produceTransactionally(settings: Parameters<typeof createKafka>[0], records: readonly OutputRecord[], abort = false) {
  const kafka = createKafka(settings, "verify-test-writer");
  const producer = kafka.producer({
    transactionalId: `verify-test-${crypto.randomUUID()}`,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: murmur2Partitioner,
  });
  await producer.connect();
  try {
    const tx = await producer.transaction();
    const byTopic = new Map<string, OutputRecord[]>();
    for (const r of records) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
    await tx.sendBatch({
      topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list.map((r) => ({ key: r.key, value: Buffer.from(r.value) })) })),
    });
    if (abort) await tx.abort();
    else await tx.commit();
  } finally {
    await producer.disconnect();
  }
}

describe("verify against real topics", () => {
  test("committed correct outputs are ok; an aborted extra car is invisible; a committed duplicate is caught", async () => {
    const { settings, topics } = await freshTopics("verify");
    const { manifest, outputs } = scenario(topics, 60, 8);
    const cars = outputs.filter((r) => r.topic !== topics.dlq);
    const dls = outputs.filter((r) => r.topic === topics.dlq);
    await produceTransactionally(settings, cars.slice(0, 30));
    await produceTransactionally(settings, [...cars.slice(30), ...dls]);
    // An aborted transaction with a duplicate: a read_committed reader never sees it.
    await produceTransactionally(settings, [cars[0]!], true);

    const opts = { quietMs: 3000, earlyQuietMs: 500, timeoutMs: 30_000, allowFailedPrice: false };
    const first = await verify(manifest as Manifest, settings, opts);
    expect(formatReport(first.report)).toContain("OK");
    expect(first.report.ok).toBe(true);
    expect(first.read.caughtUp).toBe(true);
    expect(first.read.records).toBe(outputs.length);

    await produceTransactionally(settings, [cars[1]!]);
    const second = await verify(manifest, settings, opts);
    expect(second.report.ok).toBe(false);
    expect(kinds(second.report)).toEqual(["duplicateCar"]);
  }, 60_000);
});
