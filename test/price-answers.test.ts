// Every unusable answer shape of the mock price API's fault table, over real HTTP, through the
// pricing dispatcher's real fetch: each car needing a faulty SKU ends FAILED_GET_PRICE with a
// reason naming what was wrong, and a car of healthy SKUs alongside is priced exactly.
import { afterEach, describe, expect, test } from "bun:test";
import { loadSettings, priceApiSpec } from "../src/config.ts";
import { catalogPriceCents, type Car } from "../src/domain.ts";
import { PRICE_FAULTS, TRICKLE_BYTE_MS, type PriceFault } from "../src/price-api/faults.ts";
import { startPriceApi, type RunningPriceApi } from "../src/price-api/server.ts";
import { PricingDispatcher } from "../src/pricing/dispatcher.ts";

const REQUEST_TIMEOUT_MS = 500;

/** What the car's error must say for each shape. */
const EXPECTED: Record<PriceFault, RegExp> = {
  string: /price is a string/,
  nan: /body is not JSON: "\{\\"sku\\":\\"F-nan\\",\\"price\\":NaN\}"/,
  html: /body is not JSON: "<!doctype html>/,
  null: /price is null/,
  "no-price": /answer has no price/,
  "three-decimals": /price \d+\.\d{2}5 is not whole cents/,
  negative: /price -5 is negative/,
  huge: /price 1000000000000000000 is above PRICE_MAX_AMOUNT=100000/,
  "other-sku": /answer is for sku "F-other-sku-OTHER", not "F-other-sku"/,
  trickle: new RegExp(`timeout after ${REQUEST_TIMEOUT_MS} ms`),
  reset: /connection error: .*(ECONNRESET|closed unexpectedly)/i,
};

function carOf(carId: string, faultySku: string | undefined): Car {
  const placements = ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"] as const;
  return {
    carId,
    situation: "AWAITING_PRICE",
    missing: [],
    body: { carId, partId: `${carId}-B`, sku: faultySku ?? "BODY-OK", color: "red", material: "abs", weightKg: 1 },
    engine: { carId, partId: `${carId}-E`, sku: "ENGINE-OK" },
    remoteControl: { carId, partId: `${carId}-R`, sku: "REMOTE-OK", channelFrequency: "RF_27" },
    wheels: placements.map((placement, i) => ({ carId, partId: `${carId}-W${i}`, sku: "WHEEL-OK", placement })),
    firstPartAt: 0,
    assembledAt: 0,
  };
}

let api: RunningPriceApi | undefined;
let dispatcher: PricingDispatcher | undefined;
afterEach(async () => {
  await dispatcher?.stop();
  await api?.stop();
  api = dispatcher = undefined;
});

async function priceAll(cars: Car[], deadlineMs: number): Promise<Map<string, Car>> {
  const d = (dispatcher = new PricingDispatcher({
    baseUrl: api!.url,
    maxInFlight: 5,
    ratePerSecond: 1000,
    burst: 20,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    deadlineMs,
    cacheTtlMs: 0,
    retryBaseMs: 50,
    retryMaxMs: 200,
    maxWaitingCars: 100,
  }));
  const now = Date.now();
  for (const c of cars) d.add(c, now);
  const done = new Map<string, Car>();
  const until = Date.now() + deadlineMs + 10_000;
  while (done.size < cars.length && Date.now() < until) {
    for (const c of d.drainFinished()) {
      expect(done.has(c.carId)).toBe(false); // each car finishes once
      done.set(c.carId, c);
    }
    await Bun.sleep(20);
  }
  return done;
}

describe("price answers that are not prices, over real HTTP", () => {
  test("every fault shape ends FAILED_GET_PRICE naming the problem; healthy SKUs still price exactly", async () => {
    const faults = Object.fromEntries(PRICE_FAULTS.map((f) => [`F-${f}`, f]));
    const defaults = loadSettings(priceApiSpec, { env: {}, argv: [] });
    api = await startPriceApi({ ...defaults, port: 0, delayMinMs: 0, delayMaxMs: 0, maxConcurrency: 5, faults });
    const cars = [...PRICE_FAULTS.map((f) => carOf(`car-${f}`, `F-${f}`)), carOf("healthy", undefined)];
    const done = await priceAll(cars, 2500);
    expect(done.size).toBe(cars.length);
    for (const fault of PRICE_FAULTS) {
      const c = done.get(`car-${fault}`)!;
      expect({ fault, situation: c.situation }).toEqual({ fault, situation: "FAILED_GET_PRICE" });
      expect(c.error).toContain(`no price for F-${fault} within PRICE_DEADLINE_MS=2500`);
      expect({ fault, error: c.error }).toEqual({ fault, error: expect.stringMatching(EXPECTED[fault]) });
      // A bad body's reason says which SKU answered it; a timeout or reset is the transport's.
      if (fault !== "trickle" && fault !== "reset") expect(c.error).toContain(`F-${fault}: `);
      expect(c.totalPrice).toBeUndefined();
    }
    const healthy = done.get("healthy")!;
    expect(healthy.situation).toBe("COMPLETED");
    const cents = catalogPriceCents("BODY-OK") + catalogPriceCents("ENGINE-OK") + catalogPriceCents("REMOTE-OK") + 4 * catalogPriceCents("WHEEL-OK");
    expect(Math.round(healthy.totalPrice! * 100)).toBe(cents);
    // Every faulty SKU was asked (and retried), and the client kept to the cap throughout.
    const stats = api.stats();
    expect(stats.faulty).toBeGreaterThanOrEqual(2 * PRICE_FAULTS.length);
    expect(stats.rejected).toBe(0);
    expect(stats.maxConcurrencySeen).toBeLessThanOrEqual(5);
  }, 30_000);

  test("a trickled answer is a valid price when the client waits long enough: it is the timeout that fails it", async () => {
    const defaults = loadSettings(priceApiSpec, { env: {}, argv: [] });
    api = await startPriceApi({ ...defaults, port: 0, delayMinMs: 0, delayMaxMs: 0, faults: { S: "trickle" } });
    const t0 = performance.now();
    const body = await (await fetch(`${api.url}/price/S`)).json();
    expect(body).toEqual({ sku: "S", price: catalogPriceCents("S") / 100 });
    expect(performance.now() - t0).toBeGreaterThan(REQUEST_TIMEOUT_MS * 2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(JSON.stringify(body).length * TRICKLE_BYTE_MS * 0.9);
    // Its slot was held the whole time and is free once the body is out.
    expect(api.stats().inFlight).toBe(0);
  }, 30_000);

  test("a trickle given up by the client frees its slot at the server", async () => {
    const defaults = loadSettings(priceApiSpec, { env: {}, argv: [] });
    api = await startPriceApi({ ...defaults, port: 0, delayMinMs: 0, delayMaxMs: 0, maxConcurrency: 1, faults: { S: "trickle" } });
    const res = await fetch(`${api.url}/price/S`, { signal: AbortSignal.timeout(300) });
    await res.text().catch(() => undefined);
    expect(api.stats().inFlight).toBe(1);
    const deadline = Date.now() + 3000;
    while (api.stats().inFlight > 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(api.stats().inFlight).toBe(0);
    expect((await fetch(`${api.url}/price/OTHER`)).status).toBe(200);
  }, 30_000);
});
