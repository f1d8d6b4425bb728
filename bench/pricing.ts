// Pricing against the seed's API (0–800 ms, at most 5 at once): cars/s, and the share of the
// time five requests are open while cars wait, with a small catalog (requests are shared) and
// with every SKU distinct (they cannot be).
import type { KafkaSettings } from "../src/config.ts";
import { generate } from "../src/generate/index.ts";
import { engine, freshPrefix, priceApiProcess } from "./stack.ts";

export interface PricingRun {
  catalog: "small" | "distinct";
  seconds: number;
  carsPriced: number;
  carsPerSecond: number;
  saturation: number;
}

export async function runPricing(base: KafkaSettings, seconds: number, progress: (line: string) => void): Promise<PricingRun[]> {
  const runs: PricingRun[] = [];
  for (const catalog of ["small", "distinct"] as const) {
    const kafka = await freshPrefix(base, `pricing-${catalog}`);
    const api = await priceApiProcess({ DELAY_MIN_MS: "0", DELAY_MAX_MS: "800", MAX_CONCURRENCY: "5" });
    const e = engine(kafka, api, `pricing-${catalog}`, { PRICE_DEADLINE_MS: "600000" });
    try {
      await e.start();
      // More cars than can be priced in the time: the dispatcher is never short of work.
      const rate = catalog === "small" ? 200 : 20;
      void generate({ cars: rate * seconds, seed: 11, rate, skus: 20, distinctSkus: catalog === "distinct" }, kafka).catch(() => {});
      const t0 = Date.now();
      while (Date.now() - t0 < seconds * 1000) {
        await Bun.sleep(1000);
        const m = await e.metrics();
        progress(`pricing (${catalog}): ${m?.carsOut.COMPLETED ?? 0} priced, ${m?.waiting ?? 0} waiting, ${m?.inFlight ?? 0} in flight`);
      }
      const m = (await e.metrics())!;
      const priced = m.carsOut.COMPLETED ?? 0;
      runs.push({
        catalog,
        seconds,
        carsPriced: priced,
        carsPerSecond: Number((priced / seconds).toFixed(1)),
        saturation: Number((m.priceSaturatedS / Math.max(1e-9, m.priceWaitingS)).toFixed(3)),
      });
    } finally {
      await e.kill9();
      await api.stop();
    }
  }
  return runs;
}
