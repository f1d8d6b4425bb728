// Memory with many open cars: every car misses its engine and the window is long, so all
// stay open. RSS is sampled while the engine reads them (the intake peak: fetch buffers,
// decode and clone garbage not yet collected) and then while it holds them with nothing
// to read (settled: what 100,000 open cars cost to keep).
import type { KafkaSettings } from "../src/config.ts";
import { generate } from "../src/generate/index.ts";
import { engine, freshPrefix, priceApiProcess } from "./stack.ts";

export interface MemoryResult {
  openCars: number;
  /** Highest RSS seen from the start of the intake until every car was open. */
  peakRssMb: number;
  /** RSS after holding every car for SETTLE_S seconds with no input. */
  rssMb: number;
  idleRssMb: number;
  /** JavaScript heap in use per thread while holding them, MB. */
  heapMb: Record<string, number>;
  /** The same before the input (what a thread holds with no cars), bytes. */
  idleHeapBytes?: Record<string, number>;
  /** The same while holding them, bytes. */
  heapBytes?: Record<string, number>;
}

const SETTLE_S = 10;

export async function runMemory(base: KafkaSettings, cars: number, progress: (line: string) => void): Promise<MemoryResult> {
  const kafka = await freshPrefix(base, "memory");
  const api = await priceApiProcess({ DELAY_MIN_MS: "0", DELAY_MAX_MS: "0" });
  const e = engine(kafka, api, "memory", { JOIN_TIMEOUT_MS: "3600000" });
  const mb = (bytes: number | undefined) => Math.round((bytes ?? 0) / 1e6);
  try {
    await e.start();
    await Bun.sleep(2000);
    const idleMetrics = (await e.metrics())!;
    const idle = idleMetrics.rssBytes;
    let peak = idle;
    const sampler = setInterval(async () => {
      const m = await e.metrics();
      peak = Math.max(peak, m?.rssBytes ?? 0);
      progress(`memory: ${m?.openCars ?? 0}/${cars} open cars, RSS ${mb(m?.rssBytes)} MB (peak ${mb(peak)} MB)`);
    }, 500);
    try {
      await generate({ cars, seed: 13, missingEngine: 1, skus: 20, batchSize: 2000, joinTimeoutMs: 3_600_000 }, kafka);
      const deadline = Date.now() + 10 * 60_000;
      while (((await e.metrics())?.openCars ?? 0) < cars && Date.now() < deadline) await Bun.sleep(500);
    } finally {
      clearInterval(sampler);
    }
    for (let s = 0; s < SETTLE_S; s++) {
      await Bun.sleep(1000);
      const m = await e.metrics();
      peak = Math.max(peak, m?.rssBytes ?? 0);
      progress(`memory: holding ${m?.openCars ?? 0} open cars, RSS ${mb(m?.rssBytes)} MB (${SETTLE_S - s - 1} s to go)`);
    }
    const m = await e.metrics();
    const heapMb = Object.fromEntries(Object.entries(m?.heapUsedBytes ?? {}).map(([thread, bytes]) => [thread, mb(bytes)]));
    return {
      openCars: m?.openCars ?? 0,
      peakRssMb: mb(peak),
      rssMb: mb(m?.rssBytes),
      idleRssMb: mb(idle),
      heapMb,
      idleHeapBytes: idleMetrics.heapUsedBytes,
      heapBytes: m?.heapUsedBytes,
    };
  } finally {
    await e.kill9();
    await api.stop();
  }
}
