// The pricing policy (src/pricing), pure: token bucket, backoff, coalescing, totals, deadlines;
// and the dispatcher's shell with a stubbed fetch and a hand-moved clock (no network).
import { afterEach, describe, expect, test } from "bun:test";
import type { Car } from "../src/domain.ts";
import { backoffMs } from "../src/pricing/backoff.ts";
import { PriceCoalescer } from "../src/pricing/coalesce.ts";
import { PricingDispatcher } from "../src/pricing/dispatcher.ts";
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
/** A car whose seven parts all have SKUs of their own: no request is shared. */
const distinct = (carId: string) =>
  car(carId, { body: `${carId}-B`, engine: `${carId}-E`, remote: `${carId}-R`, wheels: [`${carId}-W0`, `${carId}-W1`, `${carId}-W2`, `${carId}-W3`] });
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

describe("deadlines", () => {
  test("the next deadline is the earliest among cars still waiting, whatever order they came in", () => {
    const p = policy({ deadlineMs: 1000 });
    p.add(distinct("a"), 50, 50);
    p.add(distinct("b"), 10, 50);
    p.add(distinct("c"), 30, 50);
    expect(p.nextDeadline()).toBe(1010);
    p.removeWhere((c) => c.carId === "b");
    expect(p.nextDeadline()).toBe(1030);
    for (const r of requestAll(p, 60)) if (r.sku.startsWith("c-")) p.succeeded(r, 100, 70);
    expect(p.drainFinished().map((c) => c.carId)).toEqual(["c"]);
    expect(p.nextDeadline()).toBe(1050);
    p.expire(1049);
    expect(p.drainFinished()).toEqual([]);
    p.expire(1050);
    expect(p.drainFinished().map((c) => c.carId)).toEqual(["a"]);
    expect(p.nextDeadline()).toBeUndefined();
  });

  test("cars past their deadline end in deadline order, not arrival order", () => {
    const p = policy({ deadlineMs: 100 });
    p.add(distinct("late"), 30, 30);
    p.add(distinct("early"), 10, 30);
    p.add(distinct("middle"), 20, 30);
    p.expire(1000);
    expect(p.drainFinished().map((c) => c.carId)).toEqual(["early", "middle", "late"]);
  });

  test("many cars coming and going: the next deadline stays right", () => {
    const p = policy({ deadlineMs: 1000, maxWaitingCars: 10_000 });
    for (let i = 0; i < 500; i++) p.add(same(`k${i}`), i, i);
    // One round of requests prices all of them; the cars that come after wait for the next.
    const reqs = requestAll(p, 600);
    for (let i = 500; i < 510; i++) p.add(same(`k${i}`), 1200 - i, 1000);
    for (const r of reqs) p.succeeded(r, 1, 700);
    expect(p.drainFinished().length).toBe(500);
    expect(p.waiting).toBe(10);
    expect(p.nextDeadline()).toBe(2200 - 509);
  });

  test("random adds, pricings and expiries: nextDeadline is always the earliest waiting car's, expiry takes exactly the cars due", () => {
    // The deadline heap keeps finished cars until they surface and is rebuilt now and then;
    // a brute-force model of the waiting cars judges it at every step. (Its cost, no longer
    // a scan of every waiting car per call, is in `bun run bench`'s micro part.)
    const p = policy({ deadlineMs: 1000, maxWaitingCars: 100_000 });
    const model = new Map<string, number>(); // car key → deadline
    let seed = 12345;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    let now = 0;
    for (let i = 0; i < 3000; i++) {
      now += rnd(5);
      const since = now - rnd(500);
      const c = distinct(`r${i}`);
      p.add(c, since, now);
      model.set(`r${i}/0`, since + 1000);
      // Now and then, answer every request that is open for one random car (distinct SKUs:
      // it completes); the other requests stay open and their cars wait for their deadline.
      // Expiry first (as the dispatcher's pump does), so a car past its deadline is never priced.
      p.expire(now);
      const pending = requestAll(p, now);
      const victim = `r${rnd(i + 1)}-`;
      if (rnd(3) === 0) for (const r of pending) if (r.sku.startsWith(victim)) p.succeeded(r, 100, now);
      for (const f of p.drainFinished()) {
        const deadline = model.get(`${f.carId}/0`);
        expect(deadline).toBeDefined();
        // A car fails exactly when its deadline has come; one priced before it completes.
        expect(f.situation).toBe(deadline! <= now ? "FAILED_GET_PRICE" : "COMPLETED");
        model.delete(`${f.carId}/0`);
      }
      for (const d of model.values()) expect(d).toBeGreaterThan(now);
      expect(p.waiting).toBe(model.size);
      expect(p.nextDeadline()).toBe(model.size === 0 ? undefined : Math.min(...model.values()));
    }
  });
});

describe("dispatcher shell (stubbed fetch, hand-moved clock)", () => {
  const realFetch = globalThis.fetch;
  const realSetTimeout = globalThis.setTimeout;
  let dispatcher: PricingDispatcher | undefined;
  afterEach(async () => {
    globalThis.fetch = realFetch;
    globalThis.setTimeout = realSetTimeout;
    await dispatcher?.stop();
    dispatcher = undefined;
  });

  /** Requests stay open until answered by hand; the clock moves only when told. */
  function rig(over: { maxInFlight?: number; ratePerSecond?: number; burst?: number } = {}) {
    const clock = { t: 0 };
    const open = new Map<string, (price: number) => void>();
    globalThis.fetch = ((url: string, init?: { signal?: AbortSignal }) =>
      new Promise<Response>((resolve, reject) => {
        const sku = decodeURIComponent(String(url).split("/price/")[1]!);
        waitingAtSend.push(dispatcher?.waiting ?? 0);
        open.set(sku, (price) => resolve(Response.json({ sku, price })));
        init?.signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      })) as typeof fetch;
    /** How many cars waited when each request left. */
    const waitingAtSend: number[] = [];
    const armed: number[] = [];
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      armed.push(ms ?? 0);
      return realSetTimeout(fn, ms);
    }) as typeof setTimeout;
    const d = (dispatcher = new PricingDispatcher({
      baseUrl: "http://stub",
      maxInFlight: over.maxInFlight ?? 5,
      ratePerSecond: over.ratePerSecond ?? 1000,
      burst: over.burst ?? 20,
      requestTimeoutMs: 60_000,
      deadlineMs: 30_000,
      cacheTtlMs: 0,
      retryBaseMs: 100,
      retryMaxMs: 1000,
      maxWaitingCars: 100,
      random: () => 0.5,
      now: () => clock.t,
    }));
    const answer = async (sku: string, price = 1) => {
      const reply = open.get(sku)!;
      open.delete(sku);
      reply(price);
      for (let i = 0; i < 10; i++) await Bun.sleep(0); // the response body, then the slot
    };
    return { d, clock, open, armed, answer, waitingAtSend };
  }

  test("saturation: time before the first car is not waiting time; the open interval counts up to now", async () => {
    const { d, clock, open, answer } = rig();
    clock.t = 1000; // the engine started at 0; the first car arrives a second later
    d.add(distinct("a"), 1000);
    expect(open.size).toBe(5);
    expect([d.waitingMs, d.saturatedMs]).toEqual([0, 0]);
    clock.t = 1400;
    expect([d.waitingMs, d.saturatedMs]).toEqual([400, 400]);
    clock.t = 1500;
    for (const sku of [...open.keys()]) await answer(sku);
    expect(open.size).toBe(2); // the car's last two SKUs: nothing else to ask for
    clock.t = 1600;
    expect([d.waitingMs, d.saturatedMs]).toEqual([600, 500]);
    clock.t = 1700;
    for (const sku of [...open.keys()]) await answer(sku);
    expect(d.drainFinished().map((c) => c.situation)).toEqual(["COMPLETED"]);
    clock.t = 5000; // no car waits: neither figure moves
    expect([d.waitingMs, d.saturatedMs]).toEqual([700, 500]);
  });

  test("saturation: cars leaving without a response (deadline, partition moved) stop the waiting clock then", async () => {
    const { d, clock } = rig();
    d.add(distinct("a"), 0);
    d.add(distinct("b"), 0);
    clock.t = 300;
    d.removeWhere((c) => c.carId === "a");
    clock.t = 30_000;
    expect(d.drainFinished().map((c) => `${c.carId} ${c.situation}`)).toEqual(["b FAILED_GET_PRICE"]);
    clock.t = 40_000;
    expect([d.waitingMs, d.saturatedMs]).toEqual([30_000, 30_000]);
  });

  test("no busy timer: with every slot taken it waits for a response or the next deadline, not the next millisecond", () => {
    const { d, clock, open, armed } = rig();
    clock.t = 10;
    d.add(distinct("a"), 10);
    d.add(distinct("b"), 10);
    expect(open.size).toBe(5);
    expect(armed.length).toBeGreaterThan(0);
    expect(Math.min(...armed)).toBeGreaterThanOrEqual(1000); // the 1 s re-check, the request timeouts
  });

  test("an empty token bucket with a free slot wakes the pump when the next token is due", () => {
    const { d, open, armed } = rig({ ratePerSecond: 4, burst: 1 });
    d.add(distinct("a"), 0);
    expect(open.size).toBe(1);
    expect(Math.min(...armed)).toBe(250);
  });

  test("a freed slot is refilled before the response's cars are priced", async () => {
    const { d, open, answer, waitingAtSend } = rig({ maxInFlight: 1 });
    const s = (carId: string) => car(carId, { body: "S", engine: "S", remote: "S", wheels: ["S", "S", "S", "S"] });
    d.add(car("x", { body: "S", engine: "T", remote: "T", wheels: ["T", "T", "T", "T"] }), 0);
    for (let i = 0; i < 50; i++) d.add(s(`y${i}`), 0);
    expect([...open.keys()]).toEqual(["S"]);
    await answer("S");
    // T left while the 50 cars S priced were still being finished.
    expect([...open.keys()]).toEqual(["T"]);
    expect(waitingAtSend).toEqual([1, 51]);
    expect(d.drainFinished().length).toBe(50);
    expect(d.waiting).toBe(1);
  });
});
