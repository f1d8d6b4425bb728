// The mock price API (SPEC §6): a deterministic price per SKU after a random delay, with
// injected failures and hangs, and a hard concurrency cap answered with 429 so that a client
// that ignores the cap is caught.
import { Hono } from "hono";
import type { PriceApiSettings } from "../config.ts";
import { catalogPriceCents, centsToAmount } from "../domain.ts";
import { faultyAnswer, invalidFaultTable } from "./faults.ts";

export interface PriceApiStats {
  /** Requests answered 200. */
  served: number;
  /** Requests answered 503 (FAIL_RATE). */
  failed: number;
  /** Requests never answered (HANG_RATE); they hold their slot until the client goes away. */
  hung: number;
  /** Requests refused with 429 because MAX_CONCURRENCY were open. */
  rejected: number;
  inFlight: number;
  /** The most admitted requests ever open at once: a client that respects the cap keeps it ≤ cap. */
  maxConcurrencySeen: number;
  requests: number;
  /** Requests answered 200 with an unusable body from the fault table. */
  faulty: number;
}

export type Behaviour = Pick<PriceApiSettings, "delayMinMs" | "delayMaxMs" | "failRate" | "hangRate" | "faults">;

export interface PriceApi {
  app: Hono;
  stats(): PriceApiStats;
  reconfigure(change: Partial<Behaviour>): Behaviour;
}

const zeroStats = (): PriceApiStats => ({ served: 0, failed: 0, hung: 0, rejected: 0, inFlight: 0, maxConcurrencySeen: 0, requests: 0, faulty: 0 });

/** Checks a behaviour change; returns the reason it is refused, or undefined. */
export function invalidBehaviour(b: Behaviour): string | undefined {
  const ms = (v: number) => Number.isInteger(v) && v >= 0 && v <= 600_000;
  const rate = (v: number) => Number.isFinite(v) && v >= 0 && v <= 1;
  if (!ms(b.delayMinMs) || !ms(b.delayMaxMs)) return "delays must be integers in 0..600000";
  if (b.delayMinMs > b.delayMaxMs) return "delayMinMs must be <= delayMaxMs";
  if (!rate(b.failRate) || !rate(b.hangRate) || b.failRate + b.hangRate > 1) return "failRate and hangRate must be in 0..1 with a sum <= 1";
  return invalidFaultTable(b.faults);
}

export function createPriceApi(settings: PriceApiSettings, options: { random?: () => number } = {}): PriceApi {
  const random = options.random ?? Math.random;
  let behaviour: Behaviour = {
    delayMinMs: settings.delayMinMs,
    delayMaxMs: settings.delayMaxMs,
    failRate: settings.failRate,
    hangRate: settings.hangRate,
    faults: settings.faults,
  };
  let stats = zeroStats();
  const app = new Hono();

  app.get("/price/:sku", async (c) => {
    stats.requests++;
    if (stats.inFlight >= settings.maxConcurrency) {
      stats.rejected++;
      return c.json({ error: `more than ${settings.maxConcurrency} concurrent requests` }, 429);
    }
    stats.inFlight++;
    stats.maxConcurrencySeen = Math.max(stats.maxConcurrencySeen, stats.inFlight);
    const generation = stats;
    const release = () => {
      // After /admin/reset the slot belongs to the old stats: don't corrupt the new ones.
      if (generation === stats) stats.inFlight--;
    };
    const sku = c.req.param("sku");
    const roll = random();
    const delay = behaviour.delayMinMs + Math.floor(random() * (behaviour.delayMaxMs - behaviour.delayMinMs + 1));
    if (roll < behaviour.hangRate) {
      stats.hung++;
      const signal = c.req.raw.signal;
      // Never answer; the slot is freed when the client gives up (connection closed).
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener("abort", () => resolve(), { once: true });
      });
      release();
      return c.body(null, 499 as never);
    }
    // A client that gives up (its timeout) ends the request: the slot is free from then on,
    // as with a real server that notices the closed connection.
    const aborted = await sleepUnlessAborted(delay, c.req.raw.signal);
    if (aborted) {
      release();
      return c.body(null, 499 as never);
    }
    if (roll < behaviour.hangRate + behaviour.failRate) {
      release();
      stats.failed++;
      return c.json({ error: "injected failure" }, 503);
    }
    if (Object.hasOwn(behaviour.faults, sku)) {
      stats.faulty++;
      // The slot stays taken until the answer is sent or given up (a trickle takes seconds).
      return faultyAnswer(behaviour.faults[sku]!, sku, centsToAmount(catalogPriceCents(sku)), once(release));
    }
    release();
    stats.served++;
    return c.json({ sku, price: centsToAmount(catalogPriceCents(sku)) });
  });

  app.get("/stats", (c) => c.json(stats));
  app.get("/health", (c) => c.json({ ok: true }));
  app.post("/admin/config", async (c) => {
    const body = (await c.req.json().catch(() => null)) as Partial<Behaviour> | null;
    if (body === null || typeof body !== "object") return c.json({ error: "body must be a JSON object" }, 400);
    const next = { ...behaviour };
    for (const k of ["delayMinMs", "delayMaxMs", "failRate", "hangRate"] as const) {
      if (body[k] !== undefined) next[k] = Number(body[k]);
    }
    // The fault table is replaced whole: {} clears it.
    if (body.faults !== undefined) next.faults = body.faults;
    const invalid = invalidBehaviour(next);
    if (invalid) return c.json({ error: invalid }, 400);
    behaviour = next;
    return c.json(behaviour);
  });
  app.post("/admin/reset", (c) => {
    stats = zeroStats();
    return c.json(stats);
  });

  return {
    app,
    stats: () => ({ ...stats }),
    reconfigure(change) {
      const next = { ...behaviour, ...change };
      const invalid = invalidBehaviour(next);
      if (invalid) throw new Error(invalid);
      behaviour = next;
      return behaviour;
    },
  };
}

function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (!called) fn();
    called = true;
  };
}

/** Waits `ms`; resolves early with true when the client aborts the request. */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
