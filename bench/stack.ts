// What every end-to-end benchmark needs: fresh topics under a prefix, the mock price API,
// engine processes, and a wait for the engine's committed outputs.
import { resolve } from "node:path";
import type { KafkaSettings, PriceApiSettings } from "../src/config.ts";
import { loadSettings, priceApiSpec, topicsOf } from "../src/config.ts";
import { createKafka, ensureTopics } from "../src/kafka.ts";
import { EngineProcess } from "../src/local/engine-process.ts";
import { startPriceApi, type RunningPriceApi } from "../src/price-api/server.ts";

export const logDir = resolve(import.meta.dir, "../.local/bench-logs");

export async function freshPrefix(base: KafkaSettings, label: string): Promise<KafkaSettings> {
  const kafka = { ...base, topicPrefix: `bench-${Date.now().toString(36)}-${label}-` };
  const admin = createKafka(kafka, "bench-admin").admin();
  await admin.connect();
  await ensureTopics(admin, kafka);
  await admin.disconnect();
  return kafka;
}

export async function priceApi(overrides: Partial<PriceApiSettings>): Promise<RunningPriceApi> {
  return startPriceApi({ ...loadSettings(priceApiSpec, { env: {}, argv: [] }), port: 0, ...overrides });
}

export function engine(kafka: KafkaSettings, api: RunningPriceApi, name: string, env: Record<string, string> = {}): EngineProcess {
  return new EngineProcess(
    `${kafka.topicPrefix}${name}`,
    { KAFKA_BROKERS: kafka.brokers.join(","), TOPIC_PREFIX: kafka.topicPrefix, GROUP_ID: `${kafka.topicPrefix}${name}`, PRICE_API_URL: api.url, ...env },
    logDir,
  );
}

/** Waits until the engine committed `expected` outputs; returns the seconds it took from `since`. */
export async function waitForOutputs(e: EngineProcess, expected: number, since: number, timeoutMs: number, progress: (line: string) => void): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  for (;;) {
    const m = await e.metrics();
    const out = m ? Object.values(m.carsOut).reduce((a, b) => a + b, 0) + m.deadLetters : 0;
    if (out !== last) {
      last = out;
      progress(`${out}/${expected} outputs, ${m?.recordsIn ?? 0} records in, RSS ${Math.round((m?.rssBytes ?? 0) / 1e6)} MB`);
    }
    if (out >= expected) return (Date.now() - since) / 1000;
    if (Date.now() > deadline) throw new Error(`engine ${e.name}: ${out}/${expected} outputs after ${timeoutMs} ms`);
    await Bun.sleep(200);
  }
}

export { topicsOf };
