// Event time: the live emission of a lone incomplete car, and a backlog read after downtime.
// Also bad input in the mix, bad configuration, and a polite SIGTERM.
import { afterEach, describe, expect, test } from "bun:test";
import type { Car } from "../src/domain.ts";
import { createKafka } from "../src/kafka.ts";
import { engineCaughtUp, generate, stack, verifyOutputs, type Stack } from "./support/stack.ts";

let current: Stack | undefined;
afterEach(async () => {
  await current?.engine.kill9();
  await current?.api.stop();
  current = undefined;
});

describe("engine: event time and input", () => {
  test("a car missing its engine on a quiet stream is visible as MISSING_ENGINE 5.0–6.0 s after its first part", async () => {
    const s = (current = await stack("timing", { api: { delayMaxMs: 10 } }));
    await s.engine.start();
    // A read_committed consumer, joined before the car is produced, notes when the car shows up.
    const consumer = createKafka(s.kafka, "timing-reader").consumer({ groupId: `${s.kafka.topicPrefix}reader`, readUncommitted: false, maxWaitTimeInMs: 50 });
    await consumer.connect();
    await consumer.subscribe({ topic: s.topics.incomplete, fromBeginning: true });
    const seen: Array<{ car: Car; at: number }> = [];
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
    await consumer.run({ eachMessage: async ({ message }) => void seen.push({ car: JSON.parse(message.value!.toString()) as Car, at: Date.now() }) });
    while (!joined) await Bun.sleep(50);
    try {
      const manifest = await generate({ cars: 1, seed: 61, missingEngine: 1 }, s.kafka);
      expect(manifest.cars.map((c) => c.situation)).toEqual(["MISSING_ENGINE"]);
      const deadline = Date.now() + 15_000;
      while (seen.length === 0 && Date.now() < deadline) await Bun.sleep(20);
      expect(seen.length).toBe(1);
      const { car, at } = seen[0]!;
      expect(car.situation).toBe("MISSING_ENGINE");
      expect(car.firstPartAt).toBe(manifest.cars[0]!.firstPartAt);
      const afterFirstPart = at - car.firstPartAt;
      expect(afterFirstPart).toBeGreaterThanOrEqual(5000);
      expect(afterFirstPart).toBeLessThanOrEqual(6000);
    } finally {
      await consumer.disconnect();
    }
  }, 60_000);

  test("backlog: 2,000 cars with late parts and every kind of bad record produced while the engine is stopped, then it starts → exactly the manifest; the engine never exits", async () => {
    const s = (current = await stack("backlog"));
    const manifest = await generate(
      { cars: 2000, seed: 62, lateRate: 0.05, missingBody: 0.02, missingWheels: 0.02, dupRate: 0.05, conflictRate: 0.03, malformedRate: 0.05 },
      s.kafka,
    );
    // Every malformed class of SPEC §8 is in the input.
    const classes = new Set<string>(manifest.deadLetters.map((d) => d.class));
    for (const cls of ["OVERSIZED", "NOT_JSON", "MISSING_FIELD", "WRONG_TYPE", "BAD_VALUE", "CONFLICT"]) expect(classes).toContain(cls);
    expect(manifest.counts.late).toBeGreaterThan(0);
    await s.engine.start();
    expect(await engineCaughtUp(s.engine, manifest, 120_000)).toBe(true);
    const report = await verifyOutputs(s.kafka, manifest);
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
    expect(s.engine.exited()).toBe(false);
  }, 180_000);

  test("SIGTERM commits what was processed and exits 0; a restart resumes without re-emitting", async () => {
    const s = (current = await stack("sigterm", { api: { delayMaxMs: 50 } }));
    await s.engine.start();
    const first = await generate({ cars: 300, seed: 63, missingRemote: 0.05 }, s.kafka);
    expect(await engineCaughtUp(s.engine, first, 60_000)).toBe(true);
    expect(await s.engine.stop()).toBe(0);
    const second = await generate({ cars: 300, seed: 64, missingRemote: 0.05 }, s.kafka);
    await s.engine.start();
    const both = { ...second, cars: [...first.cars, ...second.cars], deadLetters: [...first.deadLetters, ...second.deadLetters] };
    expect(await engineCaughtUp(s.engine, second, 60_000)).toBe(true);
    const report = await verifyOutputs(s.kafka, both);
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
  }, 180_000);

  test("bad configuration stops the engine at start with one line naming the setting", () => {
    for (const [env, name] of [
      [{ PRICE_MAX_IN_FLIGHT: "0" }, "PRICE_MAX_IN_FLIGHT"],
      [{ JOIN_TIMEOUT_MS: "soon" }, "JOIN_TIMEOUT_MS"],
      [{ KAFKA_BROKERS: "no port here" }, "KAFKA_BROKERS"],
      [{ PRICE_API_URL: "ftp://x" }, "PRICE_API_URL"],
      [{ WORKERS: "8", SHARDS: "4" }, "SHARDS"],
    ] as const) {
      const r = Bun.spawnSync([process.execPath, "src/cli/engine.ts"], { env: { ...process.env, ...env }, stderr: "pipe", stdout: "pipe" });
      expect(r.exitCode).toBe(2);
      const lines = r.stderr.toString().trim().split("\n");
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain(name);
    }
  });
});
