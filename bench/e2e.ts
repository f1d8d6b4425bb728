// End-to-end throughput: a preloaded backlog through the engine (1, 2, 4 workers) and through
// the passthrough pipe, side by side on the same input. Each keying (carId, partId, ...) gets
// a backlog of its own with the same cars and records, only the keys differ; per worker count
// the keyings run back to back, so the ratio partId ÷ carId is taken under the same load. Per
// engine run also the CPU it spent (all threads, from /proc: a figure that does not depend on
// what else the machine runs) and the records it wrote per car (outputs, changelog entries and
// repartition copies, read back afterwards).
import type { KafkaSettings, KeyBy } from "../src/config.ts";
import { generate, type Manifest } from "../src/generate/index.ts";
import { cpuSeconds } from "./cpu.ts";
import { runPassthrough } from "./passthrough.ts";
import { countChangelog, countRepartition, type ChangelogCounts, type RepartitionCounts } from "./records.ts";
import { engine, freshPrefix, priceApiProcess, waitForOutputs, type PriceApiProcess } from "./stack.ts";

export interface EngineRun {
  workers: number;
  keyBy: KeyBy;
  /** From spawning the engine to the last output (what cars/s divides by). */
  seconds: number;
  /** The part of `seconds` before the engine was ready (process start, group join, restore). */
  readySeconds: number;
  carsPerSecond: number;
  recordsPerSecond: number;
  ratio: number;
  /** utime + stime of the engine process (every thread) from ready to the last output, per 1,000 cars. */
  cpuSecondsPer1000Cars?: number;
  /** Changelog records the run wrote (read_committed, when the last output was committed). */
  changelog?: ChangelogCounts;
  /** Records the run wrote to its repartition topics (read_committed). */
  repartition?: RepartitionCounts;
  /** (outputs + dead letters + changelog records + repartition records) / cars. */
  recordsPerCar?: number;
}

/** A run that did not produce the cars the generator's model expects (why, in one line). */
export interface FailedRun {
  workers: number;
  keyBy: KeyBy;
  error: string;
}

export interface E2eResult {
  cars: number;
  records: number;
  keyings: KeyBy[];
  preloadRecordsPerSecond: number;
  passthroughRecordsPerSecond: number;
  engine: Array<EngineRun | FailedRun>;
}

export async function runE2e(
  base: KafkaSettings,
  cars: number,
  workers: number[],
  keyings: KeyBy[],
  progress: (line: string) => void,
  log: (line: string) => void,
): Promise<E2eResult> {
  const backlogs: Array<{ keyBy: KeyBy; kafka: KafkaSettings; manifest: Manifest }> = [];
  let preloadS = 0;
  for (const keyBy of keyings) {
    const kafka = await freshPrefix(base, `e2e-${keyBy}`);
    progress(`e2e: preloading ${cars} cars keyed by ${keyBy} ...`);
    const t0 = Date.now();
    const manifest = await generate({ cars, seed: 7, missingEngine: 0.01, missingWheels: 0.01, skus: 20, batchSize: 2000, keyBy }, kafka, {
      onProgress: (p) => progress(`e2e: preload (${keyBy}) ${p.sent}/${p.total} records`),
    });
    preloadS += (Date.now() - t0) / 1000;
    backlogs.push({ keyBy, kafka, manifest });
  }
  // Same seed, same options: the keyings differ in their keys only, which the ratios rely on.
  const first = backlogs[0]!.manifest;
  const records = first.counts.recordsSent;
  for (const { keyBy, manifest: m } of backlogs)
    if (m.counts.recordsSent !== records || m.cars.length !== first.cars.length || m.deadLetters.length !== first.deadLetters.length)
      throw new Error(
        `e2e: the ${keyBy} backlog differs from the ${backlogs[0]!.keyBy} one beyond its keys (${m.cars.length} cars, ${m.counts.recordsSent} records, ${m.deadLetters.length} dead letters)`,
      );
  const passS = await runPassthrough(backlogs[0]!.kafka, records, progress);
  const passRate = records / passS;
  const api = await priceApiProcess({ DELAY_MIN_MS: "0", DELAY_MAX_MS: "0", MAX_CONCURRENCY: "5" });
  const runs: E2eResult["engine"] = [];
  try {
    for (const w of workers)
      for (const { keyBy, kafka, manifest } of backlogs) {
        try {
          runs.push(await runEngine(kafka, api, w, keyBy, manifest, passRate, (l) => progress(`e2e ${w} workers, ${keyBy} keys: ${l}`)));
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          log(`e2e ${w} workers, ${keyBy} keys: FAILED: ${error}`);
          runs.push({ workers: w, keyBy, error });
        }
      }
  } finally {
    await api.stop();
  }
  return {
    cars: first.cars.length,
    records,
    keyings,
    preloadRecordsPerSecond: Math.round((records * backlogs.length) / preloadS),
    passthroughRecordsPerSecond: Math.round(passRate),
    engine: runs,
  };
}

async function runEngine(
  kafka: KafkaSettings,
  api: PriceApiProcess,
  w: number,
  keyBy: KeyBy,
  manifest: Manifest,
  passRate: number,
  progress: (line: string) => void,
): Promise<EngineRun> {
  // Each run reads its backlog from the start, with a group and a changelog of its own.
  const name = `w${w}`;
  const e = engine(kafka, api, name, { WORKERS: String(w), SHARDS: String(Math.max(16, w)), TOPIC_CHANGELOG: `changelog-${name}` });
  const cars = manifest.cars.length;
  const expected = { cars, deadLetters: manifest.deadLetters.length };
  const records = manifest.counts.recordsSent;
  let seconds: number;
  let readySeconds: number;
  let cpu0: number | undefined;
  let cpu1: number | undefined;
  try {
    const since = Date.now();
    await e.start();
    readySeconds = (Date.now() - since) / 1000;
    cpu0 = cpuSeconds(e.pid!);
    seconds = await waitForOutputs(e, expected, since, 15 * 60_000, progress);
    cpu1 = cpuSeconds(e.pid!);
  } finally {
    await e.kill9();
  }
  progress("counting changelog and repartition records ...");
  const changelog = await countChangelog(kafka, `${kafka.topicPrefix}changelog-${name}`);
  const repartition = await countRepartition(kafka, `${kafka.topicPrefix}${name}`);
  const written =
    expected.cars +
    expected.deadLetters +
    changelog.joinValues +
    changelog.joinTombstones +
    changelog.waitingValues +
    changelog.waitingTombstones +
    changelog.positions +
    repartition.parts +
    repartition.markers;
  return {
    workers: w,
    keyBy,
    seconds,
    readySeconds,
    carsPerSecond: Math.round(cars / seconds),
    recordsPerSecond: Math.round(records / seconds),
    ratio: Number((records / seconds / passRate).toFixed(2)),
    cpuSecondsPer1000Cars: cpu0 === undefined || cpu1 === undefined ? undefined : Number((((cpu1 - cpu0) / cars) * 1000).toFixed(3)),
    changelog,
    repartition,
    recordsPerCar: Number((written / cars).toFixed(2)),
  };
}
