// The price API failing, hanging, and slow enough to fill the waiting set.
import { afterEach, describe, expect, test } from "bun:test";
import type { Car } from "../src/domain.ts";
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

  test("backpressure: API hanging while input keeps coming → waiting set stays at its bound, memory bounded, nothing lost once the API recovers", async () => {
    const bound = 300;
    const s = (current = await stack("backpressure", {
      api: { hangRate: 1, maxConcurrency: 5 },
      engineEnv: { PRICE_MAX_WAITING_CARS: String(bound), PRICE_DEADLINE_MS: "600000", PRICE_REQUEST_TIMEOUT_MS: "1000", PRICE_RETRY_MAX_MS: "300" },
    }));
    await s.engine.start();
    const generating = generate({ cars: 3000, seed: 54, rate: 600 }, s.kafka);
    let maxWaiting = 0;
    let maxRss = 0;
    let finished = false;
    void generating.finally(() => (finished = true));
    // Sample while input flows and a little after: the last records fill the set up to its bound.
    let settle = 0;
    while (!finished || settle++ < 30) {
      const m = await s.engine.metrics();
      if (m) {
        maxWaiting = Math.max(maxWaiting, m.waiting);
        maxRss = Math.max(maxRss, m.rssBytes);
      }
      await Bun.sleep(100);
    }
    const manifest = await generating;
    // The waiting set filled up and stayed at its bound; the engine stopped reading input.
    expect(maxWaiting).toBe(bound);
    const beforeRecovery = await s.engine.metrics();
    expect(beforeRecovery!.recordsIn).toBeLessThan(manifest.counts.recordsSent);
    expect(maxRss).toBeLessThan(500 * 1024 * 1024);
    s.api.reconfigure({ hangRate: 0, delayMinMs: 0, delayMaxMs: 20 });
    expect(await engineCaughtUp(s.engine, manifest, 120_000)).toBe(true);
    const report = await verifyOutputs(s.kafka, manifest);
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
  }, 300_000);
});
