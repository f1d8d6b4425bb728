// Crashes: the engine SIGKILLed at random instants (while cars wait for prices, mid-
// transaction). The outputs must equal the manifest, which is exactly what a crash-free run
// produces on the same input. Broker restarts are in test/engine-faults.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { generate, stack, verifyOutputs, type Stack } from "./support/stack.ts";
import { createRng } from "../src/generate/prng.ts";

let current: Stack | undefined;
afterEach(async () => {
  await current?.engine.kill9();
  await current?.api.stop();
  current = undefined;
});

describe("engine: crashes", () => {
  test("5,000 cars, engine SIGKILLed at random instants 10+ times: outputs equal a crash-free run", async () => {
    // A short session so each restart's rebalance does not wait long for the killed member.
    const s = (current = await stack("chaos", { api: { delayMinMs: 0, delayMaxMs: 300 }, engineEnv: { SESSION_TIMEOUT_MS: "3000" } }));
    const random = createRng(99).next;
    await s.engine.start();
    const generating = generate(
      { cars: 5000, seed: 31, rate: 400, missingEngine: 0.02, missingWheels: 0.02, dupRate: 0.03, conflictRate: 0.01, lateRate: 0.01, malformedRate: 0.01 },
      s.kafka,
    );
    let finished = false;
    void generating.finally(() => (finished = true));
    let kills = 0;
    let killedWhileWaiting = 0;
    // Keep killing while input flows and for a while after, so some kills land while cars
    // wait for prices and some mid-transaction (a commit every 50 ms: most instants are).
    while (kills < 12 || !finished) {
      await Bun.sleep(300 + random() * 1200);
      const m = await s.engine.metrics();
      if ((m?.waiting ?? 0) > 0) killedWhileWaiting++;
      await s.engine.kill9();
      kills++;
      await s.engine.start();
    }
    const manifest = await generating;
    const report = await verifyOutputs(s.kafka, manifest, { timeoutMs: 180_000 });
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(killedWhileWaiting).toBeGreaterThan(0);
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
  }, 600_000);
});
