// When a thread runs a full garbage collection (src/gc.ts).
import { describe, expect, test } from "bun:test";
import { CollectionPolicy } from "../src/gc.ts";

describe("full collections", () => {
  test("after enough work, at most once per interval, even while busy", () => {
    const p = new CollectionPolicy(5000, 100);
    p.did(99);
    expect(p.due(0, false)).toBe(false); // not enough work, not quiet
    p.did(1);
    expect(p.due(0, false)).toBe(true);
    p.did(1000);
    expect(p.due(4999, false)).toBe(false); // too soon
    expect(p.due(5000, false)).toBe(true);
    expect(p.due(20_000, false)).toBe(false); // nothing done since
  });

  test("the tail of a burst: any work once quiet, still not more often than the interval", () => {
    const p = new CollectionPolicy(5000, 100);
    p.did(3);
    expect(p.due(0, false)).toBe(false);
    expect(p.due(0, true)).toBe(true);
    p.did(1);
    expect(p.due(1000, true)).toBe(false);
    expect(p.due(6000, true)).toBe(true);
    expect(p.due(60_000, true)).toBe(false); // quiet with nothing done: nothing to collect
  });
});
