// Restoring the changelog (read_committed, straight from the partition leaders) against the
// real broker: only committed entries come back, whatever aborted transactions, markers,
// compression and fetch sizes the log holds; and the join workers take the restored states.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CompressionTypes, type Kafka, type Producer } from "kafkajs";
import { createKafka, murmur2Partitioner } from "../src/kafka.ts";
import { JoinPool } from "../src/join/pool.ts";
import { packStates, unpackStates } from "../src/join/states-batch.ts";
import { restorePartitions } from "../src/state/changelog.ts";
import { encodeCarState } from "../src/join/codec.ts";
import { createRng } from "../src/generate/prng.ts";
import { testKafkaSettings } from "./support/kafka.ts";

const settings = testKafkaSettings("restore");
const kafka: Kafka = createKafka(settings, "test-restore", { quiet: true });
const producers: Producer[] = [];

async function topicWith(partitions: number, cleanupPolicy = "compact"): Promise<string> {
  const topic = `${settings.topicPrefix}changelog-${producers.length}-${Math.random().toString(36).slice(2, 8)}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, configEntries: [{ name: "cleanup.policy", value: cleanupPolicy }] }],
    waitForLeaders: true,
  });
  await admin.disconnect();
  return topic;
}

async function transactional(id: string): Promise<Producer> {
  const p = kafka.producer({
    transactionalId: `${settings.topicPrefix}${id}`,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: murmur2Partitioner,
  });
  await p.connect();
  producers.push(p);
  return p;
}

type Entry = [key: string, value: string | null];
const send = (tx: { send: Producer["send"] }, topic: string, partition: number, entries: Entry[], gzip = false) =>
  tx.send({ topic, compression: gzip ? CompressionTypes.GZIP : CompressionTypes.None, messages: entries.map(([key, value]) => ({ key, value, partition })) });

const asObject = (m: Map<string, Buffer>) => Object.fromEntries([...m].map(([k, v]) => [k, v.toString()]).sort(([a], [b]) => (a! < b! ? -1 : 1)));

afterAll(async () => {
  for (const p of producers) await p.disconnect().catch(() => {});
});

describe("restorePartitions", () => {
  let topic: string;
  let open: Awaited<ReturnType<Producer["transaction"]>>;

  beforeAll(async () => {
    topic = await topicWith(3);
    const a = await transactional("a");
    const b = await transactional("b");
    const c = await transactional("c");
    // Partition 0: committed, aborted, interleaved, compressed, tombstoned.
    let tx = await a.transaction();
    await send(tx, topic, 0, [
      ["j/a", "a1"],
      ["j/b", "b1"],
      ["p/x/1", "x1"],
    ]);
    await tx.commit();
    tx = await a.transaction();
    await send(tx, topic, 0, [
      ["j/a", "ABORTED"],
      ["j/c", "ABORTED"],
      ["j/b", null],
    ]);
    await tx.abort();
    // Two producers' transactions interleaved in the log: b's aborts, a's commits.
    const ta = await a.transaction();
    const tb = await b.transaction();
    await send(ta, topic, 0, [["j/d", "d1"]]);
    await send(tb, topic, 0, [
      ["j/a", "ABORTED"],
      ["j/e", "ABORTED"],
    ]);
    await send(ta, topic, 0, [["j/a", "a2"]], true);
    await send(tb, topic, 0, [["j/d", "ABORTED"]], true);
    await send(ta, topic, 0, [
      ["j/f", "f1"],
      ["p/x/1", null],
    ]);
    await tb.abort();
    await ta.commit();
    // An aborted compressed batch, then a committed tombstone for a key set earlier.
    tx = await b.transaction();
    await send(
      tx,
      topic,
      0,
      [
        ["j/g", "ABORTED"],
        ["j/b", null],
      ],
      true,
    );
    await tx.abort();
    tx = await b.transaction();
    await send(tx, topic, 0, [
      ["j/d", null],
      ["j/h", "h1"],
    ]);
    await tx.commit();
    // Partition 1: nothing but an aborted transaction. Partition 2: empty.
    tx = await a.transaction();
    await send(tx, topic, 1, [["j/z", "ABORTED"]]);
    await tx.abort();
    // Last, a transaction still open on partition 0 (a producer that is not fenced): the
    // restore ends at the last stable offset, without its entries and without waiting.
    open = await c.transaction();
    await send(open, topic, 0, [
      ["j/open", "OPEN"],
      ["j/a", "OPEN"],
    ]);
  });

  afterAll(async () => {
    await open.abort().catch(() => {});
  });

  const expected = { "j/a": "a2", "j/b": "b1", "j/f": "f1", "j/h": "h1" };
  // Committed data records of partition 0: 3 + (d1, a2, f1, x tombstone) + (d tombstone, h1).
  const committedRecords = 3 + 4 + 2;

  test("gives the latest committed value per live key: aborted entries, markers and tombstoned keys are not restored", async () => {
    const started = Date.now();
    const [p0, p1, p2] = await restorePartitions(kafka, topic, [0, 1, 2], { timeoutMs: 20_000 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(p0!.partition).toBe(0);
    expect(asObject(p0!.entries)).toEqual(expected);
    expect(p0!.records).toBe(committedRecords);
    expect(p1!.entries.size).toBe(0);
    expect(p1!.records).toBe(0);
    expect(p2!.entries.size).toBe(0);
  });

  test("gives the same with one record batch per fetch (transactions cut across fetches)", async () => {
    const [p0, p1] = await restorePartitions(kafka, topic, [0, 1], { fetchBytes: 1, timeoutMs: 20_000 });
    expect(asObject(p0!.entries)).toEqual(expected);
    expect(p0!.records).toBe(committedRecords);
    expect(p1!.entries.size).toBe(0);
  });

  test("no partitions: nothing read", async () => {
    expect(await restorePartitions(kafka, topic, [])).toEqual([]);
  });

  test("an unknown topic fails with its name rather than hanging", async () => {
    await expect(restorePartitions(kafka, `${topic}-missing`, [0], { timeoutMs: 3000 })).rejects.toThrow();
  });
});

test("random interleavings of committed and aborted transactions of two producers restore what a replay of the committed ones gives (property)", async () => {
  const topic = await topicWith(1);
  const rng = createRng(8);
  const writers = [await transactional("r0"), await transactional("r1")];
  type Tx = { tx: Awaited<ReturnType<Producer["transaction"]>>; commit: boolean; sends: Entry[][] };
  const log: Array<{ tx: Tx; entries: Entry[] }> = [];
  let committedRecords = 0;
  for (let round = 0; round < 12; round++) {
    const txs: Tx[] = [];
    for (const w of writers) txs.push({ tx: await w.transaction(), commit: rng.chance(0.5), sends: [] });
    for (let s = 0; s < 6; s++) {
      const t = txs[rng.int(txs.length)]!;
      const entries: Entry[] = Array.from({ length: 1 + rng.int(4) }, () => [`j/k${rng.int(15)}`, rng.chance(0.2) ? null : `v${round}-${s}-${rng.int(1000)}`]);
      await send(t.tx, topic, 0, entries, rng.chance(0.3));
      log.push({ tx: t, entries });
    }
    for (const t of txs) {
      if (t.commit) await t.tx.commit();
      else await t.tx.abort();
    }
  }
  const replay = new Map<string, string>();
  for (const { tx, entries } of log) {
    if (!tx.commit) continue;
    committedRecords += entries.length;
    for (const [k, v] of entries) {
      if (v === null) replay.delete(k);
      else replay.set(k, v);
    }
  }
  expect(log.some((l) => !l.tx.commit)).toBe(true);
  const want = Object.fromEntries([...replay].sort(([a], [b]) => (a < b ? -1 : 1)));
  for (const fetchBytes of [undefined, 200]) {
    const [p0] = await restorePartitions(kafka, topic, [0], { fetchBytes, timeoutMs: 30_000 });
    expect(asObject(p0!.entries)).toEqual(want);
    expect(p0!.records).toBe(committedRecords);
  }
}, 120_000);

test("a log whose start moved on (records deleted) is read from its new start", async () => {
  const topic = await topicWith(1, "delete");
  const p = await transactional("del");
  for (const entries of [
    [
      ["j/a", "a1"],
      ["j/b", "b1"],
    ],
    [
      ["j/a", "a2"],
      ["j/c", "c1"],
    ],
  ] as Entry[][]) {
    const tx = await p.transaction();
    await send(tx, topic, 0, entries);
    await tx.commit();
  }
  const admin = kafka.admin();
  await admin.connect();
  // Offsets: a1 0, b1 1, marker 2, a2 3, c1 4, marker 5.
  await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs deletes only for topics it has metadata of
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: "3" }] });
  await admin.disconnect();
  const [p0] = await restorePartitions(kafka, topic, [0], { timeoutMs: 20_000 });
  expect(asObject(p0!.entries)).toEqual({ "j/a": "a2", "j/c": "c1" });
  expect(p0!.records).toBe(2);
});

describe("restored join states in the workers", () => {
  const states: [string, Uint8Array][] = [
    ["car-1", encodeCarState({ open: { firstPartAt: 1000, parts: "" } })],
    ["voiture-é-🚗", encodeCarState({ open: { firstPartAt: 2000, parts: "" } })],
    ["car-3", encodeCarState({ recent: [{ until: 5000, partIds: ["car-3-B"] }] })],
  ];

  test("a packed batch reads back every carId (UTF-8) and state byte for byte", () => {
    const got: [string, number[]][] = [];
    unpackStates(packStates(7, states), (carId, state) => got.push([carId, [...state]]));
    expect(got).toEqual(states.map(([c, s]) => [c, [...s]]));
    expect(packStates(7, []).lengths.length).toBe(0);
  });

  test("the pool moves each worker its cars' states and the workers hold them", async () => {
    const pool = new JoinPool({
      partitions: 1,
      workers: 2,
      shards: 16,
      joinTimeoutMs: 60_000,
      dedupRetentionMs: 60_000,
      maxPartBytes: 65536,
      topics: { body: "b", engine: "e", remoteControl: "r", wheel: "w" },
    });
    try {
      await pool.restore(0, states);
      await pool.restore(1, [["car-9", encodeCarState({ open: { firstPartAt: 1, parts: "" } })]]);
      expect(await pool.openCars()).toBe(3);
      await pool.drop(0);
      expect(await pool.openCars()).toBe(1);
      // A value that is not join state fails the restore instead of being guessed at.
      const failure = await pool.restore(2, [["car-x", new Uint8Array([0xc0])]]).then(
        () => undefined,
        (e: Error) => e.message,
      );
      expect(failure).toMatch(/join state/);
    } finally {
      await pool.close();
    }
  });
});
