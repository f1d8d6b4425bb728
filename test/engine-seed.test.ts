// The seed's two tests: a priced 5,000-car run against the capped price API, and SIGKILL of
// the engine early in a 100-car run, repeated over several seeds.
import { afterEach, describe, expect, test } from "bun:test";
import { generate, stack, until, verifyOutputs, type Stack } from "./support/stack.ts";

let current: Stack | undefined;
afterEach(async () => {
  await current?.engine.kill9();
  await current?.api.stop();
  current = undefined;
});

describe("engine: seed tests", () => {
  test("5,000 cars, some missing parts, price API 0–800 ms capped at 5: every car exactly once, right situation and total", async () => {
    const s = (current = await stack("seed1", { api: { delayMinMs: 0, delayMaxMs: 800, maxConcurrency: 5 }, engineEnv: { PRICE_DEADLINE_MS: "30000" } }));
    await s.engine.start();
    const manifest = await generate(
      { cars: 5000, seed: 11, missingBody: 0.01, missingEngine: 0.02, missingRemote: 0.01, missingWheels: 0.02, skus: 20 },
      s.kafka,
    );
    const report = await verifyOutputs(s.kafka, manifest, { timeoutMs: 180_000 });
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
    const stats = s.api.stats();
    expect(stats.maxConcurrencySeen).toBeLessThanOrEqual(5);
    expect(stats.rejected).toBe(0);
    expect(stats.served).toBeGreaterThan(0);
  }, 300_000);

  for (const seed of [21, 22, 23]) {
    test(`100 cars, SIGKILL after a random 20–70 input records, restart: every car exactly once (seed ${seed})`, async () => {
      const s = (current = await stack(`seed2-${seed}`, { api: { delayMinMs: 0, delayMaxMs: 50 } }));
      await s.engine.start();
      const killAfter = 20 + ((seed * 7919) % 51);
      const generating = generate({ cars: 100, seed, rate: 50, missingEngine: 0.05, dupRate: 0.05 }, s.kafka);
      const reached = await until(async () => ((await s.engine.metrics())?.recordsIn ?? 0) >= killAfter, 30_000, 5);
      expect(reached).toBe(true);
      await s.engine.kill9();
      const manifest = await generating;
      await s.engine.start();
      const report = await verifyOutputs(s.kafka, manifest);
      expect(report.problems).toEqual({});
      expect(report.ok).toBe(true);
    }, 120_000);
  }
});
