// Producers with a wrong clock (SPEC §3): a part stamped a day ahead, or with no usable
// timestamp, among normal live traffic. Each is exactly one dead letter and changes no other
// car's outcome. The input topics are created without the broker-side guard, as a user's
// existing topics may be (a guarded topic refuses such records before the engine sees them).
import { afterEach, describe, expect, test } from "bun:test";
import type { DeadLetter } from "../src/domain.ts";
import { readOutputs } from "../src/verify/reader.ts";
import { generate, stack, until, verifyOutputs, type Stack } from "./support/stack.ts";

let current: Stack | undefined;
afterEach(async () => {
  await current?.engine.kill9();
  await current?.api.stop();
  current = undefined;
});

async function deadLetterClasses(s: Stack): Promise<Map<string, number>> {
  const read = await readOutputs(s.kafka, [s.topics.dlq], { quietMs: 1500, timeoutMs: 30_000 });
  const counts = new Map<string, number>();
  for (const r of read.records) {
    const cls = (JSON.parse(Buffer.from(r.value!).toString()) as DeadLetter).reason.split(":")[0]!;
    counts.set(cls, (counts.get(cls) ?? 0) + 1);
  }
  return counts;
}

describe("engine: producer clocks", () => {
  test("one part stamped a day ahead among 1,500 live cars: one FUTURE_TIMESTAMP dead letter, every other car exact", async () => {
    const s = (current = await stack("clock-one", { api: { delayMinMs: 0, delayMaxMs: 50 }, topics: { timestampGuard: false } }));
    await s.engine.start();
    const manifest = await generate({ cars: 1500, seed: 91, rate: 300, missingEngine: 0.02, futureStamped: 1 }, s.kafka);
    expect(manifest.counts.futureStamped).toBe(1);
    const report = await verifyOutputs(s.kafka, manifest);
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
    expect((await deadLetterClasses(s)).get("FUTURE_TIMESTAMP")).toBe(1);
  }, 180_000);

  test("several future-stamped and negative-stamped parts on several partitions, with a SIGKILL and restart in between: each exactly one dead letter, every other car exact", async () => {
    const s = (current = await stack("clock-many", { api: { delayMinMs: 0, delayMaxMs: 50 }, topics: { timestampGuard: false } }));
    await s.engine.start();
    const generating = generate({ cars: 2000, seed: 92, rate: 300, missingBody: 0.02, dupRate: 0.02, futureStamped: 8, badTimestamp: 4 }, s.kafka);
    await until(async () => ((await s.engine.metrics())?.recordsIn ?? 0) > 5000, 60_000, 20);
    await s.engine.kill9();
    await s.engine.start();
    const manifest = await generating;
    const partitions = new Set(manifest.deadLetters.filter((d) => d.class === "FUTURE_TIMESTAMP").map((d) => d.partition));
    expect(partitions.size).toBeGreaterThan(1);
    const report = await verifyOutputs(s.kafka, manifest);
    expect(report.problems).toEqual({});
    expect(report.ok).toBe(true);
    const classes = await deadLetterClasses(s);
    expect(classes.get("FUTURE_TIMESTAMP")).toBe(8);
    expect(classes.get("BAD_TIMESTAMP")).toBe(4);
  }, 240_000);
});
