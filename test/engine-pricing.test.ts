// The price API failing, hanging, and slow enough to fill the waiting set.
import { afterEach, describe, expect, test } from "bun:test";
import type { Car } from "../src/domain.ts";
import type { StatusSnapshot } from "../src/engine/status.ts";
import { readOutputs } from "../src/verify/reader.ts";
import { engineCaughtUp, generate, stack, until, verifyOutputs, type Stack } from "./support/stack.ts";

let current: Stack | undefined;
afterEach(async () => {
  await current?.engine.kill9();
  await current?.api.stop();
  current = undefined;
});

async function failedPriceErrors(s: Stack): Promise<string[]> {
  const read = await readOutputs(s.kafka, [s.topics.incomplete], { quietMs: 1500, timeoutMs: 30_000 });
  return read.records
    .map((r) => JSON.parse(Buffer.from(r.value!).toString()) as Car)
    .filter((c) => c.situation === "FAILED_GET_PRICE")
    .map((c) => c.error ?? "");
}

/** How many input topic-partitions the engine reports paused for want of room. */
async function pausedForRoom(s: Stack): Promise<number> {
  const status = (await (await fetch(`${s.engine.url}/status.json`)).json()) as StatusSnapshot;
  return status.partitions.reduce((n, p) => n + p.paused.filter((x) => x.reason === "no_room").length, 0);
}

/** The most distinct cars with a part stamped at one millisecond in one input partition (what one timestamp can complete). */
async function mostCarsAtOneMillisecond(s: Stack): Promise<number> {
  const t = s.topics;
  const read = await readOutputs(s.kafka, [t.body, t.engine, t.remoteControl, t.wheel], { quietMs: 1500, timeoutMs: 30_000 });
  const cars = new Map<string, Set<string>>();
  for (const r of read.records) {
    const carId = r.key ?? "";
    const at = `${r.partition}@${r.timestamp}`;
    cars.set(at, (cars.get(at) ?? new Set()).add(carId));
  }
  return Math.max(...[...cars.values()].map((c) => c.size));
}

describe("engine: price API outages", () => {
  test("API down (FAIL_RATE 1) for a stretch: waiting cars end FAILED_GET_PRICE with the reason after their deadline; later cars complete", async () => {
    const s = (current = await stack("api-down", {
      api: { delayMinMs: 0, delayMaxMs: 20, failRate: 1 },
      engineEnv: { PRICE_DEADLINE_MS: "3000", PRICE_RETRY_BASE_MS: "50", PRICE_RETRY_MAX_MS: "400" },
    }));
    await s.engine.start();
    const during = await generate({ cars: 100, seed: 51, missingEngine: 0.05 }, s.kafka);
    // Every complete car of the first batch must fail (the API answers 503 all along its deadline).
    const completeDuring = during.cars.filter((c) => c.situation === "COMPLETED").length;
    expect(await until(async () => ((await s.engine.metrics())?.carsOut.FAILED_GET_PRICE ?? 0) >= completeDuring, 30_000, 200)).toBe(true);
    s.api.reconfigure({ failRate: 0 });
    const after = await generate({ cars: 100, seed: 52, missingEngine: 0.05 }, s.kafka);
    expect(
      await engineCaughtUp(s.engine, { ...after, cars: [...during.cars, ...after.cars], deadLetters: [...during.deadLetters, ...after.deadLetters] }, 60_000),
    ).toBe(true);

    // The first batch: nothing lost or doubled, complete cars failed on price with the reason.
    const first = await verifyOutputs(
      s.kafka,
      { ...during, cars: [...during.cars, ...after.cars], deadLetters: [...during.deadLetters, ...after.deadLetters] },
      { allowFailedPrice: true },
    );
    expect(first.problems).toEqual({});
    expect(first.failedPrice).toBe(completeDuring);
    const errors = await failedPriceErrors(s);
    expect(errors.length).toBe(completeDuring);
    for (const e of errors) expect(e).toContain("HTTP 503");
    // Cars that arrived after the API recovered were priced.
    const m = await s.engine.metrics();
    expect(m!.carsOut.COMPLETED).toBe(after.cars.filter((c) => c.situation === "COMPLETED").length);
  }, 180_000);

  test("API hanging (HANG_RATE 1): cars end FAILED_GET_PRICE with a timeout reason, in-flight never above the cap", async () => {
    const s = (current = await stack("api-hang", {
      api: { hangRate: 1, maxConcurrency: 5 },
      engineEnv: { PRICE_DEADLINE_MS: "2500", PRICE_REQUEST_TIMEOUT_MS: "400", PRICE_RETRY_BASE_MS: "50", PRICE_RETRY_MAX_MS: "200" },
    }));
    await s.engine.start();
    // A small catalog, so every SKU's request is tried (and times out) well within the deadline.
    const manifest = await generate({ cars: 60, seed: 53, missingWheels: 0.1, skus: 3 }, s.kafka);
    expect(await engineCaughtUp(s.engine, manifest, 60_000)).toBe(true);
    const report = await verifyOutputs(s.kafka, manifest, { allowFailedPrice: true });
    expect(report.problems).toEqual({});
    const complete = manifest.cars.filter((c) => c.situation === "COMPLETED").length;
    expect(report.failedPrice).toBe(complete);
    const errors = await failedPriceErrors(s);
    expect(errors.length).toBe(complete);
    for (const e of errors) expect(e).toMatch(/timeout after 400 ms/);
    const stats = s.api.stats();
    expect(stats.hung).toBeGreaterThan(0);
    expect(stats.maxConcurrencySeen).toBeLessThanOrEqual(5);
    expect(stats.rejected).toBe(0);
  }, 180_000);

  test("backpressure: API hanging while input keeps coming → the waiting set fills to its bound (to a timestamp's cars), the engine stops reading, memory bounded, nothing lost once the API recovers", async () => {
    const bound = 300;
    const s = (current = await stack("backpressure", {
      api: { hangRate: 1, maxConcurrency: 5 },
      engineEnv: { PRICE_MAX_WAITING_CARS: String(bound), PRICE_DEADLINE_MS: "600000", PRICE_REQUEST_TIMEOUT_MS: "1000", PRICE_RETRY_MAX_MS: "300" },
    }));
    await s.engine.start();
    let maxWaiting = 0;
    let maxRss = 0;
    const sample = async () => {
      const m = await s.engine.metrics();
      if (m) {
        maxWaiting = Math.max(maxWaiting, m.waiting);
        maxRss = Math.max(maxRss, m.rssBytes);
      }
      return m;
    };
    // More than the bound's worth of cars, then until every input topic-partition is paused for
    // want of room. How fast that comes depends on the machine, so the second batch is sent
    // after it: input keeps coming while the engine has no room, whatever the timing.
    const first = await generate({ cars: 1500, seed: 54, rate: 600 }, s.kafka);
    const owned = (await s.engine.status())!.partitions.length;
    expect(owned).toBeGreaterThan(0);
    const noRoomEverywhere = async () => {
      await sample();
      return (await pausedForRoom(s)) === 4 * owned;
    };
    expect(await until(noRoomEverywhere, 60_000)).toBe(true);
    const full = (await sample())!;
    const generating = generate({ cars: 1500, seed: 55, rate: 600 }, s.kafka);
    let finished = false;
    void generating.finally(() => (finished = true));
    let settle = 0;
    while (!finished || settle++ < 20) {
      await sample();
      await Bun.sleep(100);
    }
    const second = await generating;
    const beforeRecovery = (await sample())!;
    // Never over the bound; short of it by less than the cars one millisecond can complete (the
    // join's safe time moves by whole timestamps, and producers stamp a batch alike); no car
    // joined and (but for fetches in flight when the pause came) nothing read meanwhile.
    expect(maxWaiting).toBeLessThanOrEqual(bound);
    expect(beforeRecovery.waiting).toBe(full.waiting);
    expect(bound - full.waiting).toBeLessThan(await mostCarsAtOneMillisecond(s));
    expect(beforeRecovery.recordsIn - full.recordsIn).toBeLessThan(second.counts.recordsSent / 10);
    expect(maxRss).toBeLessThan(500 * 1024 * 1024);
    s.api.reconfigure({ hangRate: 0, delayMinMs: 0, delayMaxMs: 20 });
    const manifest = { ...second, cars: [...first.cars, ...second.cars], deadLetters: [...first.deadLetters, ...second.deadLetters] };
    expect(await engineCaughtUp(s.engine, manifest, 120_000)).toBe(true);
    const report = await verifyOutputs(s.kafka, manifest);
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
  }, 300_000);

  test("backpressure through faults: SIGKILLed while paused for room, and again before the restart is ready → the engine pauses for room again, stays within its bound, and once the API recovers every car is exact", async () => {
    const bound = 300;
    const s = (current = await stack("backpressure-kill", {
      api: { hangRate: 1, maxConcurrency: 5 },
      engineEnv: { PRICE_MAX_WAITING_CARS: String(bound), PRICE_DEADLINE_MS: "600000", PRICE_REQUEST_TIMEOUT_MS: "1000", PRICE_RETRY_MAX_MS: "300" },
    }));
    await s.engine.start();
    const owned = (await s.engine.status())!.partitions.length;
    expect(owned).toBeGreaterThan(0);
    let maxWaiting = 0;
    const noRoomEverywhere = async () => {
      maxWaiting = Math.max(maxWaiting, (await s.engine.metrics())?.waiting ?? 0);
      return (await pausedForRoom(s)) === 4 * owned;
    };
    const first = await generate({ cars: 1500, seed: 56, rate: 600 }, s.kafka);
    expect(await until(noRoomEverywhere, 60_000)).toBe(true);
    // Killed while it has no room; the second batch comes during the restarts, and the first
    // restart is killed too while it is not ready yet (taking its partitions or restoring).
    await s.engine.kill9();
    const generating = generate({ cars: 1500, seed: 57, rate: 600 }, s.kafka);
    await s.engine.spawn();
    expect(await until(async () => (await s.engine.status())?.ready === false, 30_000, 20)).toBe(true);
    await s.engine.kill9();
    await s.engine.start();
    const second = await generating;
    // Not stalled, not over: it fills and pauses again, and has not read the whole second batch.
    expect(await until(noRoomEverywhere, 60_000)).toBe(true);
    const paused = (await s.engine.metrics())!;
    expect(maxWaiting).toBeLessThanOrEqual(bound);
    expect(paused.recordsIn).toBeLessThan(second.counts.recordsSent);
    s.api.reconfigure({ hangRate: 0, delayMinMs: 0, delayMaxMs: 20 });
    const manifest = { ...second, cars: [...first.cars, ...second.cars], deadLetters: [...first.deadLetters, ...second.deadLetters] };
    const report = await verifyOutputs(s.kafka, manifest, { timeoutMs: 180_000 });
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
  }, 300_000);
});
