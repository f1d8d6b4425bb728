// Producers that do not key by carId (SPEC §9, issue 10): records keyed by their partId, with no
// key, or a mix, so that one car's parts arrive on different partitions, are re-keyed by carId
// through the engine's repartition topics and joined like any other. Each keying ends exact by
// the verifier, as a backlog and live; the hop is exactly once through SIGKILLs and a lost
// instance; a backlog's outcome does not depend on how fast it is read; a record whose value
// cannot be read is still a dead letter at the coordinates its producer wrote it to.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { KeyBy, KafkaSettings, Topics } from "../src/config.ts";
import { topicsOf } from "../src/config.ts";
import { writeManifest, type Manifest } from "../src/generate/index.ts";
import { canonicalJson } from "../src/generate/digest.ts";
import { partitionFor } from "../src/generate/placement.ts";
import { createRng } from "../src/generate/prng.ts";
import { createKafka } from "../src/kafka.ts";
import type { FoundRecord } from "../src/verify/compare.ts";
import { readOutputs } from "../src/verify/reader.ts";
import { EngineProcess, generate, priceApi, stack, until, verifyAndRead, type Stack } from "./support/stack.ts";
import type { RunningPriceApi } from "../src/price-api/server.ts";

/** Every rule of SPEC §4 in the mix, small enough for CI; malformed records cycle through every class. */
const MIX = {
  missingBody: 0.02,
  missingEngine: 0.03,
  missingWheels: 0.03,
  lateRate: 0.03,
  dupRate: 0.04,
  conflictRate: 0.03,
  malformedRate: 0.05,
  extraFieldRate: 0.1,
};

let stacks: Stack[] = [];
let engines: EngineProcess[] = [];
let apis: RunningPriceApi[] = [];
afterEach(async () => {
  for (const e of [...engines, ...stacks.map((s) => s.engine)]) await e.kill9();
  for (const a of [...apis, ...stacks.map((s) => s.api)]) await a.stop();
  stacks = [];
  engines = [];
  apis = [];
});

async function newStack(label: string, engineEnv: Record<string, string> = {}): Promise<Stack> {
  const s = await stack(label, { api: { delayMinMs: 0, delayMaxMs: 50 }, engineEnv });
  stacks.push(s);
  return s;
}

/** The stack's engine's settings, for another instance or another group reading the same input. */
function engineEnvOf(s: Stack): Record<string, string> {
  return { KAFKA_BROKERS: s.kafka.brokers.join(","), TOPIC_PREFIX: s.kafka.topicPrefix, GROUP_ID: groupOf(s), PRICE_API_URL: s.api.url };
}
const groupOf = (s: Stack) => `${s.kafka.topicPrefix}group`;

/** Two runs on the same topics, as one expectation (their carIds differ by seed). */
function both(a: Manifest, b: Manifest): Manifest {
  return { ...b, cars: [...a.cars, ...b.cars], deadLetters: [...a.deadLetters, ...b.deadLetters] };
}

/**
 * The verifier's judgement of a group's outputs (exact, or the test fails), and the records it
 * read. On failure the manifest is kept beside the engine logs, to replay the run's expectation.
 */
async function expectExact(kafka: KafkaSettings, manifest: Manifest, timeoutMs = 180_000): Promise<FoundRecord[]> {
  const { report, records } = await verifyAndRead(kafka, { ...manifest, topics: topicsOf(kafka) }, { timeoutMs });
  if (!report.ok) {
    const path = join(import.meta.dir, "..", ".local", "test-logs", `${kafka.topicPrefix}${kafka.topicCompleted}-manifest.json`);
    writeManifest(path, manifest);
    console.error(`manifest of the failed run: ${path}`);
  }
  expect(report.problems).toEqual({});
  expect(report.ok).toBe(true);
  return records;
}

/** The internal repartition topics, named as the issue says (as Kafka Streams names its internal topics). */
function repartitionTopics(kafka: KafkaSettings, groupId: string): string[] {
  return [kafka.topicBody, kafka.topicEngine, kafka.topicRemoteControl, kafka.topicWheel].map((t) => `${kafka.topicPrefix}${groupId}-${t}-repartition`);
}

/** What the run's input must contain for the keying to mean anything. */
function expectKeying(m: Manifest, keyBy: KeyBy): void {
  const k = m.counts.keying;
  if (keyBy === "carId") {
    expect([k.partId, k.none]).toEqual([0, 0]);
    expect(m.counts.carsSpanningPartitions).toBe(0);
    return;
  }
  // Most cars have parts on several partitions: they can only be joined through the hop.
  expect(m.counts.carsSpanningPartitions).toBeGreaterThan(m.counts.plannedCars / 2);
  if (keyBy === "mixed") for (const n of [k.carId, k.partId, k.none]) expect(n).toBeGreaterThan(0);
  else expect(k[keyBy]).toBe(m.counts.recordsSent);
  // SPEC §8: records whose value cannot be read, keyed by a partId or by nothing, are in the
  // input; the verifier checks each is a dead letter with its own key, topic, partition and offset.
  const notJson = m.deadLetters.filter((d) => d.class === "NOT_JSON");
  if (keyBy === "partId") expect(notJson.filter((d) => d.key !== null && /-X$/.test(d.key)).length).toBeGreaterThan(0);
  if (keyBy === "none") expect(notJson.filter((d) => d.key === null).length).toBeGreaterThan(0);
}

/**
 * The parts re-keyed to the repartition topics, as committed (read_committed), and the topics'
 * partition counts. The engine also writes watermark markers there (no key, no value), which are
 * left out. Call it with the group's engines stopped: an idle engine keeps announcing its
 * watermark, and a reader that waits for quiet would never see the end.
 */
async function rekeyedParts(kafka: KafkaSettings, groupId: string): Promise<{ partitions: Map<string, number>; parts: FoundRecord[] }> {
  const admin = createKafka(kafka, "repartition-check").admin();
  await admin.connect();
  const partitions = new Map<string, number>();
  try {
    const existing = new Set(await admin.listTopics());
    for (const t of repartitionTopics(kafka, groupId).filter((n) => existing.has(n))) partitions.set(t, (await admin.fetchTopicOffsets(t)).length);
  } finally {
    await admin.disconnect();
  }
  if (partitions.size === 0) return { partitions, parts: [] };
  const read = await readOutputs(kafka, [...partitions.keys()], { quietMs: 1000, timeoutMs: 60_000 });
  return { partitions, parts: read.records.filter((r) => r.value !== null) };
}

/**
 * The hop as the issue defines it: four repartition topics with the inputs' partition count;
 * each re-keyed part keyed by its carId on that carId's murmur2 partition; every part that had
 * to move (its source partition is not its carId's) went through, and none went twice.
 * `uniqueValues`: the run sent no redeliveries, so a value seen twice is a copy the hop made.
 */
async function expectHop(kafka: KafkaSettings, groupId: string, manifest: Manifest, opts: { uniqueValues: boolean }): Promise<void> {
  const n = kafka.inputPartitions;
  const { partitions, parts } = await rekeyedParts(kafka, groupId);
  expect([...partitions.entries()].sort()).toEqual(
    repartitionTopics(kafka, groupId)
      .map((t): [string, number] => [t, n])
      .sort(),
  );
  const carIds = new Set(manifest.cars.map((c) => c.carId));
  const misplaced = parts.filter((r) => r.key === null || !carIds.has(r.key) || r.partition !== partitionFor("", r.key, 0, n));
  expect(misplaced.slice(0, 5).map((r) => `${r.topic}/${r.partition}@${r.offset} key ${JSON.stringify(r.key)}`)).toEqual([]);
  // Keyed by partId, a part's source partition is its partId's: the manifest tells which parts
  // had to move. (Keyless records are placed by the generator's seq, which it does not record.)
  const mustMove =
    manifest.options.keyBy === "partId"
      ? manifest.cars.flatMap((c) => c.partIds.filter((id) => partitionFor("", id, 0, n) !== partitionFor("", c.carId, 0, n)))
      : [];
  expect(parts.length).toBeGreaterThanOrEqual(Math.max(1, mustMove.length));
  if (opts.uniqueValues) {
    const copies = new Map<string, string[]>();
    for (const r of parts) {
      const v = Buffer.from(r.value!).toString("base64");
      copies.set(v, [...(copies.get(v) ?? []), `${r.topic}/${r.partition}@${r.offset}`]);
    }
    const twice = [...copies.values()].filter((w) => w.length > 1);
    expect({ partsHoppedTwice: twice.length, examples: twice.slice(0, 3) }).toEqual({ partsHoppedTwice: 0, examples: [] });
  }
}

/** carId keying takes the direct path: no part is written to a repartition topic. */
async function expectNoHop(kafka: KafkaSettings, groupId: string): Promise<void> {
  const { parts } = await rekeyedParts(kafka, groupId);
  expect(parts.slice(0, 5).map((r) => `${r.topic}/${r.partition}@${r.offset} key ${JSON.stringify(r.key)}`)).toEqual([]);
}

/**
 * Another consumer group over the stack's input, with output and changelog topics of its own:
 * a second complete run over the same records (its repartition topics follow its group).
 */
interface OtherGroup {
  groupId: string;
  kafka: KafkaSettings;
  engine: EngineProcess;
}
function otherGroup(s: Stack, name: string, env: Record<string, string>): OtherGroup {
  const kafka: KafkaSettings = {
    ...s.kafka,
    topicCompleted: `${s.kafka.topicCompleted}-${name}`,
    topicIncomplete: `${s.kafka.topicIncomplete}-${name}`,
    topicDlq: `${s.kafka.topicDlq}-${name}`,
    topicChangelog: `${s.kafka.topicChangelog}-${name}`,
  };
  const groupId = `${groupOf(s)}-${name}`;
  const engine = new EngineProcess(`${s.kafka.topicPrefix}engine-${name}`, {
    ...engineEnvOf(s),
    GROUP_ID: groupId,
    TOPIC_COMPLETED: kafka.topicCompleted,
    TOPIC_INCOMPLETE: kafka.topicIncomplete,
    TOPIC_DLQ: kafka.topicDlq,
    TOPIC_CHANGELOG: kafka.topicChangelog,
    ...env,
  });
  engines.push(engine);
  return { groupId, kafka, engine };
}

/** The outputs as comparable lines: topic role, key and value, wall-clock pricedAt left out; wheels stay in order. */
function outcomeLines(records: readonly FoundRecord[], topics: Topics): string[] {
  const role = (t: string) => (t === topics.completed ? "completed" : t === topics.incomplete ? "incomplete" : t === topics.dlq ? "dlq" : t);
  return records.map((r) => {
    const { pricedAt: _p, ...value } = JSON.parse(Buffer.from(r.value!).toString("utf8")) as Record<string, unknown>;
    return `${role(r.topic)} ${r.key} ${canonicalJson(value)}`;
  });
}

/** Two runs' outputs are the same records (the verifier ignores a car's wheel order and its assembledAt; this does not). */
function expectSameOutputs(a: { records: readonly FoundRecord[]; topics: Topics }, b: { records: readonly FoundRecord[]; topics: Topics }): void {
  const [la, lb] = [outcomeLines(a.records, a.topics), outcomeLines(b.records, b.topics)];
  const [sa, sb] = [new Set(la), new Set(lb)];
  const differ = { onlyInFirst: la.filter((l) => !sb.has(l)), onlyInSecond: lb.filter((l) => !sa.has(l)) };
  expect({
    records: la.length,
    onlyInFirst: differ.onlyInFirst.slice(0, 3),
    onlyInSecond: differ.onlyInSecond.slice(0, 3),
    differing: differ.onlyInFirst.length,
  }).toEqual({
    records: lb.length,
    onlyInFirst: [],
    onlyInSecond: [],
    differing: 0,
  });
}

const KEYINGS: Array<{ keyBy: KeyBy; seed: number }> = [
  { keyBy: "carId", seed: 301 },
  { keyBy: "partId", seed: 302 },
  { keyBy: "none", seed: 303 },
  { keyBy: "mixed", seed: 304 },
];

describe("engine: repartition, each keying", () => {
  for (const { keyBy, seed } of KEYINGS) {
    test(`KEY_BY=${keyBy}: a backlog read after the engine starts, then live traffic: each exact by the verifier`, async () => {
      const s = await newStack(`rp-${keyBy}`);
      const backlog = await generate({ cars: 250, seed, keyBy, ...MIX }, s.kafka);
      expectKeying(backlog, keyBy);
      expect(backlog.counts.late).toBeGreaterThan(0);
      await s.engine.start();
      await expectExact(s.kafka, backlog);
      const live = await generate({ cars: 250, seed: seed + 100, keyBy, rate: 125, ...MIX, lateRate: 0 }, s.kafka);
      expectKeying(live, keyBy);
      await expectExact(s.kafka, both(backlog, live));
      await s.engine.kill9();
      if (keyBy === "carId") await expectNoHop(s.kafka, groupOf(s));
      else await expectHop(s.kafka, groupOf(s), both(backlog, live), { uniqueValues: false });
    }, 180_000);
  }
});

// The slow ones: several engine processes, restarts, two full reads of one backlog.
describe("engine: repartition under faults and read speeds", () => {
  test("KEY_BY=partId, live, engine SIGKILLed at random instants: outputs equal a crash-free run, the hop wrote each part once", async () => {
    // A short session so each restart's rebalance does not wait long for the killed member.
    const s = await newStack("rp-kill", { SESSION_TIMEOUT_MS: "3000" });
    const random = createRng(305).next;
    await s.engine.start();
    // No redeliveries: every input value is unique, so a value twice in the hop is its fault.
    const generating = generate({ cars: 400, seed: 305, keyBy: "partId", rate: 80, ...MIX, dupRate: 0 }, s.kafka);
    let finished = false;
    void generating.finally(() => (finished = true));
    let kills = 0;
    let killedWithInput = 0;
    while (kills < 4 || !finished) {
      await Bun.sleep(400 + random() * 1200);
      if (((await s.engine.metrics())?.recordsIn ?? 0) > 0) killedWithInput++;
      await s.engine.kill9();
      kills++;
      await s.engine.start();
    }
    const manifest = await generating;
    expectKeying(manifest, "partId");
    expect(killedWithInput).toBeGreaterThanOrEqual(2);
    const killed = await expectExact(s.kafka, manifest);
    await s.engine.kill9();
    await expectHop(s.kafka, groupOf(s), manifest, { uniqueValues: true });
    // The same input read by a group that never crashes.
    const crashFree = otherGroup(s, "crash-free", {});
    await crashFree.engine.start();
    expectSameOutputs({ records: killed, topics: s.topics }, { records: await expectExact(crashFree.kafka, manifest), topics: topicsOf(crashFree.kafka) });
  }, 300_000);

  test("KEY_BY=partId, two instances share the input, one SIGKILLed mid-run: exact", async () => {
    const s = await newStack("rp-scale", { SESSION_TIMEOUT_MS: "3000" });
    const second = new EngineProcess(`${s.kafka.topicPrefix}engine-b`, { ...engineEnvOf(s), SESSION_TIMEOUT_MS: "3000" });
    engines.push(second);
    await s.engine.start();
    await second.start();
    const owned = async (e: EngineProcess) => (await e.status())?.partitions.length ?? 0;
    expect(await until(async () => (await owned(s.engine)) > 0 && (await owned(second)) > 0, 30_000, 200)).toBe(true);
    const generating = generate({ cars: 600, seed: 306, keyBy: "partId", rate: 150, ...MIX, dupRate: 0 }, s.kafka);
    // Killed while parts flow through both instances' hops.
    expect(await until(async () => ((await second.metrics())?.recordsIn ?? 0) > 400, 30_000, 20)).toBe(true);
    await second.kill9();
    const manifest = await generating;
    expectKeying(manifest, "partId");
    expect(await until(async () => (await owned(s.engine)) === s.kafka.inputPartitions, 60_000, 250)).toBe(true);
    await expectExact(s.kafka, manifest);
    await s.engine.kill9();
    await expectHop(s.kafka, groupOf(s), manifest, { uniqueValues: true });
  }, 240_000);

  test("KEY_BY=partId backlog read at two speeds by two groups: both exact, the same output records", async () => {
    const s = await newStack("rp-speed");
    const manifest = await generate({ cars: 300, seed: 307, keyBy: "partId", ...MIX }, s.kafka);
    expectKeying(manifest, "partId");
    expect(manifest.counts.late).toBeGreaterThan(0);
    // Fast: the default settings, everything fetched in 1 MiB batches, all lanes full at once.
    await s.engine.start();
    const fast = await expectExact(s.kafka, manifest);
    // Slow, a group of its own over the same input: lanes of 100 records, one worker, reading
    // paused while 8 cars wait for a price API that takes up to 40 ms (SPEC §5 backpressure), and
    // stage 1 held while 50 parts of a partition wait for its safe time (safe-time.ts rule 6),
    // so the input and the repartition lanes are read in small, uneven steps.
    const slowApi = await priceApi({ delayMinMs: 10, delayMaxMs: 40 });
    apis.push(slowApi);
    const slow = otherGroup(s, "slow", {
      PRICE_API_URL: slowApi.url,
      MAX_BUFFERED_RECORDS: "100",
      WORKERS: "1",
      PRICE_MAX_WAITING_CARS: "8",
      MAX_WAITING_PARTS: "50",
    });
    await slow.engine.start();
    const slowRecords = await expectExact(slow.kafka, manifest);
    expectSameOutputs({ records: fast, topics: s.topics }, { records: slowRecords, topics: topicsOf(slow.kafka) });
    await s.engine.kill9();
    await slow.engine.kill9();
    await expectHop(s.kafka, groupOf(s), manifest, { uniqueValues: false });
    await expectHop(s.kafka, slow.groupId, manifest, { uniqueValues: false });
  }, 300_000);
});
