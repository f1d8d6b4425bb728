// The join worker's changelog writes (a real JoinPool: worker threads, no broker). Within one
// task only a car's last state is written, and a carId that had no entry when the task began
// and ends deleted in it writes nothing: no tombstone for a key that was never committed.
import { afterAll, describe, expect, test } from "bun:test";
import type { InputRole, Part, PartKind, WheelPlacement } from "../src/domain.ts";
import { JoinPool } from "../src/join/pool.ts";
import type { JoinOutput, TickRecord } from "../src/join/protocol.ts";
import { ROLE_INDEX } from "../src/domain.ts";
import { encodeCarState, decodeCarState } from "../src/join/codec.ts";
import { packParts } from "../src/join/car.ts";

const T = 5000;
const topics = { body: "b", engine: "e", remoteControl: "r", wheel: "w" } satisfies Record<InputRole, string>;
const pools: JoinPool[] = [];
const poolOf = (dedupRetentionMs: number) => {
  const p = new JoinPool({ partitions: 1, workers: 1, shards: 4, joinTimeoutMs: T, dedupRetentionMs, maxPartBytes: 65536, topics });
  pools.push(p);
  return p;
};
afterAll(async () => {
  for (const p of pools) await p.close();
});

const SLOTS: Array<[InputRole, PartKind, string, WheelPlacement?]> = [
  ["body", "BODY", "B"],
  ["engine", "ENGINE", "E"],
  ["remoteControl", "REMOTE_CONTROL", "R"],
  ["wheel", "WHEEL", "FL", "FRONT_LEFT"],
  ["wheel", "WHEEL", "FR", "FRONT_RIGHT"],
  ["wheel", "WHEEL", "RL", "REAR_LEFT"],
  ["wheel", "WHEEL", "RR", "REAR_RIGHT"],
];
function partOf(carId: string, kind: PartKind, id: string, placement?: WheelPlacement): Part {
  const base = { carId, partId: `${carId}-${id}`, sku: `${kind}-1` };
  if (kind === "BODY") return { ...base, color: "red", material: "ABS", weightKg: 1 };
  if (kind === "REMOTE_CONTROL") return { ...base, channelFrequency: "RF_27" };
  if (kind === "WHEEL") return { ...base, placement: placement! };
  return base;
}
let offset = 0;
function records(carId: string, slots: typeof SLOTS, at: number): TickRecord[] {
  return slots.map(([role, kind, id, pl], i) => ({
    lane: ROLE_INDEX[role],
    replay: false,
    record: { offset: String(offset++), timestamp: at + i, key: Buffer.from(carId), value: Buffer.from(JSON.stringify(partOf(carId, kind, id, pl))) },
  }));
}
/** One task: the records all join (the safe time passes them), then windows close up to `watermark`. */
const tick = async (pool: JoinPool, recs: TickRecord[], watermark: number): Promise<JoinOutput[]> => {
  const safeTime = Math.max(watermark, ...recs.map((r) => r.record.timestamp + 1));
  return (await pool.process([{ partition: 0, records: recs, safeTime }])).flatMap((r) => r.outputs);
};
const states = (outs: JoinOutput[]) =>
  outs.flatMap((o) => (o.type === "state" ? [{ carId: o.carId, value: o.value === null ? null : decodeCarState(o.value) }] : []));
const emitted = (outs: JoinOutput[]) => outs.flatMap((o) => (o.type === "emit" ? [o.car.carId] : []));

describe("changelog writes per task", () => {
  test("retention 0: a car opened and finished in one task writes no join state at all", async () => {
    const pool = poolOf(0);
    const outs = await tick(pool, records("a", SLOTS, 1000), 0);
    expect(emitted(outs)).toEqual(["a"]);
    expect(states(outs)).toEqual([]);
    // Closed incomplete by the watermark in the same task: nothing either.
    const late = await tick(pool, records("b", SLOTS.slice(0, 2), 2000), 2000 + T);
    expect(emitted(late)).toEqual(["b"]);
    expect(states(late)).toEqual([]);
  });

  test("retention 0: a car written in an earlier task gets its tombstone when it finishes", async () => {
    const pool = poolOf(0);
    expect(states(await tick(pool, records("c", SLOTS.slice(0, 3), 1000), 0)).map((s) => s.carId)).toEqual(["c"]);
    const outs = await tick(pool, records("c", SLOTS.slice(3), 1100), 0);
    expect(emitted(outs)).toEqual(["c"]);
    expect(states(outs)).toEqual([{ carId: "c", value: null }]);
  });

  test("retention 0: a restored car counts as written", async () => {
    const pool = poolOf(0);
    const restored = {
      open: {
        firstPartAt: 1000,
        parts: packParts(
          "d",
          SLOTS.slice(0, 3).map(([, kind, id, pl]) => ({ kind, part: partOf("d", kind, id, pl) })),
        ),
      },
    };
    await pool.restore(0, [["d", encodeCarState(restored)]]);
    const outs = await tick(pool, records("d", SLOTS.slice(3), 1100), 0);
    expect(emitted(outs)).toEqual(["d"]);
    expect(states(outs)).toEqual([{ carId: "d", value: null }]);
  });

  test("retention 0: a car written before, finished and reopened in one task writes its new window", async () => {
    const pool = poolOf(0);
    await tick(pool, records("e", SLOTS.slice(0, 3), 1000), 0);
    const outs = await tick(
      pool,
      [
        ...records("e", SLOTS.slice(3), 1100),
        ...records(
          "e",
          [SLOTS[0]!].map(([r, k]) => [r, k, "B2"] as (typeof SLOTS)[number]),
          1200,
        ),
      ],
      0,
    );
    expect(emitted(outs)).toEqual(["e"]);
    expect(states(outs).map((s) => [s.carId, s.value?.open?.firstPartAt])).toEqual([["e", 1200]]);
  });

  test("with a dedup retention the finished car writes only its remembered partIds, once", async () => {
    const pool = poolOf(60_000);
    const outs = await tick(pool, records("f", SLOTS, 1000), 0);
    expect(emitted(outs)).toEqual(["f"]);
    expect(states(outs)).toEqual([{ carId: "f", value: { recent: [{ partIds: SLOTS.map(([, , id]) => `f-${id}`), until: 1006 + 60_000 }] } }]);
  });
});
