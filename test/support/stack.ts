// The real stack for engine tests: the engine as its own process (so it can be SIGKILLed),
// the mock price API in-process, the generator and the verifier.
import { mkdirSync, openSync, closeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { KafkaSettings, PriceApiSettings, Topics } from "../../src/config.ts";
import { loadSettings, priceApiSpec, topicsOf } from "../../src/config.ts";
import { scrapeMetrics, type EngineCounters } from "../../src/engine/scrape.ts";
import { generate, type Manifest } from "../../src/generate/index.ts";
import { startPriceApi, type RunningPriceApi } from "../../src/price-api/server.ts";
import { compare, type Report } from "../../src/verify/compare.ts";
import { readOutputs } from "../../src/verify/reader.ts";
import { formatReport } from "../../src/verify/report.ts";
import { freshTopics } from "./kafka.ts";
import { freePort } from "../../src/local/ports.ts";

const root = resolve(import.meta.dir, "../..");
const logDir = join(root, ".local", "test-logs");

export async function priceApi(overrides: Partial<PriceApiSettings> = {}): Promise<RunningPriceApi> {
  const defaults = loadSettings(priceApiSpec, { env: {}, argv: [] });
  return startPriceApi({ ...defaults, port: 0, ...overrides });
}

export class EngineProcess {
  private proc: ReturnType<typeof Bun.spawn> | undefined;
  /** Chosen by the OS at each start. */
  port = 0;
  starts = 0;

  constructor(
    readonly name: string,
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the engine process and waits until /ready says every partition is restored. */
  async start(readyTimeoutMs = 60_000): Promise<void> {
    mkdirSync(logDir, { recursive: true });
    this.port = await freePort();
    const log = openSync(join(logDir, `${this.name}.log`), "a");
    this.proc = Bun.spawn([process.execPath, join(root, "src/cli/engine.ts")], {
      cwd: root,
      env: { ...process.env, ...this.env, HTTP_PORT: String(this.port) },
      stdout: log,
      stderr: log,
    });
    closeSync(log);
    this.starts++;
    await this.waitReady(readyTimeoutMs);
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(1000) })
        .then(async (r) => r.ok && ((await r.json()) as { partitions: number[] }).partitions.length > 0)
        .catch(() => false);
      if (ready) return;
      if (this.proc?.exitCode !== null && this.proc?.exitCode !== undefined) throw new Error(`engine ${this.name} exited with ${this.proc.exitCode} (log .local/test-logs/${this.name}.log)`);
      if (Date.now() > deadline) throw new Error(`engine ${this.name} not ready within ${timeoutMs} ms`);
      await Bun.sleep(100);
    }
  }

  async metrics(): Promise<EngineCounters | undefined> {
    return scrapeMetrics(this.url).catch(() => undefined);
  }

  /** kill -9: no shutdown hook runs. */
  async kill9(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    this.proc = undefined;
  }

  async stop(): Promise<number | undefined> {
    if (!this.proc) return undefined;
    this.proc.kill("SIGTERM");
    const code = await this.proc.exited;
    this.proc = undefined;
    return code;
  }

  exited(): boolean {
    return this.proc === undefined || this.proc.exitCode !== null;
  }
}

export interface Stack {
  kafka: KafkaSettings;
  topics: Topics;
  api: RunningPriceApi;
  engine: EngineProcess;
}

/** Fresh topics, a price API and an engine process (not started) for one test. */
export async function stack(label: string, opts: { api?: Partial<PriceApiSettings>; engineEnv?: Record<string, string> } = {}): Promise<Stack> {
  const { settings: kafka, topics } = await freshTopics(label);
  const api = await priceApi(opts.api);
  const engine = new EngineProcess(`${kafka.topicPrefix}engine`, {
    KAFKA_BROKERS: kafka.brokers.join(","),
    TOPIC_PREFIX: kafka.topicPrefix,
    GROUP_ID: `${kafka.topicPrefix}group`,
    PRICE_API_URL: api.url,
    ...opts.engineEnv,
  });
  return { kafka, topics: topicsOf(kafka), api, engine };
}

export async function verifyOutputs(kafka: KafkaSettings, manifest: Manifest, opts: { allowFailedPrice?: boolean; timeoutMs?: number } = {}): Promise<Report> {
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
  return report;
}

/** Waits until the engine reports as many committed outputs as the manifest expects (or time is up). */
export async function engineCaughtUp(engine: EngineProcess, manifest: Manifest, timeoutMs: number): Promise<boolean> {
  const expected = manifest.cars.length + manifest.deadLetters.length;
  return until(async () => {
    const m = await engine.metrics();
    if (!m) return false;
    const out = Object.values(m.carsOut).reduce((a, b) => a + b, 0) + m.deadLetters;
    return out >= expected;
  }, timeoutMs, 250);
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
