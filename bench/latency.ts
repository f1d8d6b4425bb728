// Latency at a fixed input rate: last part → visible to a read_committed consumer, with RSS
// and open cars sampled every second.
import type { KafkaSettings } from "../src/config.ts";
import { topicsOf } from "../src/config.ts";
import { generate } from "../src/generate/index.ts";
import { OutputWatcher, type LatencySummary } from "../src/verify/watch.ts";
import { engine, freshPrefix, priceApi, waitForOutputs } from "./stack.ts";
import { CpuMeter } from "./cpu.ts";

export interface LatencyResult {
  rate: number;
  seconds: number;
  cars: number;
  completed: LatencySummary;
  incomplete: LatencySummary;
  /** COMPLETED cars that could leave the join WARMUP_S or more after the input began. */
  completedAfterWarmup: LatencySummary;
  peakRssMb: number;
  openCarsSeries: number[];
  /** % of one core while the input ran, by process (the machine has 2 cores: 200 % is all of it). */
  cpuPercent: Record<string, number>;
}

/**
 * The first seconds of a run pay for connections, JIT and the first transactions: the
 * all-cars figures include them (and are what the target is judged on); a second row leaves
 * them out to show the steady state.
 */
export const WARMUP_S = 5;

export async function runLatency(base: KafkaSettings, rate: number, seconds: number, brokerPid: number | undefined, progress: (line: string) => void): Promise<LatencyResult> {
  const kafka = await freshPrefix(base, "latency");
  const api = await priceApi({ delayMinMs: 0, delayMaxMs: 0, maxConcurrency: 5 });
  const e = engine(kafka, api, "latency");
  const watcher = new OutputWatcher(kafka, topicsOf(kafka));
  let peakRss = 0;
  const openCars: number[] = [];
  try {
    await e.start();
    await watcher.start();
    const sampler = setInterval(async () => {
      const m = await e.metrics();
      if (!m) return;
      peakRss = Math.max(peakRss, m.rssBytes);
      openCars.push(m.openCars);
      progress(`latency: ${watcher.seen()} cars visible, ${m.openCars} open, RSS ${Math.round(m.rssBytes / 1e6)} MB`);
    }, 1000);
    const cpu = new CpuMeter({ broker: brokerPid, engine: e.pid, "generator + watcher": process.pid });
    cpu.begin();
    const inputBegan = Date.now();
    const manifest = await generate({ cars: rate * seconds, seed: 9, rate, missingEngine: 0.01, skus: 20, batchSize: 200 }, kafka);
    const cpuPercent = cpu.end();
    await waitForOutputs(e, manifest.cars.length + manifest.deadLetters.length, Date.now(), 120_000, () => {});
    await Bun.sleep(1000);
    clearInterval(sampler);
    const l = watcher.latencies(manifest);
    const steady = watcher.latencies(manifest, inputBegan + WARMUP_S * 1000);
    return { rate, seconds, cars: manifest.cars.length, completed: l.completed, incomplete: l.incomplete, completedAfterWarmup: steady.completed, peakRssMb: Math.round(peakRss / 1e6), openCarsSeries: openCars, cpuPercent };
  } finally {
    await watcher.stop();
    await e.kill9();
    await api.stop();
  }
}
