// The engine's status page in a real headless browser (Debian's chromium driven by
// playwright-core): it loads without console errors, its numbers move while the engine works,
// and once the run is done they equal what /metrics says.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { engineCaughtUp, generate, stack, until, type Stack } from "./support/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const SHOTS = resolve(import.meta.dir, "..", ".local", "screenshots");

let current: Stack | undefined;
let browser: BrowserContext | undefined;
let profile: string | undefined;
afterEach(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await current?.engine.kill9();
  await current?.api.stop();
  browser = current = profile = undefined;
});

/** The exact number behind a tile or an outcome of the page (its data-value attribute). */
async function shown(page: Page, metric: string): Promise<number | undefined> {
  const v = await page.locator(`[data-metric="${metric}"]`).first().getAttribute("data-value", { timeout: 2000 }).catch(() => null);
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

describe("status page", () => {
  test.skipIf(!existsSync(CHROMIUM))(
    "in chromium: no console errors, numbers move while the engine works and then equal /metrics",
    async () => {
      const s = (current = await stack("status-page"));
      await s.engine.start();
      const { page, errors } = await openPage(`${s.engine.url}/`);
      expect(await page.title()).toContain("engine status");

      // Paced input, so the run lasts long enough for the page (polling each second) to follow it.
      const seen = new Set<number>();
      const gen = generate({ cars: 400, seed: 71, rate: 80, missingEngine: 0.05, missingWheels: 0.05, malformedRate: 0.02 }, s.kafka);
      let generating = true;
      void gen.finally(() => (generating = false));
      while (generating) {
        const v = await shown(page, "records-in");
        if (v !== undefined) seen.add(v);
        await Bun.sleep(300);
      }
      const manifest = await gen;
      // The page followed the run: several different totals while records were arriving.
      expect(seen.size).toBeGreaterThanOrEqual(3);
      // The throughput chart drew the run (a line, with a non-zero point).
      expect(await page.locator("#chart-throughput polyline").count()).toBeGreaterThan(0);

      expect(await engineCaughtUp(s.engine, manifest, 90_000)).toBe(true);
      const m = (await s.engine.metrics())!;
      const situations = [...new Set(manifest.cars.map((c) => c.situation))];
      expect(situations.length).toBeGreaterThan(1);
      // The engine is idle now: within a few polls the page shows exactly what /metrics says.
      const agrees = async () => {
        if ((await shown(page, "records-in")) !== m.recordsIn) return false;
        if ((await shown(page, "out-DEAD_LETTER")) !== m.deadLetters) return false;
        for (const sit of situations) if ((await shown(page, `out-${sit}`)) !== (m.carsOut[sit] ?? 0)) return false;
        return (await shown(page, "cars-out")) === Object.values(m.carsOut).reduce((a, b) => a + b, 0);
      };
      expect(await until(agrees, 10_000, 250)).toBe(true);
      expect(m.recordsIn).toBeGreaterThanOrEqual(manifest.counts.recordsSent);
      expect(await shown(page, "dead-letters")).toBe(manifest.deadLetters.length);

      mkdirSync(SHOTS, { recursive: true });
      const shot = join(SHOTS, "status-page.png");
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`status page screenshot: ${shot}`);
      expect(errors).toEqual([]);
    },
    240_000,
  );
});
