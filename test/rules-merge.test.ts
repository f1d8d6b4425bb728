// Timestamp synchronisation of a partition's four input topics (src/ingest/merge.ts), pure.
import { describe, expect, test } from "bun:test";
import type { InputRole } from "../src/domain.ts";
import { INPUT_ROLES } from "../src/domain.ts";
import { PartitionGroup } from "../src/ingest/merge.ts";

interface Rec {
  offset: string;
  timestamp: number;
  fetchedAt: number;
  id: string;
}
const opts = { idleGraceMs: 500, maxBufferedPerTopic: 100 };
const rec = (role: InputRole, offset: number, timestamp: number, fetchedAt = 0): Rec => ({
  offset: String(offset),
  timestamp,
  fetchedAt,
  id: `${role}@${offset}`,
});

describe("partition group merge", () => {
  test("whatever order fetches arrive in, records leave in timestamp order (ties: body, engine, remote, wheel)", () => {
    const logs: Record<InputRole, Rec[]> = { body: [], engine: [], remoteControl: [], wheel: [] };
    let seed = 3;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (const role of INPUT_ROLES) {
      let ts = 0;
      for (let o = 0; o < 50; o++) logs[role].push(rec(role, o, (ts += Math.floor(random() * 5))));
    }
    const orders: string[][] = [];
    for (let trial = 0; trial < 5; trial++) {
      const g = new PartitionGroup<Rec>(opts);
      // Chunks of each log, pushed in a random interleaving.
      const chunks: Array<[InputRole, Rec[]]> = [];
      for (const role of INPUT_ROLES) for (let i = 0; i < 50; i += 7) chunks.push([role, logs[role].slice(i, i + 7)]);
      chunks.sort(() => random() - 0.5);
      const seen = new Map<InputRole, number>();
      const out: string[] = [];
      for (const [role, c] of chunks) {
        // Keep each topic's own chunks in offset order, as Kafka delivers them.
        const next = seen.get(role) ?? 0;
        if (Number(c[0]!.offset) !== next) continue;
        g.push(role, c, 1);
        seen.set(role, next + c.length);
        out.push(...g.drain().records.map((r) => r.record.id));
      }
      for (const role of INPUT_ROLES) {
        const rest = logs[role].slice(seen.get(role) ?? 0);
        if (rest.length) g.push(role, rest, 1);
        g.markCaughtUp(role, 2);
      }
      out.push(...g.drain().records.map((r) => r.record.id));
      orders.push(out);
    }
    const all = INPUT_ROLES.flatMap((role) => logs[role].map((r, i) => ({ r, role, i })));
    all.sort((a, b) => a.r.timestamp - b.r.timestamp || INPUT_ROLES.indexOf(a.role) - INPUT_ROLES.indexOf(b.role) || a.i - b.i);
    for (const o of orders) expect(o).toEqual(all.map((x) => x.r.id));
  });

  test("an empty topic that is behind blocks release; once caught up it does not", () => {
    const g = new PartitionGroup<Rec>(opts);
    g.push("body", [rec("body", 0, 100, 10)], 10);
    g.markCaughtUp("engine", 20);
    g.markCaughtUp("remoteControl", 20);
    expect(g.drain().records).toEqual([]); // wheel: no evidence yet
    g.markCaughtUp("wheel", 20);
    expect(g.drain().records.map((r) => r.record.id)).toEqual(["body@0"]);
  });

  test("caught-up evidence older than the record's fetch does not let it pass", () => {
    const g = new PartitionGroup<Rec>(opts);
    for (const role of ["engine", "remoteControl", "wheel"] as const) g.markCaughtUp(role, 5);
    g.push("body", [rec("body", 0, 100, 10)], 10);
    expect(g.drain().records).toEqual([]);
    g.markCaughtUp("wheel", 11);
    g.markCaughtUp("engine", 11);
    expect(g.drain().records).toEqual([]);
    g.markCaughtUp("remoteControl", 11);
    expect(g.drain().records.length).toBe(1);
  });

  test("watermark: largest released timestamp; drained and caught up → oldest evidence − grace; never backwards", () => {
    const g = new PartitionGroup<Rec>(opts);
    for (const role of INPUT_ROLES) g.markCaughtUp(role, 1000);
    g.push("engine", [rec("engine", 0, 300, 1000)], 1000);
    g.markCaughtUp("engine", 1000);
    expect(g.drain().watermark).toBe(500); // 1000 − 500 > 300
    for (const role of ["body", "engine", "remoteControl"] as const) g.markCaughtUp(role, 3000);
    g.markCaughtUp("wheel", 2000);
    expect(g.drain().watermark).toBe(1500); // the oldest evidence counts
    g.push("body", [rec("body", 0, 1200, 3100)], 3100);
    const d = g.drain();
    expect(d.records).toEqual([]); // body's record waits for evidence newer than its fetch
    expect(d.watermark).toBe(1500);
    for (const role of INPUT_ROLES) g.markCaughtUp(role, 3200);
    const e = g.drain();
    expect(e.records.map((r) => r.record.id)).toEqual(["body@0"]);
    expect(e.watermark).toBe(2700); // released 1200 < 1500: the watermark does not go back
  });

  test("no evidence, no advance: the watermark stays without fetches", () => {
    const g = new PartitionGroup<Rec>(opts);
    expect(g.drain().watermark).toBe(Number.NEGATIVE_INFINITY);
    g.markCaughtUp("body", 1000);
    expect(g.drain().watermark).toBe(Number.NEGATIVE_INFINITY);
  });

  test("drain respects a limit; isFull at the bound; clear() forgets records and evidence", () => {
    const g = new PartitionGroup<Rec>({ idleGraceMs: 0, maxBufferedPerTopic: 3 });
    g.push("body", [rec("body", 0, 1), rec("body", 1, 2), rec("body", 2, 3)], 0);
    expect(g.isFull("body")).toBe(true);
    for (const role of INPUT_ROLES) g.markCaughtUp(role, 0);
    expect(g.drain(2).records.length).toBe(2);
    expect(g.isFull("body")).toBe(false);
    g.clear();
    expect(g.buffered()).toBe(0);
    g.push("body", [rec("body", 3, 4)], 0);
    expect(g.drain().records).toEqual([]); // evidence was forgotten
  });

  test("announced watermark: the largest released minus the grace (producers may append out of order by that much), or the idle advance", () => {
    const g = new PartitionGroup<Rec>(opts);
    for (const role of INPUT_ROLES) g.push(role, [rec(role, 0, 10_000 + (role === "wheel" ? 7 : 0), 1)], 1);
    for (const role of INPUT_ROLES) g.markCaughtUp(role, 1);
    g.drain();
    expect(g.currentWatermark()).toBe(10_007);
    expect(g.announcedWatermark()).toBe(9_507);
    // Caught up at 20,000: the idle advance (evidence − grace) is announced as it is.
    for (const role of INPUT_ROLES) g.markCaughtUp(role, 20_000);
    g.drain();
    expect(g.announcedWatermark()).toBe(19_500);
    expect(g.currentWatermark()).toBe(19_500);
  });
});
