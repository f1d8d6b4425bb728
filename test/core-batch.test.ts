// Handing records to the join workers (pure, no threads): the packed batch reads back exactly,
// and routing by key bytes agrees with routing by carId, so restored state and new records
// of one car meet in the same worker.
import { describe, expect, test } from "bun:test";
import { LANES } from "../src/domain.ts";
import { pack, recordCount, unpack } from "../src/join/batch.ts";
import type { TickRecord } from "../src/join/protocol.ts";
import { partitionOf, partitionOfKey, shardOf, shardOfKey } from "../src/join/route.ts";
import { createRng } from "../src/generate/prng.ts";
import { Partitioners } from "kafkajs";

describe("packed batches", () => {
  test("every record reads back with its lane, timestamp, offsets, origin, replay flag, key and value; null keys and values stay null", () => {
    const rng = createRng(3);
    const records: TickRecord[] = [];
    for (let i = 0; i < 500; i++) {
      const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rng.int(256)));
      records.push({
        lane: rng.int(LANES.length),
        replay: rng.chance(0.2),
        record: {
          offset: String(rng.int(2 ** 40)),
          timestamp: 1_790_000_000_000 + rng.int(1e6),
          key: rng.chance(0.1) ? null : bytes(rng.int(40)),
          value: rng.chance(0.1) ? null : bytes(rng.int(300)),
          ...(rng.chance(0.5) ? { origin: { partition: rng.int(64), offset: String(rng.int(2 ** 40)) } } : {}),
        },
      });
    }
    const batch = pack(7, records, 123);
    expect(batch.partition).toBe(7);
    expect(batch.safeTime).toBe(123);
    expect(recordCount(batch)).toBe(records.length);
    const back = [...unpack(batch)];
    expect(back.map((r) => [r.lane, r.role, r.route, r.replay, r.timestamp, r.offset, r.originPartition, r.originOffset, r.key, r.value])).toEqual(
      records.map(({ lane, replay, record: r }) => [
        lane,
        LANES[lane]!.role,
        LANES[lane]!.route,
        replay,
        r.timestamp,
        Number(r.offset),
        r.origin?.partition ?? 7,
        Number(r.origin?.offset ?? r.offset),
        r.key,
        r.value,
      ]),
    );
    // Empty key and empty value are not null.
    const [empty] = [...unpack(pack(0, [{ lane: 0, replay: false, record: { offset: "0", timestamp: 0, key: Buffer.alloc(0), value: Buffer.alloc(0) } }], 0))];
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
  test("a carId's partition is Kafka's default partitioner's (murmur2), from its UTF-8 bytes", () => {
    // kafkajs's DefaultPartitioner is the Java client's murmur2 (an independent implementation).
    const kafkajs = Partitioners.DefaultPartitioner();
    const rng = createRng(8);
    for (let i = 0; i < 3000; i++) {
      const carId = `car-${rng.int(1e9)}-${"ü佐x".slice(0, rng.int(4))}${"y".repeat(rng.int(9))}`;
      for (const n of [1, 3, 4, 16]) {
        const partitionMetadata = Array.from({ length: n }, (_, p) => ({ partitionId: p, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
        expect(partitionOf(carId, n)).toBe(kafkajs({ topic: "t", partitionMetadata, message: { key: carId, value: null } }));
      }
    }
    for (const carId of ["car-000001", "Zoë-7", "佐藤-42", "x".repeat(128)])
      expect(partitionOfKey(Buffer.from(carId, "utf8"), 12)).toBe(partitionOf(carId, 12));
  });

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
