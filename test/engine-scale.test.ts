// Scale-out (SPEC §9): two engine processes in one consumer group share the partitions; one
// is SIGKILLed mid-run and the other takes its partitions over from the changelog.
import { afterEach, describe, expect, test } from "bun:test";
import { EngineProcess, generate, stack, until, verifyOutputs, type Stack } from "./support/stack.ts";

let current: Stack | undefined;
let second: EngineProcess | undefined;
afterEach(async () => {
  await current?.engine.kill9();
  await second?.kill9();
  await current?.api.stop();
  current = undefined;
  second = undefined;
});

describe("engine: scale-out", () => {
  test("two instances share the input; one SIGKILLed mid-run, the other takes over: every car exactly once", async () => {
    const s = (current = await stack("scale", { api: { delayMinMs: 0, delayMaxMs: 100 }, engineEnv: { SESSION_TIMEOUT_MS: "3000" } }));
    const env = {
      KAFKA_BROKERS: s.kafka.brokers.join(","),
      TOPIC_PREFIX: s.kafka.topicPrefix,
      GROUP_ID: `${s.kafka.topicPrefix}group`,
      PRICE_API_URL: s.api.url,
      SESSION_TIMEOUT_MS: "3000",
    };
    second = new EngineProcess(`${s.kafka.topicPrefix}engine-b`, env);
    await s.engine.start();
    await second.start();
    // Both own partitions once the group has settled.
    const owned = async (e: EngineProcess) =>
      (
        (await fetch(`${e.url}/ready`)
          .then((r) => r.json())
          .catch(() => ({ partitions: [] }))) as { partitions: number[] }
      ).partitions.length;
    expect(await until(async () => (await owned(s.engine)) > 0 && (await owned(second!)) > 0, 30_000, 200)).toBe(true);
    const generating = generate({ cars: 2000, seed: 71, rate: 400, missingEngine: 0.03, dupRate: 0.03, conflictRate: 0.01 }, s.kafka);
    await until(async () => ((await second!.metrics())?.recordsIn ?? 0) > 1500, 30_000, 20);
    await second.kill9();
    const manifest = await generating;
    // The survivor ends up with every partition.
    expect(await until(async () => (await owned(s.engine)) === 4, 60_000, 250)).toBe(true);
    const report = await verifyOutputs(s.kafka, manifest, { timeoutMs: 120_000 });
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
  }, 240_000);
});
