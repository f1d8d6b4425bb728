// The engine against a price API that answers 200 with unusable bodies for some SKUs (SPEC §5):
// every complete car that needs such a SKU ends FAILED_GET_PRICE with an error naming the SKU
// and what was wrong with its answer; every other complete car is COMPLETED with exact totals;
// nothing lost or doubled.
import { afterEach, describe, expect, test } from "bun:test";
import type { Car } from "../src/domain.ts";
import { catalogPriceCents } from "../src/domain.ts";
import { PRICE_FAULTS, type FaultTable, type PriceFault } from "../src/price-api/faults.ts";
import { readOutputs } from "../src/verify/reader.ts";
import { engineCaughtUp, generate, stack, verifyOutputs, type Stack } from "./support/stack.ts";

const REQUEST_TIMEOUT_MS = 400;
const DEADLINE_MS = 2500;

/** What the reason in the car's error says for each shape (the SKU is filled in). */
function expectedReason(fault: PriceFault, sku: string): RegExp {
  const reasons: Record<PriceFault, RegExp> = {
    string: new RegExp(`${sku}: price is a string`),
    nan: new RegExp(`${sku}: body is not JSON: .*NaN`),
    html: new RegExp(`${sku}: body is not JSON: "<!doctype html>`),
    null: new RegExp(`${sku}: price is null`),
    "no-price": new RegExp(`${sku}: answer has no price`),
    "three-decimals": new RegExp(`${sku}: price \\d+\\.\\d{2}5 is not whole cents`),
    negative: new RegExp(`${sku}: price -5 is negative`),
    huge: new RegExp(`${sku}: price 1000000000000000000 is above PRICE_MAX_AMOUNT=100000`),
    "other-sku": new RegExp(`${sku}: answer is for sku "${sku}-OTHER", not "${sku}"`),
    trickle: new RegExp(`timeout after ${REQUEST_TIMEOUT_MS} ms`),
    reset: /connection error: .*(ECONNRESET|closed unexpectedly)/i,
  };
  return reasons[fault];
}

function skusOf(c: Car): string[] {
  return [c.body?.sku, c.engine?.sku, c.remoteControl?.sku, ...c.wheels.map((w) => w.sku)].filter((s): s is string => s !== undefined);
}

let current: Stack | undefined;
afterEach(async () => {
  await current?.engine.kill9();
  await current?.api.stop();
  current = undefined;
});

describe("engine: price answers that are not prices", () => {
  test("cars needing a SKU that answers each bad shape end FAILED_GET_PRICE naming the problem; all others COMPLETED; nothing lost or doubled", async () => {
    // One wheel SKU and one engine SKU per shape, out of 60 per kind: many cars hit one.
    const faults: FaultTable = Object.fromEntries(
      PRICE_FAULTS.flatMap((f, i) => [
        [`WH-${String(i + 1).padStart(4, "0")}`, f],
        [`EN-${String(i + 1).padStart(4, "0")}`, f],
      ]),
    );
    const s = (current = await stack("price-answers", {
      api: { delayMinMs: 0, delayMaxMs: 5, faults },
      engineEnv: {
        PRICE_DEADLINE_MS: String(DEADLINE_MS),
        PRICE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        PRICE_RETRY_BASE_MS: "50",
        PRICE_RETRY_MAX_MS: "300",
      },
    }));
    await s.engine.start();
    const manifest = await generate({ cars: 300, seed: 91, skus: 60, missingWheels: 0.05, dupRate: 0.02, malformedRate: 0.02 }, s.kafka);
    expect(await engineCaughtUp(s.engine, manifest, 90_000)).toBe(true);

    // Nothing lost or doubled; a COMPLETED car may have become FAILED_GET_PRICE (checked below).
    const report = await verifyOutputs(s.kafka, manifest, { allowFailedPrice: true });
    expect(report.problems).toEqual({});

    const read = await readOutputs(s.kafka, [s.topics.completed, s.topics.incomplete], { quietMs: 1500, timeoutMs: 30_000 });
    const cars = read.records.map((r) => JSON.parse(Buffer.from(r.value!).toString()) as Car);
    const complete = cars.filter((c) => c.missing.length === 0);
    const hitShapes = new Set<PriceFault>();
    let failed = 0;
    for (const c of complete) {
      const bad = [...new Set(skusOf(c))].filter((sku) => Object.hasOwn(faults, sku));
      if (bad.length === 0) {
        // Healthy SKUs only: priced, exactly, in integer cents.
        expect({ carId: c.carId, situation: c.situation, error: c.error }).toEqual({ carId: c.carId, situation: "COMPLETED", error: undefined });
        const cents = skusOf(c).reduce((sum, sku) => sum + catalogPriceCents(sku), 0);
        expect(Math.round(c.totalPrice! * 100)).toBe(cents);
        continue;
      }
      failed++;
      expect({ carId: c.carId, situation: c.situation }).toEqual({ carId: c.carId, situation: "FAILED_GET_PRICE" });
      expect(c.totalPrice).toBeUndefined();
      // The error names every SKU it got no price for; a bad body's reason comes with its SKU.
      // A timeout or reset is not SKU-specific, and a SKU's request may not have finished by
      // the deadline while the car waited on others: at least one SKU's reason must be there.
      for (const sku of bad) expect(c.error).toContain(sku);
      const named = bad.filter((sku) => expectedReason(faults[sku]!, sku).test(c.error ?? ""));
      expect({ carId: c.carId, error: c.error, named: named.length > 0 }).toEqual({ carId: c.carId, error: c.error, named: true });
      for (const sku of named) hitShapes.add(faults[sku]!);
    }
    // Every shape was met by some car, and the failures are exactly the cars that needed a bad SKU.
    expect([...hitShapes].sort()).toEqual([...PRICE_FAULTS].sort());
    expect(report.failedPrice).toBe(failed);
    expect(complete.filter((c) => c.situation === "COMPLETED").length).toBeGreaterThan(0);
    expect(s.api.stats().rejected).toBe(0);
  }, 240_000);
});
