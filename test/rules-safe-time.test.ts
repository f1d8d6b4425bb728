// The repartition hop's pure rules: the stage-2 buffer (src/join/safe-time.ts), the safe time
// and alignment (src/engine/safe-time.ts), the committed lane positions
// (src/engine/lane-position.ts), and the claim they exist for: the join's outcome does not
// depend on the order parts arrive in, as long as none arrives after the safe time passed it.
import { describe, expect, test } from "bun:test";
import { INPUT_ROLES, KIND_OF_ROLE, LANES, ROLE_INDEX, type InputRole, type Part } from "../src/domain.ts";
import { JoinBudget } from "../src/engine/join-budget.ts";
import { decodePosition, encodePosition } from "../src/engine/lane-position.ts";
import { SafeTime } from "../src/engine/safe-time.ts";
import type { UnpackedRecord } from "../src/join/batch.ts";
import type { JoinOutput } from "../src/join/protocol.ts";
import { partitionOf } from "../src/join/route.ts";
import { SafeTimeBuffer, type PendingPart } from "../src/join/safe-time.ts";
import { JoinShard } from "../src/join/shard.ts";
import { joinStep, type PartitionState } from "../src/join/step.ts";
import { createRng, type Rng } from "../src/generate/prng.ts";

function pending(
  timestamp: number,
  role: InputRole,
  originPartition: number,
  originOffset: number,
  lane = ROLE_INDEX[role],
  laneOffset = originOffset,
): PendingPart {
  const part = { carId: "c", partId: `${role}-${originPartition}-${originOffset}`, sku: "s" } as Part;
  return {
    part,
    kind: KIND_OF_ROLE[role],
    timestamp,
    roleIndex: ROLE_INDEX[role],
    originPartition,
    originOffset,
    lane,
    laneOffset,
    key: null,
    value: new Uint8Array(),
  };
}
const ids = (ps: PendingPart[]) => ps.map((p) => p.part.partId);

describe("stage 2 buffer (SafeTimeBuffer)", () => {
  test("rule 1: parts leave in (timestamp, role, origin partition, origin offset) order, whatever order they came in", () => {
    const parts = [
      pending(10, "wheel", 0, 5),
      pending(10, "body", 2, 1),
      pending(10, "body", 1, 9),
      pending(10, "body", 1, 3),
      pending(9, "wheel", 3, 0),
      pending(11, "engine", 0, 0),
    ];
    const expected = ["wheel-3-0", "body-1-3", "body-1-9", "body-2-1", "wheel-0-5", "engine-0-0"];
    const rng = createRng(4);
    for (let round = 0; round < 50; round++) {
      const buffer = new SafeTimeBuffer(LANES.length);
      for (const p of rng.shuffle([...parts])) buffer.add(p);
      expect(ids(buffer.releaseBefore(100))).toEqual(expected);
    }
  });

  test("rule 2: only parts stamped before the safe time leave; the rest wait for a later one", () => {
    const buffer = new SafeTimeBuffer(LANES.length);
    for (const t of [5, 7, 7, 9]) buffer.add(pending(t, "engine", 0, t * 10 + buffer.size));
    expect(buffer.releaseBefore(7).map((p) => p.timestamp)).toEqual([5]);
    expect(buffer.releaseBefore(7)).toEqual([]);
    expect(buffer.size).toBe(3);
    expect(buffer.releaseBefore(9).map((p) => p.timestamp)).toEqual([7, 7]);
    expect(buffer.releaseBefore(Number.POSITIVE_INFINITY).map((p) => p.timestamp)).toEqual([9]);
  });

  test("rule 3: a late part (stamped before a safe time already passed) leaves at the next release", () => {
    const buffer = new SafeTimeBuffer(LANES.length);
    buffer.add(pending(50, "body", 0, 0));
    expect(buffer.releaseBefore(40)).toEqual([]);
    buffer.add(pending(10, "wheel", 0, 1));
    expect(ids(buffer.releaseBefore(40))).toEqual(["wheel-0-1"]);
  });

  test("rule 4: per lane, the smallest offset still waiting (-1 when none), whatever order parts leave in", () => {
    const buffer = new SafeTimeBuffer(LANES.length);
    const hopWheel = LANES.findIndex((l) => l.role === "wheel" && l.route === "hop");
    buffer.add(pending(30, "engine", 0, 100));
    buffer.add(pending(10, "engine", 0, 101));
    buffer.add(pending(20, "wheel", 3, 7, hopWheel, 40));
    buffer.add(pending(5, "wheel", 1, 2, hopWheel, 41));
    const lowest = () => buffer.lowestPending();
    expect(lowest()[ROLE_INDEX.engine]).toBe(100);
    expect(lowest()[hopWheel]).toBe(40);
    expect(lowest()[ROLE_INDEX.body]).toBe(-1);
    buffer.releaseBefore(15); // engine@101 and hop wheel@41 leave: the lanes' first waiting offsets do not move
    expect(lowest()[ROLE_INDEX.engine]).toBe(100);
    expect(lowest()[hopWheel]).toBe(40);
    buffer.releaseBefore(25);
    expect(lowest()[hopWheel]).toBe(-1);
    buffer.releaseBefore(31);
    expect(lowest()).toEqual(LANES.map(() => -1));
  });
});

describe("safe time and alignment (SafeTime)", () => {
  test("rule 2: the smallest marker over every (role, source), -Infinity until all have announced", () => {
    const st = new SafeTime(4, 2);
    for (let role = 0; role < 4; role++) st.hear(role, 0, 1000);
    for (let role = 0; role < 3; role++) st.hear(role, 1, 900);
    expect(st.advance(Number.POSITIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    st.hear(3, 1, 950);
    expect(st.advance(Number.POSITIVE_INFINITY)).toBe(900);
    for (let role = 0; role < 3; role++) st.hear(role, 1, 2000);
    expect(st.advance(Number.POSITIVE_INFINITY)).toBe(950);
  });

  test("rule 2: it never goes back — a restarted source's lower markers change nothing; markers of unknown sources are ignored", () => {
    const st = new SafeTime(1, 2);
    st.hear(0, 0, 500);
    st.hear(0, 1, 600);
    expect(st.advance(Number.POSITIVE_INFINITY)).toBe(500);
    st.hear(0, 0, 100);
    st.hear(0, 7, 0);
    expect(st.advance(Number.POSITIVE_INFINITY)).toBe(500);
  });

  test("rule 3: it never passes the task's own stage-1 watermark (a restarted task re-reads its waiting parts while its old markers come back)", () => {
    const st = new SafeTime(1, 2);
    st.hear(0, 0, 5000);
    st.hear(0, 1, 6000);
    expect(st.advance(1200)).toBe(1200);
    expect(st.advance(Number.NEGATIVE_INFINITY)).toBe(1200);
    expect(st.advance(9000)).toBe(5000);
  });

  test("rule 3: after a restart it starts at the committed safe time", () => {
    const st = new SafeTime(1, 1, 12_345);
    expect(st.current).toBe(12_345);
    st.hear(0, 0, 100);
    expect(st.advance(Number.POSITIVE_INFINITY)).toBe(12_345);
  });

  test("rule 5: a source ahead of the safe time may release up to safe time + drift; one not ahead is never held", () => {
    const st = new SafeTime(1, 1);
    st.hear(0, 0, 1000);
    st.advance(Number.POSITIVE_INFINITY);
    expect(st.releaseBound(5000, 2000)).toBe(3000);
    expect(st.releaseBound(1000, 2000)).toBe(Number.POSITIVE_INFINITY);
    expect(st.releaseBound(Number.NEGATIVE_INFINITY, 2000)).toBe(Number.POSITIVE_INFINITY);
  });

  test("rule 6: a full stage 2 holds a source whose announced watermark is ahead of its safe time, never the one the safe time waits for", () => {
    // Partition 0 hears itself at 4000 and partition 1 at 1000: its safe time waits for 1.
    const st = new SafeTime(1, 2);
    st.hear(0, 0, 4000);
    st.hear(0, 1, 1000);
    expect(st.advance(4000)).toBe(1000);
    expect(st.stageTwoFull(500, 500, 4000)).toBe(true); // full, and ahead: held
    expect(st.stageTwoFull(499, 500, 4000)).toBe(false); // room left
    // Partition 1 itself: its own announcement is what its safe time waits for.
    const slowest = new SafeTime(1, 2);
    slowest.hear(0, 0, 4000);
    slowest.hear(0, 1, 1000);
    expect(slowest.advance(1000)).toBe(1000);
    expect(slowest.stageTwoFull(10_000, 500, 1000)).toBe(false);
    // Before anything was heard the safe time is -Infinity: any source that announced is ahead.
    expect(new SafeTime(1, 2).stageTwoFull(500, 500, Number.NEGATIVE_INFINITY)).toBe(false);
    expect(new SafeTime(1, 2).stageTwoFull(500, 500, 10)).toBe(true);
  });
});

describe("join budget (room for cars waiting for prices)", () => {
  const part = (timestamp: number, carId: string, slot: number) => ({ timestamp, carId, slot });
  /** All seven slots of a car, at `from`, `from + 1`, ... */
  const car = (carId: string, from: number, step = 1) => Array.from({ length: 7 }, (_, s) => part(from + s * step, carId, s));
  /** What a worker reports with parts it took for cars with nothing joined yet: no slot filled. */
  const fresh = (parts: { carId: string }[]) => [...new Set(parts.map((p) => p.carId))].map((carId) => ({ carId, slots: 0 }));
  /** Settles parts of cars with nothing joined yet, as a worker reports them. */
  const take = (b: JoinBudget, parts: ReturnType<typeof part>[], now = 0) => b.settle(parts, fresh(parts), now);

  test("the join's safe time stops at the first timestamp at which more cars than the room would be complete", () => {
    const b = new JoinBudget();
    take(b, [...car("a", 10), ...car("b", 12), ...car("c", 14)]); // complete at 16, 18, 20
    expect(b.advance(100, 3, [], 10)).toEqual({ safeTime: 100, cars: 3, held: false });
    const c = new JoinBudget();
    take(c, [...car("a", 10), ...car("b", 12), ...car("c", 14)]);
    expect(c.advance(100, 2, [], 10)).toEqual({ safeTime: 20, cars: 2, held: true }); // c would complete at 20
    c.settle(
      [],
      [
        { carId: "a", slots: 0 },
        { carId: "b", slots: 0 },
        { carId: "c", slots: 0b0111111 },
      ],
    );
    expect(c.advance(100, 0, [], 10)).toEqual({ safeTime: 20, cars: 0, held: true }); // never back; nothing more fits
    expect(c.advance(100, 1, [], 10)).toEqual({ safeTime: 100, cars: 1, held: false }); // c's last slot: one car
  });

  test("slots joined before count: a car's last part completes it, a duplicate slot does not; a car with no report and undecoded records may complete at once", () => {
    const b = new JoinBudget();
    take(b, car("a", 10).slice(0, 6)); // six slots of a
    expect(b.advance(16, 0, [], 10)).toEqual({ safeTime: 16, cars: 0, held: false }); // they join: nothing completes
    b.settle([], [{ carId: "a", slots: 0b0111111 }]); // they left: nothing of a waits, a is forgotten
    // Taking a's next parts, the worker reports its slots; x (a restored car, say) was not reported.
    b.settle([part(20, "a", 2), part(21, "x", 0), part(22, "a", 6)], [{ carId: "a", slots: 0b0111111 }]);
    expect(b.advance(100, 1, [], 10)).toEqual({ safeTime: 22, cars: 1, held: true }); // x may complete at 21; a at 22 would be a second
    b.settle([], []); // 20 and 21 left; a's part at 22 waits, its slots still known
    b.settle([part(30, "x", 0)], [{ carId: "x", slots: 0b1111110 }]);
    expect(b.advance(100, 2, [], 10)).toEqual({ safeTime: 100, cars: 2, held: false }); // a at 22, x at 30
    const c = new JoinBudget();
    expect(c.advance(100, 1, [5, 6], 10)).toEqual({ safeTime: 6, cars: 1, held: true }); // each record handed this tick may complete a car
  });

  test("parts below the join's safe time already reached (late ones) reach the join whatever the room", () => {
    const b = new JoinBudget(1000);
    expect(b.advance(900, 0, [500, 600], 10)).toEqual({ safeTime: 1000, cars: 2, held: false });
  });

  test("a timestamp completing more cars than the whole bound goes through when nothing waits for prices, else waits", () => {
    const b = new JoinBudget();
    take(b, [...car("a", 1, 0), ...car("b", 1, 0), ...car("c", 1, 0), ...car("d", 1, 0), part(9, "e", 0)]); // four cars complete at 1
    expect(b.advance(100, 3, [], 3)).toEqual({ safeTime: 1, cars: 0, held: true });
    expect(b.advance(100, 2, [], 3)).toEqual({ safeTime: 1, cars: 0, held: true }); // cars wait for prices: wait for room
    expect(b.advance(100, 3, [], 3)).toEqual({ safeTime: 9, cars: 4, held: true }); // the whole bound is free: they go (e@9 next tick)
  });

  test("parts taken in one tick from several workers (each in order, not with each other) leave in timestamp order, and say how long they waited", () => {
    const b = new JoinBudget();
    // Worker 0's parts, then worker 1's: interleaved in time.
    expect(b.settle([part(10, "a", 0), part(30, "a", 1), part(50, "a", 2), part(20, "b", 0), part(40, "b", 1)], [], 1000)).toEqual([]);
    b.settle([part(25, "c", 0), part(5, "d", 0)], [], 1100);
    expect(b.size).toBe(7);
    expect(b.advance(26, 99, [], 99).safeTime).toBe(26);
    // Below 26: d@5 (taken at 1100), a@10, b@20 (1000), c@25 (1100); settled at 1250.
    expect(b.settle([], [], 1250)).toEqual([150, 250, 250, 150]);
    expect(b.advance(41, 99, [], 99).safeTime).toBe(41);
    expect(b.settle([], [], 1300)).toEqual([300, 300]); // a@30, b@40
    expect(b.size).toBe(1);
  });
});

describe("committed lane positions", () => {
  test("handedOver and the safe time survive the round trip; -Infinity is written as null", () => {
    expect(decodePosition("40", encodePosition("75", 1_700_000_000_123))).toEqual({ offset: "40", handedOver: "75", safeTime: 1_700_000_000_123 });
    expect(decodePosition("40", encodePosition("40", Number.NEGATIVE_INFINITY))).toEqual({
      offset: "40",
      handedOver: "40",
      safeTime: Number.NEGATIVE_INFINITY,
    });
    expect(encodePosition("1", Number.NEGATIVE_INFINITY)).toBe('{"handedOver":"1","safeTime":null}');
  });

  test("an offset committed without our metadata (an older version, another tool) means everything below it was done", () => {
    for (const metadata of [null, undefined, "", "not json", '{"handedOver":12}', '{"handedOver":"-3"}']) {
      expect(decodePosition("40", metadata)).toEqual({ offset: "40", handedOver: "40", safeTime: Number.NEGATIVE_INFINITY });
    }
    // handedOver below the offset cannot be: the offset wins.
    expect(decodePosition("40", encodePosition("10", 5)).handedOver).toBe("40");
  });
});

describe("stage 2 as the join sees it: the outcome does not depend on arrival order", () => {
  const PARTITIONS = 4;
  const topics = { body: "b", engine: "e", remoteControl: "r", wheel: "w" } satisfies Record<InputRole, string>;
  const PLACEMENTS = ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"];

  interface Sent {
    role: InputRole;
    timestamp: number;
    originPartition: number;
    originOffset: number;
    value: Buffer;
  }

  /** Parts of cars whose home is partition 0, spread over every origin partition, with conflicts, duplicates and late windows. */
  function input(rng: Rng): Sent[] {
    const out: Sent[] = [];
    const offsets = new Map<string, number>();
    let car = 0;
    for (let made = 0; made < 40; car++) {
      const carId = `car-${car}`;
      if (partitionOf(carId, PARTITIONS) !== 0) continue;
      made++;
      const start = 1000 + rng.int(20_000);
      const part = (role: InputRole, id: string, extra: Record<string, unknown>) => {
        const o = rng.int(PARTITIONS);
        const key = `${role}:${o}`;
        const offset = offsets.get(key) ?? 0;
        offsets.set(key, offset + 1);
        // Timestamps collide on purpose (ties are decided by role, origin partition, origin offset).
        const timestamp = start + rng.int(3) * 1000 + (rng.chance(0.1) ? 6000 : 0);
        out.push({
          role,
          timestamp,
          originPartition: o,
          originOffset: offset,
          value: Buffer.from(JSON.stringify({ carId, partId: `${carId}-${id}`, sku: "S", ...extra })),
        });
      };
      if (rng.chance(0.9)) part("body", "b", { color: "red", material: "abs", weightKg: 1 });
      if (rng.chance(0.2)) part("body", "b2", { color: "blue", material: "abs", weightKg: 1 }); // conflict
      part("engine", "e", {});
      if (rng.chance(0.2)) part("engine", "e", {}); // duplicate
      part("remoteControl", "r", { channelFrequency: "RF_27" });
      for (const [i, placement] of PLACEMENTS.entries()) if (rng.chance(0.9)) part("wheel", `w${i}`, { placement });
      if (rng.chance(0.2)) part("wheel", "w9", { placement: "FRONT_LEFT" }); // conflict
    }
    return out;
  }

  /**
   * Joins the parts arriving in `order` in ticks; each tick's safe time stays at or below every
   * timestamp not yet arrived (the contract markers give), so no part is late.
   */
  const isAssembled = (o: JoinOutput) => o.type === "emit" && o.car.situation === ("AWAITING_PRICE" as string);
  let budgetChecks = 0;

  function run(parts: Sent[], order: number[], rng: Rng): string[] {
    const state: PartitionState = { shard: new JoinShard({ joinTimeoutMs: 5000, dedupRetentionMs: 60_000 }), buffer: new SafeTimeBuffer(LANES.length) };
    const outputs: JoinOutput[] = [];
    // The main thread's view of the same parts, from what the step reports (join-budget.ts).
    const budget = new JoinBudget();
    let safeTime = Number.NEGATIVE_INFINITY;
    for (let at = 0; at < order.length;) {
      const n = 1 + rng.int(8);
      const batch = order.slice(at, at + n).map((i): UnpackedRecord => {
        const p = parts[i]!;
        const lane = ROLE_INDEX[p.role] + INPUT_ROLES.length; // every part came through the hop
        return {
          lane,
          role: p.role,
          route: "hop",
          timestamp: p.timestamp,
          offset: i,
          originPartition: p.originPartition,
          originOffset: p.originOffset,
          replay: false,
          key: null,
          value: p.value,
        };
      });
      at += n;
      const rest = order.slice(at).map((i) => parts[i]!.timestamp);
      const bound = rest.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...rest);
      // Any safe time the markers could have given: between the last one and the bound.
      if (bound > safeTime) safeTime = rng.chance(0.5) ? bound : safeTime + rng.int(Math.max(1, Math.min(bound, 40_000) - safeTime));
      const { cars: mayComplete } = budget.advance(
        safeTime,
        Number.POSITIVE_INFINITY,
        batch.map((r) => r.timestamp),
        Number.POSITIVE_INFINITY,
      );
      const emittedBefore = outputs.filter(isAssembled).length;
      const progress = joinStep(state, 0, batch, safeTime, { maxPartBytes: 65536, topics, partitions: PARTITIONS }, outputs);
      // The budget may overestimate the cars a tick completes, never underestimate them.
      expect(outputs.filter(isAssembled).length - emittedBefore).toBeLessThanOrEqual(mayComplete);
      budget.settle(progress.taken, progress.touched);
      budgetChecks++;
    }
    joinStep(state, 0, [], Number.POSITIVE_INFINITY, { maxPartBytes: 65536, topics, partitions: PARTITIONS }, outputs);
    return outputs
      .flatMap((o) => (o.type === "emit" ? [JSON.stringify(o.car)] : o.type === "deadLetter" ? [`${o.source.partition}@${o.source.offset} ${o.reason}`] : []))
      .sort();
  }

  test("random interleavings of the same parts (each lane in offset order) give identical cars and dead letters; the join budget fed what each step reports never counts fewer cars than a step completes", () => {
    const rng = createRng(21);
    for (let round = 0; round < 20; round++) {
      const parts = input(rng);
      // Arrival: the parts of each (role, origin) in offset order, lanes interleaved at random.
      const arrival = () => {
        const queues = new Map<string, number[]>();
        parts.forEach((p, i) => {
          const k = `${p.role}:${p.originPartition}`;
          queues.set(k, [...(queues.get(k) ?? []), i]);
        });
        const order: number[] = [];
        const live = [...queues.values()];
        while (live.some((q) => q.length > 0)) {
          const q = rng.pick(live.filter((x) => x.length > 0));
          order.push(q.shift()!);
        }
        return order;
      };
      const reference = run(parts, arrival(), rng);
      expect(reference.some((o) => o.includes("CONFLICT"))).toBe(true);
      expect(reference.some((o) => o.includes('"situation":"AWAITING_PRICE"'))).toBe(true);
      for (let k = 0; k < 3; k++) expect(run(parts, arrival(), rng)).toEqual(reference);
    }
    expect(budgetChecks).toBeGreaterThan(100);
  });
});
