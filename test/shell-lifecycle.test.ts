// Lifecycle rules of the engine shell (task.ts, task-manager.ts, thread.ts, pause-gate.ts),
// in-process with the kit of test/support/shell-kit.ts: fake consumer, sinks and changelog,
// the join in this thread, a manual clock.
import { describe, expect, test } from "bun:test";
import { INPUT_ROLES, type InputRole } from "../src/domain.ts";
import { findStalls } from "../src/engine/health.ts";
import { FakeSink, TOPICS, message, partMessage, shell, type Shell } from "./support/shell-kit.ts";
import { partitionOf } from "../src/join/route.ts";

async function owning(s: Shell, partitions: number[]): Promise<void> {
  s.input.assigned = partitions;
  s.tasks.assign(partitions);
  await s.turn();
  expect(s.tasks.ready()).toBe(true);
}

/** Evidence that every lane of partition p is at its log end now. */
function caughtUp(s: Shell, p: number, roles: readonly InputRole[] = INPUT_ROLES): void {
  for (const role of roles) s.tasks.task(p)!.markCaughtUp(role, s.clock.now());
}

/**
 * Turns until partition p has nothing left to hand over or join: the repartition hop means a
 * part is joined only once the safe time passes it (src/engine/safe-time.ts), i.e. after its
 * partition's watermark moved past it (the clock advances past the idle grace each turn) and
 * the marker announcing that came back (one turn later).
 */
async function untilJoined(s: Shell, p = 0, stepMs = 600): Promise<void> {
  for (let turn = 0; turn < 100; turn++) {
    s.clock.advance(stepMs);
    caughtUp(s, p);
    await s.turn();
    if (s.tasks.task(p)?.buffered() === 0 && !s.tasks.task(p)?.committing) return;
  }
  throw new Error(`partition ${p} still has records waiting after 100 turns`);
}

/** A carId whose partition (murmur2, two partitions) is `p`. */
function carOf(p: number, tag: string): string {
  for (let i = 0; ; i++) if (partitionOf(`${tag}-${i}`, 2) === p) return `${tag}-${i}`;
}

function wheels(from: number, n: number, at: number): ReturnType<typeof partMessage>[] {
  return Array.from({ length: n }, (_, i) => partMessage("wheel", `w-car-${from + i}`, `w-${from + i}`, from + i, at));
}

describe("shell: pauses", () => {
  test("a lane that filled pauses its topic-partition; the rebuild after a failed commit resumes it and reading goes on", async () => {
    const s = shell({ maxBufferedRecords: 10 });
    await owning(s, [0]);
    const t0 = s.clock.now();
    s.deliver("engine", 0, [partMessage("engine", "car-e", "e-0", 0, t0)]);
    caughtUp(s, 0, ["body", "remoteControl", "wheel"]);
    expect(s.deliver("wheel", 0, wheels(0, 10, t0 + 100))).toBe(10);
    expect(s.input.isPaused("wheel", 0)).toBe(true);

    // The engine record is released (its commit fails); the wheels wait behind the engine lane,
    // which is empty and not known to be caught up, so the wheel lane stays full and paused.
    s.kafka.failNext.add(0);
    await s.turn();
    expect(s.events).toContain("commit 0 failed");
    expect(s.input.isPaused("wheel", 0)).toBe(true);

    // Rebuilt from Kafka: the new task reads from the committed offsets and nothing is paused.
    s.input.seeks.length = 0;
    await s.turn();
    expect(s.events).toContain("closed 0 TaskCorruptedError");
    expect(s.events.filter((e) => e === "restored 0")).toHaveLength(2);
    expect(s.input.paused.size).toBe(0);
    expect(s.input.seeks).toEqual(["body:0@0", "engine:0@0", "remote:0@0", "wheel:0@0"]);

    // The consumer delivers from the committed offsets again; everything is processed and committed.
    s.deliver("engine", 0, [partMessage("engine", "car-e", "e-0", 0, t0)]);
    s.deliver("wheel", 0, wheels(0, 10, t0 + 100));
    await untilJoined(s);
    expect(s.kafka.committed.get("engine:0")).toBe("1");
    expect(s.kafka.committed.get("wheel:0")).toBe("10");
    expect(s.input.paused.size).toBe(0);
  });

  test("revoking a partition gives back every pause its task took", async () => {
    const s = shell({ maxBufferedRecords: 5 });
    await owning(s, [0, 1]);
    s.deliver("wheel", 1, wheels(0, 5, s.clock.now()));
    expect(s.input.isPaused("wheel", 1)).toBe(true);
    s.tasks.assign([0]);
    await s.turn();
    expect(s.events).toContain("closed 1 revoked");
    expect(s.input.paused.size).toBe(0);
  });

  /** Six parts of `carId` (all but the rear-right wheel) at `at`, from `offset` on each lane (the wheels from 3 × offset). */
  function sixParts(s: Shell, p: number, carId: string, offset: number, at: number): void {
    s.deliver("body", p, [partMessage("body", carId, `${carId}-b`, offset, at)]);
    s.deliver("engine", p, [partMessage("engine", carId, `${carId}-e`, offset, at)]);
    s.deliver("remoteControl", p, [partMessage("remoteControl", carId, `${carId}-r`, offset, at)]);
    s.deliver(
      "wheel",
      p,
      ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT"].map((pl, i) => partMessage("wheel", carId, `${carId}-w${i}`, 3 * offset + i, at, pl)),
    );
  }
  const lastWheel = (carId: string, offset: number, at: number) => partMessage("wheel", carId, `${carId}-w3`, offset, at, "REAR_RIGHT");
  const allPaused = (s: Shell, p: number) => INPUT_ROLES.every((r) => s.input.isPaused(r, p));

  test("release is bounded by the room for waiting cars; a full waiting set pauses every topic-partition until prices free it", async () => {
    const s = shell({ maxWaitingCars: 3 });
    await owning(s, [0]);
    const cars = 10;
    const at = s.clock.now();
    // Six parts of each car first: nothing completes, so every release has room.
    for (let c = 0; c < cars; c++) sixParts(s, 0, `car-${c}`, c, at + c);
    // Past the idle grace, then slowly: the cars' windows (5 s) must stay open.
    s.clock.advance(600);
    await untilJoined(s, 0, 100);
    expect(s.kafka.committed.get("wheel:0")).toBe("30");
    expect(s.pricing.waiting).toBe(0);
    // Now each released record completes a car.
    s.deliver(
      "wheel",
      0,
      Array.from({ length: cars }, (_, c) => lastWheel(`car-${c}`, 30 + c, at + c)),
    );
    caughtUp(s, 0);
    let maxWaiting = 0;
    let pausedWhileFull = false;
    for (let turn = 0; turn < 200 && s.kafka.outputs.length < cars; turn++) {
      await s.turn();
      maxWaiting = Math.max(maxWaiting, s.pricing.waiting);
      if (s.pricing.isFull()) pausedWhileFull ||= allPaused(s, 0);
      if (turn % 3 === 2) s.pricing.priceAll(s.clock.now());
      s.clock.advance(50);
    }
    expect(s.kafka.outputs.map((o) => o.key).sort()).toEqual(Array.from({ length: cars }, (_, c) => `car-${c}`).sort());
    expect(maxWaiting).toBe(3);
    expect(pausedWhileFull).toBe(true);
    await s.turn();
    expect(s.input.paused.size).toBe(0);
  });

  test("when every task's join is held back for room, every topic-partition pauses though the waiting set is short of full (two cars complete at one timestamp, one slot left)", async () => {
    const s = shell({ maxWaitingCars: 2 });
    await owning(s, [0]);
    const cars = ["car-0", "car-1", "car-2"];
    cars.forEach((c, i) => sixParts(s, 0, c, i, s.clock.now() + i));
    s.clock.advance(600);
    await untilJoined(s, 0, 100);
    // car-0's last wheel first, then car-1's and car-2's at one later timestamp (above the safe
    // time: not late, so the budget decides when they join).
    const now = s.clock.now();
    s.deliver("wheel", 0, [lastWheel("car-0", 9, now + 100), lastWheel("car-1", 10, now + 200), lastWheel("car-2", 11, now + 200)]);
    const seen = { waiting: 0, full: false, pausedShort: false };
    for (let turn = 0; turn < 40; turn++) {
      caughtUp(s, 0);
      await s.turn();
      seen.waiting = Math.max(seen.waiting, s.pricing.waiting);
      seen.full ||= s.pricing.isFull();
      if (s.pricing.waiting === 1) seen.pausedShort ||= allPaused(s, 0);
      s.clock.advance(50);
    }
    // The two cars at one timestamp never fit in the one slot left: the set stays at 1 and reading stopped.
    expect(seen).toEqual({ waiting: 1, full: false, pausedShort: true });
    expect([...s.tasks.task(0)!.pauses().values()].every((why) => why.includes("no_room"))).toBe(true);
    // A price frees the set: both go through together, then every car is out and reading resumes.
    s.pricing.priceAll(s.clock.now());
    for (let turn = 0; turn < 40 && s.kafka.outputs.length < 3; turn++) {
      caughtUp(s, 0);
      await s.turn();
      seen.waiting = Math.max(seen.waiting, s.pricing.waiting);
      if (s.pricing.waiting > 0) s.pricing.priceAll(s.clock.now());
      s.clock.advance(50);
    }
    expect(s.kafka.outputs.map((o) => o.key).sort()).toEqual(cars);
    expect(seen.waiting).toBe(2);
    await s.turn();
    expect(s.input.paused.size).toBe(0);
  });

  test("one task held back for room while another can still join on: reading goes on (it moves the safe time the other waits for) until the set is full", async () => {
    const s = shell({ maxWaitingCars: 2, partitions: 2 });
    await owning(s, [0, 1]);
    const [a, b, c] = [carOf(0, "held-a"), carOf(0, "held-b"), carOf(0, "held-c")];
    const d = carOf(1, "free-d");
    [a, b, c].forEach((car, i) => sixParts(s, 0, car, i, s.clock.now() + i));
    sixParts(s, 1, d, 0, s.clock.now());
    const both = () => {
      caughtUp(s, 0);
      caughtUp(s, 1);
    };
    for (let turn = 0; turn < 100 && s.tasks.task(0)!.buffered() + s.tasks.task(1)!.buffered() > 0; turn++) {
      s.clock.advance(100);
      both();
      await s.turn();
    }
    expect(s.tasks.task(0)!.buffered() + s.tasks.task(1)!.buffered()).toBe(0);
    // Partition 0: a completes, then b and c at one timestamp (one slot left after a: held).
    // Partition 1: d completes later, only once partition 0's watermark has moved past it.
    const now = s.clock.now();
    s.deliver("wheel", 0, [lastWheel(a, 9, now + 100), lastWheel(b, 10, now + 200), lastWheel(c, 11, now + 200)]);
    s.deliver("wheel", 1, [lastWheel(d, 3, now + 600)]);
    let readWhileOneHeld = false;
    let pausedBeforeFull = false;
    for (let turn = 0; turn < 60 && !s.pricing.isFull(); turn++) {
      both();
      await s.turn();
      if (s.tasks.task(0)!.heldForRoom && !s.tasks.task(1)!.heldForRoom) readWhileOneHeld ||= !allPaused(s, 0) && !allPaused(s, 1);
      if (!s.pricing.isFull()) pausedBeforeFull ||= allPaused(s, 0) || allPaused(s, 1);
      s.clock.advance(50);
    }
    expect({ readWhileOneHeld, pausedBeforeFull, full: s.pricing.isFull() }).toEqual({ readWhileOneHeld: true, pausedBeforeFull: false, full: true });
    await s.turn();
    expect(allPaused(s, 0) && allPaused(s, 1)).toBe(true);
  });
});

describe("shell: record cache", () => {
  function deliverCar(s: Shell, carId: string, n: number, at: number): void {
    s.deliver("body", 0, [partMessage("body", carId, `${carId}-b`, n, at)]);
    s.deliver("engine", 0, [partMessage("engine", carId, `${carId}-e`, n, at)]);
    s.deliver("remoteControl", 0, [partMessage("remoteControl", carId, `${carId}-r`, n, at)]);
    s.deliver(
      "wheel",
      0,
      ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"].map((pl, i) => partMessage("wheel", carId, `${carId}-w${i}`, 4 * n + i, at, pl)),
    );
    caughtUp(s, 0);
  }
  const waitingEntries = (s: Shell) =>
    s.kafka.changelogWrites.filter((r) => r.key!.startsWith("p/")).map((r) => `${r.key}=${r.value === null ? "tombstone" : "entry"}`);

  test("a car assembled and priced before its transaction starts writes no waiting-car entry and no tombstone", async () => {
    const s = shell({ instantPricing: true });
    await owning(s, [0]);
    deliverCar(s, "car-quick", 0, s.clock.now());
    await untilJoined(s);
    expect(s.kafka.outputs.filter((o) => o.topic === TOPICS.completed).map((o) => o.key)).toEqual(["car-quick"]);
    expect(waitingEntries(s)).toEqual([]);
  });

  test("a car priced after its transaction started writes its waiting-car entry, then the tombstone", async () => {
    const s = shell();
    await owning(s, [0]);
    const at = s.clock.now();
    deliverCar(s, "car-slow", 0, at);
    await untilJoined(s);
    expect(waitingEntries(s)).toEqual([`p/car-slow/${at}=entry`]);
    s.pricing.priceAll(s.clock.now());
    await s.turn();
    expect(waitingEntries(s)).toEqual([`p/car-slow/${at}=entry`, `p/car-slow/${at}=tombstone`]);
    expect(s.kafka.outputs.filter((o) => o.topic === TOPICS.completed).map((o) => o.key)).toEqual(["car-slow"]);
  });
});

describe("shell: rewinding and ownership", () => {
  test("records fetched before the task rewound to its committed offsets are dropped", async () => {
    const s = shell();
    await owning(s, [0]);
    const at = s.clock.now();
    const engines = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => partMessage("engine", `car-${from + i}`, `e-${from + i}`, from + i, at + from + i));
    caughtUp(s, 0, ["body", "remoteControl", "wheel"]);
    expect(s.deliver("engine", 0, engines(0, 5))).toBe(5);
    await untilJoined(s);
    expect(s.kafka.committed.get("engine:0")).toBe("5");

    s.deliver("engine", 0, engines(5, 10));
    caughtUp(s, 0);
    s.kafka.failNext.add(0);
    await s.turn();
    await s.turn(); // rebuilt: rewound to engine offset 5
    expect(s.input.seeks).toContain("engine:0@5");
    // A batch kafkajs fetched before the seek straddles the committed offset, then the refetch.
    expect(s.deliver("engine", 0, engines(3, 10))).toBe(5);
    expect(s.deliver("engine", 0, engines(5, 10))).toBe(0);
    await untilJoined(s);
    expect(s.kafka.committed.get("engine:0")).toBe("10");
    // Each car's state was written from one engine part each: ten open cars, none doubled.
    expect([...s.kafka.changelog.get(0)!.keys()].filter((k) => k.startsWith("j/")).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `j/car-${i}`).sort());
  });

  test("a task fenced by a newer owner is closed as migrated and not taken again before the group had time to move it", async () => {
    const s = shell();
    await owning(s, [0]);
    await new FakeSink(s.kafka, 0).open(); // another instance took partition 0
    s.deliver("engine", 0, [partMessage("engine", "car-x", "e-x", 0, s.clock.now())]);
    caughtUp(s, 0);
    await s.turn();
    expect(s.events).toContain("commit 0 failed");
    await s.turn();
    expect(s.events).toContain("closed 0 TaskMigratedError");
    expect(s.tasks.task(0)).toBeUndefined();
    s.clock.advance(5000);
    await s.turn();
    expect(s.tasks.task(0)).toBeUndefined();
    s.clock.advance(1001);
    await s.turn();
    expect(s.tasks.task(0)?.state).toBe("running");
  });
});

describe("shell: producer clocks (SPEC §3)", () => {
  test("a record stamped beyond MAX_CLOCK_SKEW_MS, or with no usable timestamp, is one dead letter and moves no watermark", async () => {
    const s = shell({ maxClockSkewMs: 60_000 });
    await owning(s, [0]);
    const now = s.clock.now();
    caughtUp(s, 0, ["body", "remoteControl", "wheel"]);
    s.deliver("engine", 0, [
      partMessage("engine", "car-a", "e-a", 0, now - 10),
      partMessage("engine", "car-future", "e-f", 1, now + 86_400_000),
      message(2, -1, "car-b", JSON.stringify({ carId: "car-b", partId: "e-b", sku: "S" })),
      partMessage("engine", "car-c", "e-c", 3, now + 59_000),
    ]);
    await s.turn();
    const task = s.tasks.task(0)!;
    expect(task.watermark()).toBe(now + 59_000);
    // car-c is joined once the clock passes its (legitimately early) timestamp.
    await untilJoined(s, 0, 30_000);
    const letters = s.kafka.outputs.filter((o) => o.topic === TOPICS.dlq).map((o) => JSON.parse(String(o.value)));
    expect(letters.map((l) => [l.offset, l.reason.split(":")[0]])).toEqual([
      ["1", "FUTURE_TIMESTAMP"],
      ["2", "BAD_TIMESTAMP"],
    ]);
    expect(letters[0].reason).toContain("86400000 ms ahead");
    expect(s.kafka.committed.get("engine:0")).toBe("4");
    // The two valid cars are open, the future one never joined.
    expect([...s.kafka.changelog.get(0)!.keys()].filter((k) => k.startsWith("j/")).sort()).toEqual(["j/car-a", "j/car-c"]);
  });
});

describe("shell: liveness", () => {
  test("a partition with input waiting and no progress for STALL_TIMEOUT_MS is reported, with the reason", async () => {
    const s = shell({ maxBufferedRecords: 5 });
    await owning(s, [0]);
    s.deliver("wheel", 0, wheels(0, 5, s.clock.now()));
    s.input.lags.set("wheel:0", 100);
    await s.turn();
    expect(findStalls(s.tasks.views(s.input.lag()), s.clock.now(), 30_000)).toEqual([]);
    s.clock.advance(30_000);
    await s.turn();
    const stalls = findStalls(s.tasks.views(s.input.lag()), s.clock.now(), 30_000);
    expect(stalls).toHaveLength(1);
    expect(stalls[0]!.partition).toBe(0);
    expect(stalls[0]!.reason).toContain("wheel lane full");
    // Caught up with nothing waiting is progress, not a stall.
    s.input.lags.set("wheel:0", 0);
    await untilJoined(s);
    expect(findStalls(s.tasks.views(s.input.lag()), s.clock.now(), 30_000)).toEqual([]);
  });
});

describe("shell: repartition hop (SPEC §9)", () => {
  test("parts waiting for a partition that never announces (no live owner) are a stall, and /health names that partition", async () => {
    const s = shell({ partitions: 2 });
    await owning(s, [0]); // partition 1 has no owner: nothing announces its watermark
    const carId = carOf(0, "stuck");
    s.deliver("engine", 0, [partMessage("engine", carId, `${carId}-e`, 0, s.clock.now())]);
    for (let i = 0; i < 5; i++) {
      s.clock.advance(600);
      caughtUp(s, 0);
      await s.turn();
    }
    expect(s.tasks.task(0)!.waitingParts()).toBe(1);
    expect(s.kafka.committed.get("engine:0")).toBe("0");
    s.clock.advance(30_000);
    caughtUp(s, 0);
    await s.turn();
    const stalls = findStalls(s.tasks.views(s.input.lag()), s.clock.now(), 30_000);
    expect(stalls.map((x) => x.partition)).toEqual([0]);
    expect(stalls[0]!.reason).toContain("waiting for the safe time: 1 parts wait");
    expect(stalls[0]!.reason).toContain("partition 1 never announced");
  });

  const TWO = 2;
  /** Every part of car `carId`, keyed by its partId: body, engine and remote on partition 1, the wheels on partition 0. */
  function deliverSplitCar(s: Shell, carId: string, at: number, offsets: { p0: number; p1: number }): void {
    const keyed = (m: ReturnType<typeof partMessage>, partId: string) => ({ ...m, key: Buffer.from(partId) });
    s.deliver("body", 1, [keyed(partMessage("body", carId, `${carId}-b`, offsets.p1, at), `${carId}-b`)]);
    s.deliver("engine", 1, [keyed(partMessage("engine", carId, `${carId}-e`, offsets.p1, at + 1), `${carId}-e`)]);
    s.deliver("remoteControl", 1, [keyed(partMessage("remoteControl", carId, `${carId}-r`, offsets.p1, at + 2), `${carId}-r`)]);
    s.deliver(
      "wheel",
      0,
      ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"].map((pl, i) =>
        keyed(partMessage("wheel", carId, `${carId}-w${i}`, offsets.p0 + i, at + 3 + i, pl), `${carId}-w${i}`),
      ),
    );
  }
  async function untilAllJoined(s: Shell): Promise<void> {
    for (let turn = 0; turn < 50; turn++) {
      s.clock.advance(600);
      for (const t of s.tasks.running()) caughtUp(s, t.partition);
      await s.turn();
      if (s.tasks.running().every((t) => t.buffered() === 0 && !t.committing)) return;
    }
    throw new Error("records still waiting after 50 turns");
  }
  const repartitioned = (s: Shell) =>
    [...s.kafka.logs.values()]
      .flat()
      .flatMap((m) => (m.headers?.["rccar-origin"] === undefined ? [] : [`${String(m.key)}@${String(m.headers["rccar-origin"])}`]));

  test("a car whose parts arrive keyed by partId on both partitions is re-keyed to its own and joined once", async () => {
    const s = shell({ partitions: TWO, instantPricing: true });
    await owning(s, [0, 1]);
    const carId = carOf(0, "split");
    deliverSplitCar(s, carId, s.clock.now(), { p0: 0, p1: 0 });
    await untilAllJoined(s);
    expect(s.kafka.outputs.filter((o) => o.topic === TOPICS.completed).map((o) => o.key)).toEqual([carId]);
    expect(s.kafka.outputs.filter((o) => o.topic === TOPICS.dlq)).toEqual([]);
    // Every part went through the hop once, wheels from partition 0 itself (keyed by partId).
    expect(repartitioned(s).sort()).toEqual(
      [`${carId}@0:0`, `${carId}@0:1`, `${carId}@0:2`, `${carId}@0:3`, `${carId}@1:0`, `${carId}@1:0`, `${carId}@1:0`].sort(),
    );
    expect(s.kafka.committed.get("wheel:0")).toBe("4");
    expect(s.kafka.committed.get("body:1")).toBe("1");
  });

  test("a failed commit of the source partition re-keys its parts again exactly once (the failed transaction wrote nothing)", async () => {
    const s = shell({ partitions: TWO, instantPricing: true });
    await owning(s, [0, 1]);
    const carId = carOf(0, "retry");
    deliverSplitCar(s, carId, s.clock.now(), { p0: 0, p1: 0 });
    caughtUp(s, 0);
    caughtUp(s, 1);
    s.kafka.failNext.add(1);
    await s.turn();
    expect(s.events).toContain("commit 1 failed");
    await s.turn(); // partition 1 rebuilt from Kafka, rewound to its committed offsets
    expect(s.events).toContain("closed 1 TaskCorruptedError");
    // The consumer delivers partition 1's records again.
    deliverSplitCar(s, carId, s.clock.now() - 1200, { p0: 100, p1: 0 });
    await untilAllJoined(s);
    expect(s.kafka.outputs.filter((o) => o.topic === TOPICS.completed).map((o) => o.key)).toEqual([carId]);
    expect(repartitioned(s).filter((r) => r.endsWith("@1:0"))).toHaveLength(3);
  });

  test("a new owner that reads the group's offsets from before the last transaction (no require_stable in kafkajs) resumes from the changelog's positions: nothing re-keyed twice", async () => {
    const s = shell({ partitions: TWO, instantPricing: true });
    await owning(s, [0, 1]);
    const away = carOf(0, "stale");
    s.deliver("body", 1, [{ ...partMessage("body", away, `${away}-b`, 0, s.clock.now()), key: Buffer.from(`${away}-b`) }]);
    caughtUp(s, 0);
    caughtUp(s, 1);
    await s.turn();
    expect(repartitioned(s)).toEqual([`${away}@1:0`]);
    // The group coordinator answers the offsets from before that transaction...
    for (const key of [...s.kafka.committed.keys()].filter((k) => k.endsWith(":1"))) {
      s.kafka.committed.delete(key);
      s.kafka.committedMetadata.delete(key);
    }
    // ...to the owner that takes partition 1 next (here: rebuilt after a failed commit).
    s.kafka.failNext.add(1);
    s.deliver("engine", 1, [{ ...partMessage("engine", away, `${away}-e`, 0, s.clock.now()), key: null }]);
    await s.turn();
    await s.turn();
    expect(s.events).toContain("closed 1 TaskCorruptedError");
    s.deliver("body", 1, [{ ...partMessage("body", away, `${away}-b`, 0, s.clock.now()), key: Buffer.from(`${away}-b`) }]);
    s.deliver("engine", 1, [{ ...partMessage("engine", away, `${away}-e`, 0, s.clock.now()), key: null }]);
    await untilAllJoined(s);
    expect(repartitioned(s).sort()).toEqual([`${away}@1:0`, `${away}@1:0`]); // the body once, the engine once (both at offset 0 of their lanes)
    expect(repartitioned(s).length).toBe(2);
  });

  test("a copy of a re-keyed part in a repartition topic (origin offset already taken) is dropped, not joined again", async () => {
    const s = shell({ partitions: TWO, instantPricing: true });
    await owning(s, [0, 1]);
    const carId = carOf(0, "copy");
    const at = s.clock.now();
    s.deliver("body", 0, [partMessage("body", carId, `${carId}-b1`, 0, at)]);
    // A second, different body from partition 1: re-keyed to partition 0, where it conflicts.
    s.deliver("body", 1, [{ ...partMessage("body", carId, `${carId}-b2`, 0, at + 10), key: Buffer.from(`${carId}-b2`) }]);
    await untilAllJoined(s);
    const letters = () =>
      s.kafka.outputs.filter((o) => o.topic === TOPICS.dlq).map((o) => JSON.parse(String(o.value)) as { partition: number; offset: string; reason: string });
    expect(letters().map((l) => [l.partition, l.offset, l.reason.split(":")[0]])).toEqual([[1, "0", "CONFLICT"]]);
    // The same re-keyed record appears once more in the repartition topic (a copy).
    const log = s.kafka.logs.get(`${TOPICS.repartition.body}:0`)!;
    const original = log.find((m) => m.headers?.["rccar-origin"] !== undefined)!;
    log.push({ ...original, offset: String(log.length) });
    await untilAllJoined(s);
    expect(letters()).toHaveLength(1);
    expect(s.tasks.task(0)!.duplicatesDropped).toBe(1);
  });

  test("a restart while a part waits for the safe time rejoins it once, and does not re-key what was re-keyed after it", async () => {
    const s = shell({ partitions: TWO, instantPricing: true });
    await owning(s, [0, 1]);
    const home = carOf(0, "home");
    const away = carOf(1, "away");
    const at = s.clock.now();
    // Partition 0's engine lane: home's engine (keyed by carId: it waits in stage 2), then
    // away's engine (re-keyed to partition 1 at once).
    s.deliver("engine", 0, [partMessage("engine", home, `${home}-e`, 0, at), { ...partMessage("engine", away, `${away}-e`, 1, at + 5), key: null }]);
    caughtUp(s, 0);
    caughtUp(s, 1);
    await s.turn();
    await s.turn();
    // The home engine waits (nothing has announced past it yet everywhere), the away engine was re-keyed and committed.
    expect(repartitioned(s)).toEqual([`${away}@0:1`]);
    expect(s.kafka.committed.get("engine:0")).toBe("0");
    const metadata = JSON.parse(s.kafka.committedMetadata.get("engine:0")!);
    expect(metadata.handedOver).toBe("2");
    // Partition 0 is rebuilt from Kafka: it reads its engine lane from offset 0 again.
    s.kafka.failNext.add(0);
    s.deliver("body", 0, [partMessage("body", home, `${home}-b`, 0, at + 1)]);
    for (let i = 0; i < 3 && !s.events.includes("closed 0 TaskCorruptedError"); i++) await s.turn();
    expect(s.events).toContain("closed 0 TaskCorruptedError");
    s.deliver("engine", 0, [partMessage("engine", home, `${home}-e`, 0, at), { ...partMessage("engine", away, `${away}-e`, 1, at + 5), key: null }]);
    s.deliver("body", 0, [partMessage("body", home, `${home}-b`, 0, at + 1)]);
    await untilAllJoined(s);
    // Each engine once: home's joined on partition 0, away's re-keyed once and joined on partition 1.
    expect(repartitioned(s)).toEqual([`${away}@0:1`]);
    const open = (p: number) => [...(s.kafka.changelog.get(p)?.keys() ?? [])].filter((k) => k.startsWith("j/")).sort();
    expect(open(0)).toEqual([`j/${home}`]);
    expect(open(1)).toEqual([`j/${away}`]);
    // The rest of home's parts complete it: its engine is in it once.
    s.deliver("remoteControl", 0, [partMessage("remoteControl", home, `${home}-r`, 0, s.clock.now())]);
    s.deliver(
      "wheel",
      0,
      ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"].map((pl, i) => partMessage("wheel", home, `${home}-w${i}`, i, s.clock.now(), pl)),
    );
    await untilAllJoined(s);
    const cars = s.kafka.outputs.filter((o) => o.topic !== TOPICS.changelog).map((o) => JSON.parse(String(o.value)));
    expect(cars.map((c) => [c.carId, c.situation, c.engine?.partId])).toEqual([[home, "COMPLETED", `${home}-e`]]);
  });
});

describe("shell: a restart re-reads the parts that were waiting (safe time rule 3)", () => {
  test("markers the task wrote before the restart, read again first, do not let the safe time pass its waiting parts", async () => {
    const s = shell();
    await owning(s, [0]);
    const t0 = s.clock.now();
    // The body opens car A (window [t0, t0 + 5000)) and is joined.
    s.deliver("body", 0, [partMessage("body", "car-a", "a-b", 0, t0)]);
    await untilJoined(s);
    // The engine, stamped t0 + 3000: released, announced, waiting (the safe time stops at it).
    const engine = partMessage("engine", "car-a", "a-e", 0, t0 + 3000);
    s.deliver("engine", 0, [engine]);
    caughtUp(s, 0);
    await s.turn();
    await s.turn();
    expect(s.tasks.task(0)!.waitingParts()).toBe(1);
    // The watermark moves past the window's end (idle, caught up) and is announced and committed...
    s.clock.t = t0 + 6000;
    caughtUp(s, 0);
    await s.turn();
    // ...and the transaction that would join the engine and close the window fails: rebuilt.
    s.kafka.failNext.add(0);
    caughtUp(s, 0);
    await s.turn();
    expect(s.events).toContain("commit 0 failed");
    await s.turn();
    expect(s.events).toContain("closed 0 TaskCorruptedError");
    // The old marker comes back before the engine is read again (its lane is behind: no
    // caught-up evidence until it is).
    await s.turn();
    await s.turn();
    expect(s.tasks.task(0)!.currentSafeTime()).toBeLessThanOrEqual(t0 + 3000);
    s.deliver("engine", 0, [engine]);
    s.clock.t = t0 + 20_000;
    await untilJoined(s);
    const cars = s.kafka.outputs.filter((o) => o.topic === TOPICS.incomplete).map((o) => JSON.parse(String(o.value)));
    expect(cars.map((c) => [c.carId, c.situation, c.body?.partId, c.engine?.partId])).toEqual([["car-a", "MISSING_REMOTE_CONTROL", "a-b", "a-e"]]);
  });
});
