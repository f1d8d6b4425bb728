// End-to-end throughput: a preloaded backlog through the engine (1, 2, 4 workers) and through
// the passthrough pipe, side by side on the same input. Per engine run also the CPU it spent
// (all threads, from /proc: a figure that does not depend on what else the machine runs) and
// the records it wrote per car (outputs and changelog entries, read back afterwards).
import type { KafkaSettings } from "../src/config.ts";
import { generate } from "../src/generate/index.ts";
import { cpuSeconds } from "./cpu.ts";
import { runPassthrough } from "./passthrough.ts";
import { countChangelog, type ChangelogCounts } from "./records.ts";
import { engine, freshPrefix, priceApi, waitForOutputs } from "./stack.ts";

export interface E2eResult {
  cars: number;
  records: number;
  preloadRecordsPerSecond: number;
  passthroughRecordsPerSecond: number;
  engine: Array<{
    workers: number;
    seconds: number;
    carsPerSecond: number;
    recordsPerSecond: number;
    ratio: number;
    /** utime + stime of the engine process (every thread) from ready to the last output, per 1,000 cars. */
    cpuSecondsPer1000Cars?: number;
    /** Changelog records the run wrote (read_committed, when the last output was committed). */
    changelog?: ChangelogCounts;
    /** (outputs + dead letters + changelog records) / cars. */
    recordsPerCar?: number;
  }>;
}

export async function runE2e(base: KafkaSettings, cars: number, workers: number[], progress: (line: string) => void): Promise<E2eResult> {
  const kafka = await freshPrefix(base, "e2e");
  progress(`e2e: preloading ${cars} cars ...`);
  const t0 = Date.now();
  const manifest = await generate({ cars, seed: 7, missingEngine: 0.01, missingWheels: 0.01, skus: 20, batchSize: 2000 }, kafka, {
    onProgress: (p) => progress(`e2e: preload ${p.sent}/${p.total} records`),
  });
  const records = manifest.counts.recordsSent;
  const preloadS = (Date.now() - t0) / 1000;
  const expected = manifest.cars.length + manifest.deadLetters.length;
  const passS = await runPassthrough(kafka, records, progress);
  const passRate = records / passS;
  const api = await priceApi({ delayMinMs: 0, delayMaxMs: 0, maxConcurrency: 5 });
  const runs: E2eResult["engine"] = [];
  try {
    for (const w of workers) {
      // Each run reads the same input from the start, with a group and a changelog of its own.
      const e = engine(kafka, api, `w${w}`, { WORKERS: String(w), SHARDS: String(Math.max(16, w)), TOPIC_CHANGELOG: `changelog-w${w}` });
      const since = Date.now();
      await e.start();
      const cpu0 = cpuSeconds(e.pid!);
      const seconds = await waitForOutputs(e, expected, since, 15 * 60_000, (l) => progress(`e2e ${w} workers: ${l}`));
      const cpu1 = cpuSeconds(e.pid!);
      await e.kill9();
      progress(`e2e ${w} workers: counting changelog records ...`);
      const changelog = await countChangelog(kafka, `${kafka.topicPrefix}changelog-w${w}`);
      const cars = manifest.cars.length;
      const written = expected + changelog.joinValues + changelog.joinTombstones + changelog.waitingValues + changelog.waitingTombstones;
      runs.push({
        workers: w,
        seconds,
        carsPerSecond: Math.round(cars / seconds),
        recordsPerSecond: Math.round(records / seconds),
        ratio: Number((records / seconds / passRate).toFixed(2)),
        cpuSecondsPer1000Cars: cpu0 === undefined || cpu1 === undefined ? undefined : Number((((cpu1 - cpu0) / cars) * 1000).toFixed(3)),
        changelog,
        recordsPerCar: Number((written / cars).toFixed(2)),
      });
    }
  } finally {
    await api.stop();
  }
  return {
    cars: manifest.cars.length,
    records,
    preloadRecordsPerSecond: Math.round(records / preloadS),
    passthroughRecordsPerSecond: Math.round(passRate),
    engine: runs,
  };
}
