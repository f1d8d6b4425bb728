// The pricing policy (src/pricing), pure: token bucket, backoff, coalescing, totals, deadlines.
import { describe, expect, test } from "bun:test";
import type { Car } from "../src/domain.ts";
import { backoffMs } from "../src/pricing/backoff.ts";
import { PriceCoalescer } from "../src/pricing/coalesce.ts";
import { TokenBucket } from "../src/pricing/token-bucket.ts";

function car(carId: string, skus: { body: string; engine: string; remote: string; wheels: [string, string, string, string] }): Car {
  const placements = ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"] as const;
  return {
    carId,
    situation: "AWAITING_PRICE",
    missing: [],
    body: { carId, partId: `${carId}-B`, sku: skus.body, color: "red", material: "abs", weightKg: 1 },
    engine: { carId, partId: `${carId}-E`, sku: skus.engine },
    remoteControl: { carId, partId: `${carId}-R`, sku: skus.remote, channelFrequency: "RF_27" },
    wheels: skus.wheels.map((sku, i) => ({ carId, partId: `${carId}-W${i}`, sku, placement: placements[i]! })),
    firstPartAt: 0,
    assembledAt: 0,
  };
}
const same = (carId: string) => car(carId, { body: "B", engine: "E", remote: "R", wheels: ["W", "W", "W", "W"] });
const policy = (over: Partial<ConstructorParameters<typeof PriceCoalescer>[0]> = {}) =>
  new PriceCoalescer({ deadlineMs: 1000, maxWaitingCars: 100, cacheTtlMs: 0, retryBaseMs: 100, retryMaxMs: 1000, random: () => 0.5, ...over });

function requestAll(p: PriceCoalescer, now: number) {
  const out = [];
  for (let r = p.nextRequest(now); r; r = p.nextRequest(now)) out.push(r);
  return out;
}

describe("token bucket", () => {
  test("a burst, then the rate", () => {
    const b = new TokenBucket(10, 3);
    expect([b.tryTake(0), b.tryTake(0), b.tryTake(0), b.tryTake(0)]).toEqual([true, true, true, false]);
    expect(b.nextAvailableAt(0)).toBe(100);
    expect(b.tryTake(99)).toBe(false);
    expect(b.tryTake(100)).toBe(true);
    expect(b.tryTake(10_000) && b.tryTake(10_000) && b.tryTake(10_000)).toBe(true);
    expect(b.tryTake(10_000)).toBe(false); // never more than the burst saved up
  });
});

describe("backoff", () => {
  test("within [0, min(max, base·2^attempt)]", () => {
    expect(backoffMs(0, 100, 5000, () => 0.999999)).toBe(100);
    expect(backoffMs(3, 100, 5000, () => 0.999999)).toBe(800);
    expect(backoffMs(10, 100, 5000, () => 0.999999)).toBe(5000);
    expect(backoffMs(10, 100, 5000, () => 0)).toBe(0);
  });
});

describe("coalescing and totals", () => {
  test("cars waiting for the same SKU share one request", () => {
    const p = policy();
    p.add(same("a"), 0, 0);
    p.add(same("b"), 0, 0);
    const reqs = requestAll(p, 1);
    expect(reqs.map((r) => r.sku).sort()).toEqual(["B", "E", "R", "W"]);
    for (const r of reqs) p.succeeded(r, 150, 5);
    const done = p.drainFinished();
    expect(done.map((c) => c.carId).sort()).toEqual(["a", "b"]);
    expect(done.every((c) => c.situation === "COMPLETED")).toBe(true);
  });

  test("a car that began waiting after the request left is not priced by it: a fresh request follows", () => {
    const p = policy();
    p.add(same("early"), 0, 0);
    const reqs = requestAll(p, 10);
    p.add(same("late"), 20, 20);
    expect(p.nextRequest(21)).toBeUndefined(); // one request per SKU in flight
    for (const r of reqs) p.succeeded(r, 100, 30);
    expect(p.drainFinished().map((c) => c.carId)).toEqual(["early"]);
    const again = requestAll(p, 31);
    expect(again.map((r) => r.sku).sort()).toEqual(["B", "E", "R", "W"]);
    for (const r of again) p.succeeded(r, 100, 40);
    expect(p.drainFinished().map((c) => c.carId)).toEqual(["late"]);
  });

  test("totals are summed in integer cents over the seven parts (repeated wheel SKUs count four times)", () => {
    const p = policy();
    p.add(car("c", { body: "B", engine: "E", remote: "R", wheels: ["W1", "W1", "W2", "W2"] }), 0, 0);
    const cents: Record<string, number> = { B: 10, E: 20, R: 30, W1: 1, W2: 2 };
    for (const r of requestAll(p, 1)) p.succeeded(r, cents[r.sku]!, 2);
    const [done] = p.drainFinished();
    // Summed as amounts, 0.1 + 0.2 + 0.3 + 0.01 + 0.01 + 0.02 + 0.02 is 0.6600000000000001.
    expect(done!.totalPrice).toBe(0.66);
    expect(done!.prices).toEqual({ B: 0.1, E: 0.2, R: 0.3, W1: 0.01, W2: 0.02 });
    expect(done!.pricedAt).toBe(2);
  });

  test("a car past its deadline ends FAILED_GET_PRICE naming every failure it saw; no prices", () => {
    const p = policy({ deadlineMs: 500, retryBaseMs: 1, retryMaxMs: 1 });
    p.add(same("x"), 0, 0);
    for (const r of requestAll(p, 1)) p.failed(r, "HTTP 503", 2);
    for (const r of requestAll(p, 10)) p.failed(r, r.sku === "W" ? "timeout after 400 ms" : "HTTP 503", 12);
    p.expire(499);
    expect(p.drainFinished()).toEqual([]);
    p.expire(500);
    const [failed] = p.drainFinished();
    expect(failed!.situation).toBe("FAILED_GET_PRICE");
    expect(failed!.error).toContain("HTTP 503 (7×)"); // four SKUs, then three of them again
    expect(failed!.error).toContain("timeout after 400 ms");
    expect(failed!.prices).toBeUndefined();
    expect(failed!.totalPrice).toBeUndefined();
    expect(p.waiting).toBe(0);
  });

  test("a failed request is retried only after its backoff", () => {
    const p = policy({ retryBaseMs: 100, random: () => 0.999999 });
    p.add(car("y", { body: "S", engine: "S", remote: "S", wheels: ["S", "S", "S", "S"] }), 0, 0);
    const [r] = requestAll(p, 0);
    p.failed(r!, "timeout after 2000 ms", 10);
    expect(p.nextRequest(109)).toBeUndefined();
    expect(p.nextRetryAt()).toBe(110);
    expect(p.nextRequest(110)?.sku).toBe("S");
  });

  test("the waiting set is bounded; removeWhere drops cars", () => {
    const p = policy({ maxWaitingCars: 2 });
    p.add(same("a"), 0, 0);
    expect(p.isFull()).toBe(false);
    p.add(same("b"), 0, 0);
    expect(p.isFull()).toBe(true);
    p.removeWhere((c) => c.carId === "a");
    expect(p.waiting).toBe(1);
    expect(p.isFull()).toBe(false);
  });

  test("cache: off by default (every car needs a request sent after it began waiting), on with a TTL", () => {
    const off = policy();
    off.add(same("a"), 0, 0);
    for (const r of requestAll(off, 1)) off.succeeded(r, 100, 2);
    off.add(same("b"), 3, 3);
    expect(off.drainFinished().map((c) => c.carId)).toEqual(["a"]);
    expect(requestAll(off, 4).length).toBe(4);
    const on = policy({ cacheTtlMs: 1000 });
    on.add(same("a"), 0, 0);
    for (const r of requestAll(on, 1)) on.succeeded(r, 100, 2);
    on.add(same("b"), 3, 3);
    expect(on.drainFinished().map((c) => c.carId)).toEqual(["a", "b"]);
  });
});
