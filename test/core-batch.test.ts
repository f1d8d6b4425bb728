// Handing records to the join workers (pure, no threads): the packed batch reads back exactly,
// and routing by key bytes agrees with routing by carId, so restored state and new records
// of one car meet in the same worker.
import { describe, expect, test } from "bun:test";
import type { InputRole } from "../src/domain.ts";
import { INPUT_ROLES } from "../src/domain.ts";
import { pack, recordCount, unpack } from "../src/join/batch.ts";
import type { RawRecord } from "../src/join/protocol.ts";
import { shardOf, shardOfKey } from "../src/join/route.ts";
import { createRng } from "../src/generate/prng.ts";

describe("packed batches", () => {
  test("every record reads back with its role, timestamp, offset, key and value; null keys and values stay null", () => {
    const rng = createRng(3);
    const records: Array<{ role: InputRole; record: RawRecord }> = [];
    for (let i = 0; i < 500; i++) {
      const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rng.int(256)));
      records.push({
        role: INPUT_ROLES[rng.int(4)]!,
        record: {
          offset: String(rng.int(2 ** 40)),
          timestamp: 1_790_000_000_000 + rng.int(1e6),
          key: rng.chance(0.1) ? null : bytes(rng.int(40)),
          value: rng.chance(0.1) ? null : bytes(rng.int(300)),
        },
      });
    }
    const batch = pack(7, records, 123);
    expect(batch.partition).toBe(7);
    expect(batch.watermark).toBe(123);
    expect(recordCount(batch)).toBe(records.length);
    const back = [...unpack(batch)];
    expect(back.map((r) => ({ role: r.role, record: { offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value } }))).toEqual(records);
    // Empty key and empty value are not null.
    const [empty] = [...unpack(pack(0, [{ role: "body", record: { offset: "0", timestamp: 0, key: Buffer.alloc(0), value: Buffer.alloc(0) } }], 0))];
    expect(empty!.key).toEqual(Buffer.alloc(0));
    expect(empty!.value).toEqual(Buffer.alloc(0));
  });

  test("an empty batch has no records", () => {
    const batch = pack(0, [], 0);
    expect(recordCount(batch)).toBe(0);
    expect([...unpack(batch)]).toEqual([]);
  });
});

describe("routing", () => {
  test("a carId and its UTF-8 key bytes land on the same shard, ASCII or not", () => {
    for (const carId of ["car-000001", "c", "Zoë-7", "佐藤-42", "emoji-🚗", "x".repeat(128)]) {
      for (const shards of [1, 7, 16, 64]) expect(shardOfKey(Buffer.from(carId, "utf8"), shards)).toBe(shardOf(carId, shards));
    }
  });

  test("carIds spread over the shards", () => {
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[shardOf(`car-${i}`, 16)]++;
    expect(Math.min(...counts)).toBeGreaterThan(700);
    expect(Math.max(...counts)).toBeLessThan(1300);
  });
});
