// Memory with many open cars: every car misses its engine and the window is long, so all
// stay open; RSS is read once the engine holds them all.
import type { KafkaSettings } from "../src/config.ts";
import { generate } from "../src/generate/index.ts";
import { engine, freshPrefix, priceApi } from "./stack.ts";

export interface MemoryResult {
  openCars: number;
  rssMb: number;
  idleRssMb: number;
}

export async function runMemory(base: KafkaSettings, cars: number, progress: (line: string) => void): Promise<MemoryResult> {
  const kafka = await freshPrefix(base, "memory");
  const api = await priceApi({ delayMinMs: 0, delayMaxMs: 0 });
  const e = engine(kafka, api, "memory", { JOIN_TIMEOUT_MS: "3600000" });
  try {
    await e.start();
    await Bun.sleep(2000);
    const idle = (await e.metrics())!.rssBytes;
    await generate({ cars, seed: 13, missingEngine: 1, skus: 20, batchSize: 2000, joinTimeoutMs: 3_600_000 }, kafka);
    const deadline = Date.now() + 10 * 60_000;
    let m = await e.metrics();
    while ((m?.openCars ?? 0) < cars && Date.now() < deadline) {
      progress(`memory: ${m?.openCars ?? 0}/${cars} open cars, RSS ${Math.round((m?.rssBytes ?? 0) / 1e6)} MB`);
      await Bun.sleep(1000);
      m = await e.metrics();
    }
    return { openCars: m?.openCars ?? 0, rssMb: Math.round((m?.rssBytes ?? 0) / 1e6), idleRssMb: Math.round(idle / 1e6) };
  } finally {
    await e.kill9();
    await api.stop();
  }
}
