// The real stack for engine tests: the engine as its own process (so it can be SIGKILLed),
// the mock price API in-process, the generator and the verifier.
import type { KafkaSettings, PriceApiSettings, Topics } from "../../src/config.ts";
import { loadSettings, priceApiSpec, topicsOf } from "../../src/config.ts";
import { generate, type Manifest } from "../../src/generate/index.ts";
import { startPriceApi, type RunningPriceApi } from "../../src/price-api/server.ts";
import { compare, type FoundRecord, type Report } from "../../src/verify/compare.ts";
import { readOutputs } from "../../src/verify/reader.ts";
import { formatReport } from "../../src/verify/report.ts";
import { freshTopics, type FreshTopicsOptions } from "./kafka.ts";
import { EngineProcess } from "../../src/local/engine-process.ts";

export { EngineProcess };

export async function priceApi(overrides: Partial<PriceApiSettings> = {}): Promise<RunningPriceApi> {
  const defaults = loadSettings(priceApiSpec, { env: {}, argv: [] });
  return startPriceApi({ ...defaults, port: 0, ...overrides });
}

export interface Stack {
  kafka: KafkaSettings;
  topics: Topics;
  api: RunningPriceApi;
  engine: EngineProcess;
}

/** Fresh topics, a price API and an engine process (not started) for one test. */
export async function stack(
  label: string,
  opts: { api?: Partial<PriceApiSettings>; engineEnv?: Record<string, string>; topics?: FreshTopicsOptions } = {},
): Promise<Stack> {
  const { settings: kafka, topics } = await freshTopics(label, {}, opts.topics);
  const api = await priceApi(opts.api);
  const engine = new EngineProcess(`${kafka.topicPrefix}engine`, {
    KAFKA_BROKERS: kafka.brokers.join(","),
    TOPIC_PREFIX: kafka.topicPrefix,
    GROUP_ID: `${kafka.topicPrefix}group`,
    PRICE_API_URL: api.url,
    ...opts.engineEnv,
  });
  return { kafka, topics, api, engine };
}

export async function verifyOutputs(kafka: KafkaSettings, manifest: Manifest, opts: { allowFailedPrice?: boolean; timeoutMs?: number } = {}): Promise<Report> {
  return (await verifyAndRead(kafka, manifest, opts)).report;
}

/** verifyOutputs, also returning the output records it judged (to compare two runs' outputs). */
export async function verifyAndRead(
  kafka: KafkaSettings,
  manifest: Manifest,
  opts: { allowFailedPrice?: boolean; timeoutMs?: number } = {},
): Promise<{ report: Report; records: FoundRecord[] }> {
  const topics = topicsOf(kafka);
  const expected = manifest.cars.length + manifest.deadLetters.length;
  const read = await readOutputs(kafka, [topics.completed, topics.incomplete, topics.dlq], {
    quietMs: 6000,
    timeoutMs: opts.timeoutMs ?? 120_000,
    expectedRecords: expected,
    earlyQuietMs: 2000,
  });
  const report = compare(manifest, read.records, { allowFailedPrice: opts.allowFailedPrice ?? false });
  if (!report.ok) console.error(formatReport(report));
  return { report, records: read.records };
}

/** Waits until the engine reports as many committed outputs as the manifest expects (or time is up). */
export async function engineCaughtUp(engine: EngineProcess, manifest: Manifest, timeoutMs: number): Promise<boolean> {
  const expected = manifest.cars.length + manifest.deadLetters.length;
  return until(
    async () => {
      const m = await engine.metrics();
      if (!m) return false;
      const out = Object.values(m.carsOut).reduce((a, b) => a + b, 0) + m.deadLetters;
      return out >= expected;
    },
    timeoutMs,
    250,
  );
}

/** Polls until `cond` holds or the time is up; returns whether it held. */
export async function until(cond: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await Bun.sleep(everyMs);
  }
  return cond();
}

export { generate };
