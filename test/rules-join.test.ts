// The join rules of SPEC §4 on the pure core (no broker): JoinShard and its timers.
import { describe, expect, test } from "bun:test";
import type { Car, Part, PartKind, WheelPlacement } from "../src/domain.ts";
import { JoinShard, type JoinEffect } from "../src/join/shard.ts";
import { TimerHeap } from "../src/join/timers.ts";
import { decodeCarState, encodeCarState } from "../src/state/codec.ts";
import { createRng } from "../src/generate/prng.ts";

const T = 5000;
const RETENTION = 60_000;
const src = (offset: number) => ({ topic: "t", partition: 0, offset: String(offset) });

function part(carId: string, kind: PartKind, id: string, placement?: WheelPlacement): Part {
  const base = { carId, partId: `${carId}-${id}`, sku: `${kind}-SKU` };
  if (kind === "BODY") return { ...base, color: "red", material: "abs", weightKg: 1.5 };
  if (kind === "REMOTE_CONTROL") return { ...base, channelFrequency: "RF_27" };
  if (kind === "WHEEL") return { ...base, placement: placement ?? "FRONT_LEFT" };
  return base;
}

const fullCar = (carId: string): Array<[PartKind, string, WheelPlacement?]> => [
  ["BODY", "B"],
  ["ENGINE", "E"],
  ["REMOTE_CONTROL", "R"],
  ["WHEEL", "FL", "FRONT_LEFT"],
  ["WHEEL", "FR", "FRONT_RIGHT"],
  ["WHEEL", "RL", "REAR_LEFT"],
  ["WHEEL", "RR", "REAR_RIGHT"],
].map(([k, id, pl]) => [k as PartKind, id as string, pl as WheelPlacement | undefined]);

const emits = (effects: JoinEffect[]): Car[] => effects.filter((e) => e.type === "emit").map((e) => (e as { car: Car }).car);
const letters = (effects: JoinEffect[]) => effects.filter((e) => e.type === "deadLetter") as Array<{ reason: string; part: Part }>;

function feed(shard: JoinShard, carId: string, parts: Array<[PartKind, string, WheelPlacement?]>, t0: number, step = 10): JoinEffect[] {
  const out: JoinEffect[] = [];
  parts.forEach(([kind, id, pl], i) => out.push(...shard.onPart(part(carId, kind, id, pl), kind, t0 + i * step, src(i))));
  return out;
}

describe("join rules", () => {
  test("a complete car leaves at its 7th part as AWAITING_PRICE, firstPartAt = first part's timestamp", () => {
    const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
    const six = feed(shard, "c1", fullCar("c1").slice(0, 6), 1000);
    expect(emits(six)).toEqual([]);
    const seventh = shard.onPart(part("c1", "WHEEL", "RR", "REAR_RIGHT"), "WHEEL", 1100, src(7));
    const [car] = emits(seventh);
    expect(car!.situation).toBe("AWAITING_PRICE");
    expect(car!.firstPartAt).toBe(1000);
    expect(car!.assembledAt).toBe(1100);
    expect(car!.missing).toEqual([]);
    expect(car!.wheels.map((w) => w.placement)).toEqual(["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"]);
    expect(shard.openCars()).toBe(0);
  });

  test("four different placements are required: a second FRONT_LEFT is a CONFLICT and the car keeps the first", () => {
    const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
    const parts = fullCar("c2");
    parts[6] = ["WHEEL", "FL2", "FRONT_LEFT"];
    const effects = feed(shard, "c2", parts, 0);
    expect(emits(effects)).toEqual([]);
    const dl = letters(effects);
    expect(dl.length).toBe(1);
    expect(dl[0]!.reason.startsWith("CONFLICT:")).toBe(true);
    expect(dl[0]!.part.partId).toBe("c2-FL2");
    const [closed] = emits(shard.onWatermark(T));
    expect(closed!.situation).toBe("MISSING_WHEELS");
    expect(closed!.wheels.map((w) => w.partId)).toEqual(["c2-FL", "c2-FR", "c2-RL"]);
  });

  test("a second different body, engine or remote control is a CONFLICT", () => {
    for (const kind of ["BODY", "ENGINE", "REMOTE_CONTROL"] as const) {
      const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
      shard.onPart(part("c", kind, "1"), kind, 0, src(0));
      const dl = letters(shard.onPart(part("c", kind, "2"), kind, 5, src(1)));
      expect(dl.map((d) => d.reason.split(":")[0])).toEqual(["CONFLICT"]);
      const [car] = emits(shard.onWatermark(T));
      const kept = kind === "BODY" ? car!.body : kind === "ENGINE" ? car!.engine : car!.remoteControl;
      expect(kept!.partId).toBe("c-1");
    }
  });

  test("the watermark closes an incomplete car with every missing kind, the first naming the situation", () => {
    const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
    feed(shard, "c3", [["REMOTE_CONTROL", "R"], ["WHEEL", "FL", "FRONT_LEFT"]], 100);
    expect(emits(shard.onWatermark(100 + T - 1))).toEqual([]);
    const [car] = emits(shard.onWatermark(100 + T));
    expect(car!.situation).toBe("MISSING_BODY");
    expect(car!.missing).toEqual(["BODY", "ENGINE", "WHEELS"]);
    expect(car!.assembledAt).toBe(100 + T);
    const shard2 = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
    feed(shard2, "c4", fullCar("c4").filter(([k]) => k !== "ENGINE"), 0);
    const [c4] = emits(shard2.onWatermark(T));
    expect(c4!.situation).toBe("MISSING_ENGINE");
    expect(c4!.missing).toEqual(["ENGINE"]);
  });

  test("window boundary: a part at exactly firstPartAt + JOIN_TIMEOUT_MS opens a new window; one at −1 ms joins", () => {
    const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
    shard.onPart(part("c5", "BODY", "B"), "BODY", 0, src(0));
    shard.onPart(part("c5", "ENGINE", "E"), "ENGINE", T - 1, src(1));
    const effects = shard.onPart(part("c5", "REMOTE_CONTROL", "R"), "REMOTE_CONTROL", T, src(2));
    const [first] = emits(effects);
    expect(first!.firstPartAt).toBe(0);
    expect(first!.engine?.partId).toBe("c5-E");
    expect(first!.remoteControl).toBeUndefined();
    const [second] = emits(shard.onWatermark(2 * T));
    expect(second!.firstPartAt).toBe(T);
    expect(second!.remoteControl?.partId).toBe("c5-R");
    expect(second!.missing).toEqual(["BODY", "ENGINE", "WHEELS"]);
  });

  test("a duplicate partId is absorbed while the car is open and after it was emitted, within the retention", () => {
    const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
    shard.onPart(part("c6", "BODY", "B"), "BODY", 0, src(0));
    expect(shard.onPart(part("c6", "BODY", "B"), "BODY", 1, src(1))).toEqual([]);
    feed(shard, "c6", fullCar("c6").slice(1), 2);
    expect(shard.openCars()).toBe(0);
    // After emission, within the retention: absorbed, no new window.
    expect(shard.onPart(part("c6", "WHEEL", "FL", "FRONT_LEFT"), "WHEEL", 10_000, src(9))).toEqual([]);
    expect(shard.openCars()).toBe(0);
  });

  test("after the retention passed, the same partId opens a new window", () => {
    const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: 1000 });
    feed(shard, "c7", fullCar("c7"), 0);
    const forgotten = shard.onWatermark(60 + 1000 + 1);
    expect(forgotten.filter((e) => e.type === "state")).toEqual([{ type: "state", carId: "c7", state: null }]);
    const again = shard.onPart(part("c7", "BODY", "B"), "BODY", 5000, src(9));
    expect(shard.openCars()).toBe(1);
    expect(again.some((e) => e.type === "state" && e.state?.open?.body?.partId === "c7-B")).toBe(true);
  });

  test("a part after its car was emitted opens a new window that ends as an incomplete car of its own", () => {
    const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
    feed(shard, "c8", fullCar("c8").slice(0, 6), 0);
    expect(emits(shard.onWatermark(T)).map((c) => c.situation)).toEqual(["MISSING_WHEELS"]);
    shard.onPart(part("c8", "WHEEL", "RR", "REAR_RIGHT"), "WHEEL", T + 1500, src(9));
    const [late] = emits(shard.onWatermark(2 * T + 1500));
    expect(late!.situation).toBe("MISSING_BODY");
    expect(late!.wheels.map((w) => w.partId)).toEqual(["c8-RR"]);
    expect(late!.firstPartAt).toBe(T + 1500);
  });

  test("an older part arriving after a newer one moves the window start back", () => {
    const shard = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: RETENTION });
    shard.onPart(part("c9", "ENGINE", "E"), "ENGINE", 1000, src(0));
    shard.onPart(part("c9", "BODY", "B"), "BODY", 900, src(1));
    expect(emits(shard.onWatermark(900 + T - 1))).toEqual([]);
    const [car] = emits(shard.onWatermark(900 + T));
    expect(car!.firstPartAt).toBe(900);
  });

  test("restoring the changelog at any point gives the same future outputs as never stopping", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = createRng(seed).next;
      const stream = randomStream(random, 60);
      const cut = Math.floor(random() * stream.length);
      const straight = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: 2000 });
      const before = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: 2000 });
      const changelog = new Map<string, Uint8Array | null>();
      const expected: unknown[] = [];
      const got: unknown[] = [];
      const visible = (effects: JoinEffect[]) => effects.filter((e) => e.type !== "state");
      stream.forEach((step, i) => {
        const e = step.kind === "watermark" ? straight.onWatermark(step.at) : straight.onPart(step.part, step.partKind, step.at, src(i));
        if (i >= cut) expected.push(...visible(e));
        if (i < cut) {
          const b = step.kind === "watermark" ? before.onWatermark(step.at) : before.onPart(step.part, step.partKind, step.at, src(i));
          for (const x of b) if (x.type === "state") changelog.set(x.carId, x.state === null ? null : encodeCarState(x.state));
        }
      });
      const restored = new JoinShard({ joinTimeoutMs: T, dedupRetentionMs: 2000 });
      for (const [carId, bytes] of changelog) if (bytes !== null) restored.restore(carId, decodeCarState(bytes));
      stream.forEach((step, i) => {
        if (i < cut) return;
        const e = step.kind === "watermark" ? restored.onWatermark(step.at) : restored.onPart(step.part, step.partKind, step.at, src(i));
        got.push(...visible(e));
      });
      expect(got).toEqual(expected);
      expect(expected.length).toBeGreaterThan(0);
    }
  });
});

describe("timers", () => {
  test("pop in (due, carId) order, only what is due", () => {
    const h = new TimerHeap();
    const random = createRng(7).next;
    const added: Array<{ due: number; carId: string }> = [];
    for (let i = 0; i < 100_000; i++) {
      const t = { due: Math.floor(random() * 1_000_000), carId: `car-${i % 977}` };
      added.push(t);
      h.add(t.due, t.carId);
    }
    const half = h.popDue(500_000);
    expect(half.every((t) => t.due <= 500_000)).toBe(true);
    expect(half.length).toBe(added.filter((t) => t.due <= 500_000).length);
    for (let i = 1; i < half.length; i++) {
      const a = half[i - 1]!;
      const b = half[i]!;
      expect(a.due < b.due || (a.due === b.due && a.carId <= b.carId)).toBe(true);
    }
    expect(h.size).toBe(100_000 - half.length);
  });
});

// ---- helpers ------------------------------------------------------------------------------


type Step = { kind: "part"; part: Part; partKind: PartKind; at: number } | { kind: "watermark"; at: number };

/** Parts of `cars` cars in time order, with missing, duplicate, conflicting and late parts, and watermarks. */
function randomStream(random: () => number, cars: number): Step[] {
  const steps: Array<Step & { at: number }> = [];
  for (let c = 0; c < cars; c++) {
    const carId = `car-${c}`;
    const start = Math.floor(random() * 20_000);
    for (const [kind, id, pl] of fullCar(carId)) {
      if (random() < 0.1) continue; // missing
      const at = start + Math.floor(random() * (random() < 0.05 ? 9000 : 3000)); // sometimes late
      const p = part(carId, kind, id, pl);
      steps.push({ kind: "part", part: p, partKind: kind, at });
      if (random() < 0.08) steps.push({ kind: "part", part: p, partKind: kind, at: at + 1 + Math.floor(random() * 6000) }); // duplicate
      if (random() < 0.05) steps.push({ kind: "part", part: part(carId, kind, `${id}x`, pl), partKind: kind, at: at + 1 }); // conflict
    }
  }
  for (let t = 0; t < 40_000; t += 700) steps.push({ kind: "watermark", at: t });
  steps.sort((a, b) => a.at - b.at || (a.kind === "watermark" ? 1 : 0) - (b.kind === "watermark" ? 1 : 0));
  steps.push({ kind: "watermark", at: 100_000 });
  return steps;
}

