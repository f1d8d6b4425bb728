// The mock price API over real HTTP on 127.0.0.1.
import { afterEach, describe, expect, test } from "bun:test";
import { priceApiSpec, loadSettings, type PriceApiSettings } from "../src/config.ts";
import { catalogPriceCents } from "../src/domain.ts";
import { startPriceApi, type RunningPriceApi } from "../src/price-api/server.ts";

let api: RunningPriceApi | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

async function start(overrides: Partial<PriceApiSettings>): Promise<RunningPriceApi> {
  const defaults = loadSettings(priceApiSpec, { env: {}, argv: [] });
  api = await startPriceApi({ ...defaults, port: 0, delayMinMs: 0, delayMaxMs: 0, ...overrides });
  return api;
}

describe("mock price API", () => {
  test("the price of a SKU is deterministic, the catalog price, within 1.00–99.99", async () => {
    const a = await start({});
    for (const sku of ["BODY-1", "ENGINE-7", "WHEEL-x", "ünïcode-sku"]) {
      const first = (await (await fetch(`${a.url}/price/${encodeURIComponent(sku)}`)).json()) as { sku: string; price: number };
      const second = (await (await fetch(`${a.url}/price/${encodeURIComponent(sku)}`)).json()) as { sku: string; price: number };
      expect(first).toEqual(second);
      expect(first.sku).toBe(sku);
      expect(Math.round(first.price * 100)).toBe(catalogPriceCents(sku));
      expect(first.price).toBeGreaterThanOrEqual(1);
      expect(first.price).toBeLessThanOrEqual(99.99);
    }
    expect(a.stats().served).toBe(8);
  });

  test("answers after a delay within the configured range", async () => {
    const a = await start({ delayMinMs: 200, delayMaxMs: 300 });
    const times = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const t0 = performance.now();
        const r = await fetch(`${a.url}/price/S${i}`);
        expect(r.status).toBe(200);
        return performance.now() - t0;
      }),
    );
    for (const t of times) expect(t).toBeGreaterThanOrEqual(195);
  });

  test("FAIL_RATE 1 answers 503 and counts failures", async () => {
    const a = await start({ failRate: 1 });
    const r = await fetch(`${a.url}/price/S1`);
    expect(r.status).toBe(503);
    expect(a.stats()).toMatchObject({ failed: 1, served: 0 });
  });

  test("HANG_RATE 1 never answers, and the slot is freed when the client gives up", async () => {
    const a = await start({ hangRate: 1, maxConcurrency: 1 });
    const err = await fetch(`${a.url}/price/S1`, { signal: AbortSignal.timeout(300) }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.name).toBe("TimeoutError");
    expect(a.stats().hung).toBe(1);
    const deadline = Date.now() + 3000;
    while (a.stats().inFlight > 0 && Date.now() < deadline) await Bun.sleep(20);
    expect(a.stats().inFlight).toBe(0);
    // With the slot free, a healthy request is admitted again.
    a.reconfigure({ hangRate: 0 });
    expect((await fetch(`${a.url}/price/S2`)).status).toBe(200);
  });

  test("more than MAX_CONCURRENCY open requests get 429, and the cap is what /stats saw", async () => {
    const a = await start({ maxConcurrency: 5, delayMinMs: 400, delayMaxMs: 400 });
    const statuses = await Promise.all(Array.from({ length: 8 }, (_, i) => fetch(`${a.url}/price/S${i}`).then((r) => r.status)));
    expect(statuses.filter((s) => s === 429).length).toBe(3);
    expect(statuses.filter((s) => s === 200).length).toBe(5);
    const stats = (await (await fetch(`${a.url}/stats`)).json()) as Record<string, number>;
    expect(stats).toMatchObject({ rejected: 3, served: 5, maxConcurrencySeen: 5, inFlight: 0, requests: 8 });
  });

  test("/health answers, /admin/config switches failures on and off, bad values are refused", async () => {
    const a = await start({});
    expect(await (await fetch(`${a.url}/health`)).json()).toEqual({ ok: true });
    const post = (body: unknown) =>
      fetch(`${a.url}/admin/config`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    expect((await post({ failRate: 1 })).status).toBe(200);
    expect((await fetch(`${a.url}/price/S`)).status).toBe(503);
    expect((await post({ failRate: 0 })).status).toBe(200);
    expect((await fetch(`${a.url}/price/S`)).status).toBe(200);
    expect((await post({ failRate: 2 })).status).toBe(400);
    expect((await post({ delayMinMs: 10, delayMaxMs: 5 })).status).toBe(400);
    expect((await fetch(`${a.url}/admin/reset`, { method: "POST" })).status).toBe(200);
    expect(a.stats().requests).toBe(0);
  });

  test("the fault table: set at start (FAULTS), changed live through /admin/config, other SKUs untouched", async () => {
    const a = await start({ faults: loadSettings(priceApiSpec, { env: { FAULTS: "SKU-1=negative, SKU-2=html" }, argv: [] }).faults });
    const get = async (sku: string) => {
      const r = await fetch(`${a.url}/price/${sku}`);
      return { status: r.status, text: await r.text() };
    };
    expect(await get("SKU-1")).toEqual({ status: 200, text: '{"sku":"SKU-1","price":-5}' });
    expect((await get("SKU-2")).text).toStartWith("<!doctype html>");
    expect(JSON.parse((await get("SKU-3")).text)).toEqual({ sku: "SKU-3", price: catalogPriceCents("SKU-3") / 100 });
    const post = (body: unknown) =>
      fetch(`${a.url}/admin/config`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    const r = await post({ faults: { "SKU-3": "huge", "SKU-4": "three-decimals" } });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { faults: unknown }).faults).toEqual({ "SKU-3": "huge", "SKU-4": "three-decimals" });
    expect((await get("SKU-3")).text).toBe('{"sku":"SKU-3","price":1e18}');
    expect((await get("SKU-4")).text).toMatch(/"price":\d+\.\d\d5}$/);
    expect(JSON.parse((await get("SKU-1")).text).price).toBe(catalogPriceCents("SKU-1") / 100); // replaced whole
    expect((await post({ faults: { "SKU-1": "sometimes" } })).status).toBe(400);
    expect((await post({ faults: ["SKU-1"] })).status).toBe(400);
    a.reconfigure({ faults: { "SKU-1": "other-sku" } });
    expect(JSON.parse((await get("SKU-1")).text).sku).toBe("SKU-1-OTHER");
    expect(() => a.reconfigure({ faults: { "SKU-1": "bogus" as never } })).toThrow(/bogus/);
    expect((await post({ faults: {} })).status).toBe(200);
    expect(JSON.parse((await get("SKU-1")).text)).toEqual({ sku: "SKU-1", price: catalogPriceCents("SKU-1") / 100 });
    expect(a.stats().faulty).toBe(5);
  });

  test("a bad setting stops `bun run price-api` with one line naming it", () => {
    for (const [env, name] of [
      [{ DELAY_MIN_MS: "900", DELAY_MAX_MS: "100" }, "DELAY_MIN_MS"],
      [{ FAIL_RATE: "2" }, "FAIL_RATE"],
      [{ MAX_CONCURRENCY: "lots" }, "MAX_CONCURRENCY"],
      [{ FAULTS: "SKU-1=negative,SKU-2=sometimes" }, "FAULTS"],
      [{ FAULTS: "SKU-1" }, "FAULTS"],
    ] as const) {
      const r = Bun.spawnSync([process.execPath, "src/cli/price-api.ts"], { env: { ...process.env, PORT: "0", ...env }, stderr: "pipe", stdout: "pipe" });
      expect(r.exitCode).toBe(2);
      const lines = r.stderr.toString().trim().split("\n");
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain(name);
    }
  });
});
