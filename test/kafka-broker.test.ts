// kafkajs running under Bun against the real broker: the client features the engine relies on.
import { afterAll, describe, expect, test } from "bun:test";
import type { Consumer, Kafka, Producer } from "kafkajs";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, KAFKA_VERSIONS, kafkaBrokersGiven, kafkaSpec, localBrokerSpec, loadSettings, processSource } from "../src/config.ts";
import { createKafka, murmur2Partitioner } from "../src/kafka.ts";
import { BrokerSetupError, brokerStatus, startBroker } from "../src/local/broker.ts";
import { freePort } from "../src/local/ports.ts";
import { freshTopics } from "./support/kafka.ts";

const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
});

async function producer(kafka: Kafka, opts: Parameters<Kafka["producer"]>[0]): Promise<Producer> {
  const p = kafka.producer({ createPartitioner: murmur2Partitioner, ...opts });
  await p.connect();
  closers.push(() => p.disconnect());
  return p;
}

/** Reads `topic` from the start until `count` values arrived or `ms` passed. */
async function readAll(kafka: Kafka, topic: string, count: number, ms: number, readUncommitted = false): Promise<string[]> {
  const consumer: Consumer = kafka.consumer({ groupId: `reader-${crypto.randomUUID()}`, readUncommitted });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values: string[] = [];
  const deadline = Date.now() + ms;
  await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!.toString()) });
  while (values.length < count && Date.now() < deadline) await Bun.sleep(50);
  // Linger a little so extra (wrong) records would show up too.
  await Bun.sleep(500);
  await consumer.disconnect();
  return values;
}

describe("kafkajs under Bun against the real broker", () => {
  test("idempotent producer writes every record once, keyed by murmur2", async () => {
    const { settings, topics } = await freshTopics("idem");
    const kafka = createKafka(settings, "test-idem");
    const p = await producer(kafka, { idempotent: true, maxInFlightRequests: 1 });
    const messages = Array.from({ length: 200 }, (_, i) => ({ key: `car-${i}`, value: `v${i}` }));
    await p.send({ topic: topics.body, acks: -1, messages });
    const values = await readAll(kafka, topics.body, 200, 15_000);
    expect(values.sort()).toEqual(messages.map((m) => m.value).sort());
  });

  test("a consumer group shares partitions and commits offsets", async () => {
    const { settings, topics } = await freshTopics("group");
    const kafka = createKafka(settings, "test-group");
    const p = await producer(kafka, { idempotent: true, maxInFlightRequests: 1 });
    await p.send({ topic: topics.engine, messages: Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: `${i}` })) });
    const groupId = `group-${crypto.randomUUID()}`;
    const seen = new Map<string, number>();
    const consumers = await Promise.all(
      [0, 1].map(async () => {
        const c = kafka.consumer({ groupId });
        await c.connect();
        await c.subscribe({ topic: topics.engine, fromBeginning: true });
        closers.push(() => c.disconnect());
        return c;
      }),
    );
    const assigned: number[][] = [[], []];
    await Promise.all(
      consumers.map((c, i) =>
        c.run({
          eachMessage: async ({ partition, message }) => {
            if (!assigned[i]!.includes(partition)) assigned[i]!.push(partition);
            seen.set(message.value!.toString(), (seen.get(message.value!.toString()) ?? 0) + 1);
          },
        }),
      ),
    );
    const deadline = Date.now() + 20_000;
    while (seen.size < 40 && Date.now() < deadline) await Bun.sleep(50);
    expect(seen.size).toBe(40);
    // The two members never consumed the same partition.
    expect(assigned[0]!.filter((p) => assigned[1]!.includes(p))).toEqual([]);
    await Promise.all(consumers.map((c) => c.disconnect()));
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId, topics: [topics.engine] });
    await admin.disconnect();
    const committed = offsets[0]!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    expect(committed).toBe(40);
  });

  test("a transaction commits records with consumer offsets; an aborted one stays invisible to read_committed", async () => {
    const { settings, topics } = await freshTopics("txn");
    const kafka = createKafka(settings, "test-txn");
    const tp = await producer(kafka, { transactionalId: `txn-${crypto.randomUUID()}`, idempotent: true, maxInFlightRequests: 1 });
    const groupId = `txn-group-${crypto.randomUUID()}`;

    const committed = await tp.transaction();
    await committed.send({
      topic: topics.completed,
      messages: [
        { key: "car-1", value: "committed-1" },
        { key: "car-2", value: "committed-2" },
      ],
    });
    await committed.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: topics.body, partitions: [{ partition: 0, offset: "7" }] }] });
    await committed.commit();

    const aborted = await tp.transaction();
    await aborted.send({ topic: topics.completed, messages: [{ key: "car-3", value: "aborted-3" }] });
    await aborted.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: topics.body, partitions: [{ partition: 0, offset: "99" }] }] });
    await aborted.abort();

    const readCommitted = await readAll(kafka, topics.completed, 2, 15_000);
    expect(readCommitted.sort()).toEqual(["committed-1", "committed-2"]);
    // The aborted record is in the log: a read_uncommitted reader sees it, so the check above is meaningful.
    const readUncommitted = await readAll(kafka, topics.completed, 3, 15_000, true);
    expect(readUncommitted.sort()).toEqual(["aborted-3", "committed-1", "committed-2"]);

    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId, topics: [topics.body] });
    await admin.disconnect();
    expect(offsets[0]!.partitions.find((p) => p.partition === 0)!.offset).toBe("7");
  });

  test("a second producer with the same transactional id fences the first (zombie)", async () => {
    const { settings, topics } = await freshTopics("fence");
    const kafka = createKafka(settings, "test-fence", { quiet: true });
    const id = `fence-${crypto.randomUUID()}`;
    const zombie = await producer(kafka, { transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
    const zombieTx = await zombie.transaction();
    await zombieTx.send({ topic: topics.completed, messages: [{ key: "z", value: "zombie" }] });
    const successor = await producer(kafka, { transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
    const tx = await successor.transaction();
    await tx.send({ topic: topics.completed, messages: [{ key: "s", value: "successor" }] });
    await tx.commit();
    await expect(zombieTx.commit()).rejects.toThrow();
    expect(await readAll(kafka, topics.completed, 1, 15_000)).toEqual(["successor"]);
  });
});

describe("the project's local broker", () => {
  test.skipIf(kafkaBrokersGiven(processSource()))("runs from the project's own files, one process", () => {
    const local = loadSettings(localBrokerSpec, { env: processSource().env, argv: [] });
    const status = brokerStatus(local);
    expect(status.running).toBe(true);
    const again = Bun.spawnSync([process.execPath, "src/cli/kafka.ts", "start"], { env: { ...process.env }, stderr: "pipe" });
    expect(again.exitCode).toBe(0);
    expect(again.stderr.toString()).toContain("already running");
    expect(brokerStatus(local).pid).toBe(status.pid);
  });

  test("KAFKA_VERSION accepts the releases with a pom, and nothing else", () => {
    const load = (v: string) => loadSettings(localBrokerSpec, { env: { KAFKA_VERSION: v }, argv: [] });
    expect(KAFKA_VERSIONS[0]).toBe("4.4.0");
    expect(load("").version).toBe("4.4.0");
    for (const v of KAFKA_VERSIONS) expect(load(v).version).toBe(v);
    expect(() => load("3.8.0")).toThrow(ConfigError);
    expect(() => load("3.8.0")).toThrow("KAFKA_VERSION");
    expect(() => load("4")).toThrow(ConfigError);
  });

  test("a data dir formatted by another release is refused before anything starts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rccar-kafka-"));
    try {
      mkdirSync(join(dir, "data"));
      writeFileSync(join(dir, "data", "meta.properties"), "node.id=1\n");
      writeFileSync(join(dir, "data-formatted-by"), "3.9.1");
      const port = await freePort();
      const env = { KAFKA_VERSION: "4.4.0", KAFKA_DATA_DIR: dir, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(await freePort()) };
      const local = loadSettings(localBrokerSpec, { env, argv: [] });
      const kafka = { ...loadSettings(kafkaSpec, { env: {}, argv: [] }), brokers: [`127.0.0.1:${port}`] };
      const started = startBroker(local, kafka, () => {});
      await expect(started).rejects.toThrow(BrokerSetupError);
      await expect(started).rejects.toThrow("holds data of Kafka 3.9.1, not KAFKA_VERSION=4.4.0");
      expect(brokerStatus(local).running).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the engine's transactional sink", () => {
  test("opening a partition's sink fences the previous owner before anything is read", async () => {
    const { PartitionSink } = await import("../src/sink/transactions.ts");
    const { settings, topics } = await freshTopics("sink-fence");
    const kafka = createKafka(settings, "test-sink-fence", { quiet: true });
    const id = `sink-fence-${crypto.randomUUID()}`;
    const previous = await producer(kafka, { transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
    const open = await previous.transaction();
    await open.send({ topic: topics.completed, messages: [{ key: "p", value: "previous owner" }] });
    const next = new PartitionSink(kafka, id, `group-${crypto.randomUUID()}`);
    await next.open();
    closers.push(() => next.close());
    // The previous owner's open transaction was aborted by the open() alone: it cannot commit.
    await expect(open.commit()).rejects.toThrow();
    await next.commit([{ topic: topics.completed, key: "n", value: "next owner" }], []);
    expect(await readAll(kafka, topics.completed, 1, 15_000)).toEqual(["next owner"]);
  });
});
