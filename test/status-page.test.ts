// The engine's status page in a real headless browser (Debian's chromium driven by
// playwright-core): it loads without console errors, its numbers move while the engine works,
// and once the run is done they equal what /metrics says.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { engineHttp } from "../src/engine/http.ts";
import { EngineMetrics } from "../src/engine/metrics.ts";
import { parseMetrics } from "../src/engine/scrape.ts";
import { engineCaughtUp, generate, stack, until, type Stack } from "./support/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SHOTS = resolve(import.meta.dir, "..", ".local", "screenshots");

let current: Stack | undefined;
let browser: BrowserContext | undefined;
let profile: string | undefined;
let server: ReturnType<typeof Bun.serve> | undefined;
afterEach(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await current?.engine.kill9();
  await current?.api.stop();
  server?.stop(true);
  browser = current = profile = server = undefined;
});

/** The exact number behind a tile or an outcome of the page (its data-value attribute). */
async function shown(page: Page, metric: string): Promise<number | undefined> {
  const v = await page
    .locator(`[data-metric="${metric}"]`)
    .first()
    .getAttribute("data-value", { timeout: 2000 })
    .catch(() => null);
  return v === null ? undefined : Number(v);
}

async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  profile = mkdtempSync(join(tmpdir(), "rccar-chromium-"));
  browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1440, height: 1100 } });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`));
  await page.goto(url);
  await page.waitForSelector('[data-metric="records-in"]', { timeout: 10_000 });
  return { page, errors };
}

async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`status page screenshot: ${path}`);
  return path;
}

/** The engine's HTTP app over metrics the test sets itself: what the page makes of states a short run rarely reaches. */
function servedMetrics(): { metrics: EngineMetrics; url: string } {
  const metrics = new EngineMetrics();
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: engineHttp({ metrics, failure: () => undefined, status: () => ({ ready: true }), health: () => ({ ok: true }) }).fetch,
  });
  return { metrics, url: `http://127.0.0.1:${server.port}` };
}

describe("metrics exposition (prom-client)", () => {
  test("families keep their names and labels; a counter can be set to a total kept elsewhere; scrape.ts reads them back", async () => {
    const m = new EngineMetrics();
    m.recordsIn.add({ topic: "body" }, 5);
    m.recordsIn.add({ topic: "body" }, 2);
    m.recordsOut.add({ topic: "completed", situation: "COMPLETED" }, 3);
    m.recordsOut.add({ topic: "dlq", situation: "DEAD_LETTER" }, 1);
    m.priceSaturated.set({}, 4.5);
    m.priceSaturated.set({}, 6.25);
    m.openCars.set({}, 9);
    m.partitionPaused.set({ topic: "wheel", partition: 3, reason: "lane_full" }, 1);
    m.partitionStalled.set({ partition: 2, reason: "no_room" }, 1);
    m.partitionStalled.removeWhere({ partition: 2 });
    m.commitLatency.observe(0.02);
    const text = await m.render();
    expect(text).toContain('rccar_records_in_total{topic="body"} 7');
    expect(text).toContain('rccar_records_out_total{topic="completed",situation="COMPLETED"} 3');
    expect(text).toContain("rccar_price_saturated_seconds_total 6.25");
    expect(text).toContain('rccar_partition_paused{topic="wheel",partition="3",reason="lane_full"} 1');
    expect(text).not.toContain("rccar_partition_stalled{");
    expect(text).toContain('rccar_commit_seconds_bucket{le="0.025"} 1');
    // prom-client's process metrics carry values under Bun; the ones Bun leaves empty are gone.
    expect(Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(0);
    expect(text).not.toContain("nodejs_gc_duration_seconds");
    const parsed = parseMetrics(text);
    expect(parsed.recordsIn).toBe(7);
    expect(parsed.carsOut).toEqual({ COMPLETED: 3 });
    expect(parsed.deadLetters).toBe(1);
    expect(parsed.openCars).toBe(9);
    expect(parsed.priceSaturatedS).toBe(6.25);
    expect(parsed.rssBytes).toBeGreaterThan(0);
    expect(parsed.heapUsedBytes.main).toBeGreaterThan(0);
  });

  test("recent dead letters keep the last 50, newest first", () => {
    const m = new EngineMetrics();
    for (let i = 0; i < 60; i++) m.recentDeadLetters.push({ at: i, topic: "body", partition: 0, offset: String(i), reason: `bad ${i}` });
    const list = m.recentDeadLetters.list();
    expect(list.length).toBe(50);
    expect(list[0]!.offset).toBe("59");
    expect(list[49]!.offset).toBe("10");
  });
});

describe("status page", () => {
  test.skipIf(!existsSync(CHROMIUM))(
    "in chromium: no console errors, numbers move while the engine works and then equal /metrics",
    async () => {
      const s = (current = await stack("status-page"));
      await s.engine.start();
      const { page, errors } = await openPage(`${s.engine.url}/`);
      expect(await page.title()).toContain("engine status");

      // Paced input, so the run lasts long enough for the page (polling each second) to follow it.
      const gen = generate({ cars: 400, seed: 71, rate: 80, missingEngine: 0.05, missingWheels: 0.05, malformedRate: 0.02 }, s.kafka);
      let manifest: Awaited<typeof gen> | undefined;
      void gen.then((mf) => (manifest = mf));
      // What the page showed while the engine worked, read every 300 ms until the engine is done.
      const seenIn = new Set<number>();
      const seenOut = new Set<number>();
      const deadline = Date.now() + 120_000;
      let done = false;
      let midRunShot: string | undefined;
      while (!done && Date.now() < deadline) {
        const [i, o] = [await shown(page, "records-in"), await shown(page, "cars-out")];
        if (i !== undefined) seenIn.add(i);
        if (o !== undefined) seenOut.add(o);
        if (!midRunShot && o !== undefined && o > 100) midRunShot = await screenshot(page, "status-page-running.png");
        done = manifest !== undefined && (await engineCaughtUp(s.engine, manifest, 0));
        await Bun.sleep(300);
      }
      expect(done).toBe(true);
      const m = (await s.engine.metrics())!;
      const finalOut = Object.values(m.carsOut).reduce((a, b) => a + b, 0);
      // The page followed the run: totals strictly between nothing and the end, without a reload.
      expect([...seenIn].some((v) => v > 0 && v < m.recordsIn)).toBe(true);
      expect([...seenOut].some((v) => v > 0 && v < finalOut)).toBe(true);
      // The throughput chart drew the run.
      expect(await page.locator("#chart-throughput polyline").count()).toBeGreaterThan(0);
      manifest = manifest!;

      const situations = [...new Set(manifest.cars.map((c) => c.situation))];
      expect(situations.length).toBeGreaterThan(1);
      // The engine is idle now: within a few polls the page shows exactly what /metrics says.
      const agrees = async () => {
        if ((await shown(page, "records-in")) !== m.recordsIn) return false;
        if ((await shown(page, "out-DEAD_LETTER")) !== m.deadLetters) return false;
        for (const sit of situations) if ((await shown(page, `out-${sit}`)) !== (m.carsOut[sit] ?? 0)) return false;
        return (await shown(page, "cars-out")) === finalOut;
      };
      expect(await until(agrees, 10_000, 250)).toBe(true);
      expect(m.recordsIn).toBeGreaterThanOrEqual(manifest.counts.recordsSent);
      expect(await shown(page, "dead-letters")).toBe(manifest.deadLetters.length);

      await screenshot(page, "status-page.png");
      expect(errors).toEqual([]);
    },
    240_000,
  );

  test.skipIf(!existsSync(CHROMIUM))(
    "in chromium: paused and stalled partitions, watermark delays, restores and dead letters' reasons as the engine reports them",
    async () => {
      const { metrics: m, url } = servedMetrics();
      for (const p of [0, 1, 2]) {
        m.consumerLag.set({ topic: "body", partition: p }, 100 * p);
        m.consumerLag.set({ topic: "wheel", partition: p }, 10 * p);
        m.partitionWatermarkDelay.set({ partition: p }, 1.5 + p);
        m.partitionLastProgress.set({ partition: p }, Date.now() / 1000 - 40 * p);
      }
      m.partitionPaused.set({ topic: "wheel", partition: 1, reason: "lane_full" }, 1);
      m.partitionPaused.set({ topic: "body", partition: 0, reason: "no_room" }, 0);
      m.partitionStalled.set({ partition: 2, reason: "input waiting, no progress for 30 s" }, 1);
      m.restores.add({}, 3);
      m.rebuilds.add({}, 1);
      m.restoreSeconds.observe(0.4);
      m.recentDeadLetters.push({ at: Date.now() - 2000, topic: "rc-body", partition: 1, offset: "41", reason: "invalid JSON" });
      m.recentDeadLetters.push({ at: Date.now(), topic: "rc-wheel", partition: 2, offset: "7", reason: "<b>not markup</b> OVERSIZED" });
      const { page, errors } = await openPage(`${url}/`);
      expect(await shown(page, "paused")).toBe(1);
      expect(await shown(page, "stalled")).toBe(1);
      expect(await shown(page, "lag")).toBe(330);
      expect(await page.locator('tr[data-partition="1"]').innerText()).toContain("paused wheel: lane_full");
      expect(await page.locator('tr[data-partition="0"]').innerText()).toContain("running");
      expect(await page.locator('tr[data-partition="2"]').innerText()).toContain("stalled: input waiting, no progress for 30 s");
      expect(await page.locator('tr[data-partition="2"]').innerText()).toContain("3.5 s");
      expect(await page.locator('[data-metric="restores"]').innerText()).toContain("3 · 1");
      const dead = await page.locator("#dead-letters").innerText();
      expect(dead.indexOf("<b>not markup</b> OVERSIZED")).toBeGreaterThanOrEqual(0);
      expect(dead.indexOf("OVERSIZED")).toBeLessThan(dead.indexOf("invalid JSON"));

      // Numbers move on the page as the metrics move, without a reload.
      m.recordsIn.add({ topic: "rc-body" }, 1234);
      m.partitionStalled.set({ partition: 2, reason: "input waiting, no progress for 30 s" }, 0);
      expect(await until(async () => (await shown(page, "records-in")) === 1234 && (await shown(page, "stalled")) === 0, 5000, 100)).toBe(true);
      await screenshot(page, "status-page-states.png");
      expect(errors).toEqual([]);
    },
    60_000,
  );
});
