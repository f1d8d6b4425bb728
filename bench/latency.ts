// Latency at a fixed input rate: last part → visible to a read_committed consumer, with RSS
// and open cars sampled every second.
import type { KafkaSettings } from "../src/config.ts";
import { topicsOf } from "../src/config.ts";
import { generate } from "../src/generate/index.ts";
import { OutputWatcher, type LatencySummary } from "../src/verify/watch.ts";
import { engine, freshPrefix, priceApiProcess, waitForOutputs } from "./stack.ts";
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
  /** Where the time went inside the engine, stage by stage (from its histograms). */
  stages: StageFigure[];
  /** Engine settings of this run that differ from the defaults (none: the defaults). */
  settings: Record<string, string>;
}

export interface StageFigure {
  stage: string;
  meanMs: number;
  /** Upper bound of the histogram bucket holding the 99th percentile. */
  p99AtMostMs: number;
  count: number;
}

/** The engine's per-stage histograms, in pipeline order (src/engine/metrics.ts). */
const STAGES: [stage: string, metric: string][] = [
  ["merge wait", "rccar_stage_merge_wait_seconds"],
  ["join turn", "rccar_stage_join_seconds"],
  ["safe-time wait", "rccar_stage_safe_time_wait_seconds"],
  ["price wait", "rccar_stage_price_wait_seconds"],
  ["commit wait", "rccar_stage_commit_wait_seconds"],
  ["commit", "rccar_commit_seconds"],
];

/** Mean and p99 bucket of each stage histogram in a Prometheus text exposition. */
export function stageFigures(text: string): StageFigure[] {
  return STAGES.map(([stage, metric]) => {
    const buckets: [number, number][] = [];
    let sum = 0;
    let count = 0;
    for (const line of text.split("\n")) {
      const b = new RegExp(`^${metric}_bucket\\{le="([^"]+)"\\} (\\S+)$`).exec(line);
      if (b) buckets.push([b[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(b[1]), Number(b[2])]);
      else if (line.startsWith(`${metric}_sum `)) sum = Number(line.split(" ")[1]);
      else if (line.startsWith(`${metric}_count `)) count = Number(line.split(" ")[1]);
    }
    const p99 = buckets.find(([, n]) => n >= 0.99 * count)?.[0] ?? Number.NaN;
    return { stage, meanMs: count > 0 ? Math.round((sum / count) * 10_000) / 10 : 0, p99AtMostMs: p99 * 1000, count };
  });
}

/**
 * The first seconds of a run pay for connections, JIT and the first transactions: the
 * all-cars figures include them (and are what the target is judged on); a second row leaves
 * them out to show the steady state.
 */
export const WARMUP_S = 5;

export async function runLatency(
  base: KafkaSettings,
  rate: number,
  seconds: number,
  brokerPid: number | undefined,
  progress: (line: string) => void,
  settings: Record<string, string> = {},
): Promise<LatencyResult> {
  const kafka = await freshPrefix(base, "latency");
  const api = await priceApiProcess({ DELAY_MIN_MS: "0", DELAY_MAX_MS: "0", MAX_CONCURRENCY: "5" });
  const e = engine(kafka, api, "latency", settings);
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
    const cpu = new CpuMeter({ broker: brokerPid, engine: e.pid, "generator + watcher": process.pid, "price API": api.pid });
    cpu.begin();
    const inputBegan = Date.now();
    let cpuPercent: Record<string, number> = {};
    const cars = rate * seconds;
    // Each planned car (no late or duplicate parts here) is one output. The watcher notes when
    // each becomes visible, in this process: the generator's model (seconds of CPU) waits until
    // all are seen, or it would stall the watcher and add seconds to the last cars' latency.
    const manifest = await generate({ cars, seed: 9, rate, missingEngine: 0.01, skus: 20, batchSize: 200 }, kafka, {
      beforeModel: async () => {
        cpuPercent = cpu.end();
        for (const deadline = Date.now() + 120_000; watcher.seen() < cars; await Bun.sleep(50))
          if (Date.now() > deadline) throw new Error(`latency: ${watcher.seen()} of ${cars} cars visible 120 s after the input ended`);
      },
    });
    await waitForOutputs(e, { cars: manifest.cars.length, deadLetters: manifest.deadLetters.length }, Date.now(), 120_000, () => {});
    await Bun.sleep(1000);
    clearInterval(sampler);
    const stages = stageFigures(await fetch(`${e.url}/metrics`).then((r) => r.text()));
    const l = watcher.latencies(manifest);
    const steady = watcher.latencies(manifest, inputBegan + WARMUP_S * 1000);
    return {
      rate,
      seconds,
      cars: manifest.cars.length,
      completed: l.completed,
      incomplete: l.incomplete,
      completedAfterWarmup: steady.completed,
      peakRssMb: Math.round(peakRss / 1e6),
      openCarsSeries: openCars,
      cpuPercent,
      stages,
      settings,
    };
  } finally {
    await watcher.stop();
    await e.kill9();
    await api.stop();
  }
}
