// bun run demo: the whole stack on this machine. Starts the broker (unless KAFKA_BROKERS is
// set), the mock price API and the engine, generates cars, shows live progress, verifies the
// outputs against the generator's manifest, prints a summary, and stops what it started.
import { demoSpec, kafkaBrokersGiven, kafkaSpec, loadOrExit, loadPriceApiSettings, localBrokerSpec, loadSettings, processSource, topicsOf } from "../config.ts";
import { startBroker, stopBroker } from "../local/index.ts";
import { freePort } from "../local/index.ts";
import { startPriceApi } from "../price-api/index.ts";
import { generate } from "../generate/index.ts";
import { readOutputs } from "../verify/index.ts";
import { compare } from "../verify/index.ts";
import { printReport } from "../verify/index.ts";
import { OutputWatcher } from "../verify/index.ts";
import { scrapeMetrics, type EngineCounters } from "../engine/index.ts";
import { startLogging } from "../log.ts";

const logger = startLogging("demo");

const demo = loadOrExit(demoSpec);
const env = processSource().env;
const kafkaBase = loadSettings(kafkaSpec, { env, argv: [] });
const kafka = { ...kafkaBase, topicPrefix: kafkaBase.topicPrefix || `demo-${Date.now().toString(36)}-` };
const topics = topicsOf(kafka);
const log = (line: string) => logger.info(line);
const stops: Array<() => Promise<unknown>> = [];
const stopAll = async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
};
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

try {
  if (!kafkaBrokersGiven()) {
    const local = loadSettings(localBrokerSpec, { env, argv: [] });
    const r = await startBroker(local, kafka, log);
    if (r.started) stops.push(() => stopBroker(local, log));
  }
  const priceApi = await startPriceApi({ ...loadPriceApiSettings({ env, argv: [] }), port: 0 });
  stops.push(() => priceApi.stop());
  log(`price API at ${priceApi.url}`);

  const httpPort = await freePort();
  const engine = Bun.spawn([process.execPath, new URL("./engine.ts", import.meta.url).pathname], {
    env: {
      ...env,
      KAFKA_BROKERS: kafka.brokers.join(","),
      TOPIC_PREFIX: kafka.topicPrefix,
      PRICE_API_URL: priceApi.url,
      HTTP_PORT: String(httpPort),
      GROUP_ID: `${kafka.topicPrefix}engine`,
    },
    stdout: "inherit",
    stderr: "inherit",
  });
  stops.push(async () => {
    engine.kill("SIGTERM");
    await engine.exited;
  });
  const metricsUrl = `http://127.0.0.1:${httpPort}`;
  const t0 = Date.now();
  while (
    !(await fetch(`${metricsUrl}/ready`)
      .then((r) => r.ok)
      .catch(() => false))
  ) {
    if (Date.now() - t0 > 60_000) throw new Error("the engine did not become ready within 60 s");
    await Bun.sleep(200);
  }
  log(`engine ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  log(`status page: ${metricsUrl}/ (live charts; /metrics for Prometheus)`);

  const watcher = new OutputWatcher(kafka, topics);
  await watcher.start();
  stops.push(() => watcher.stop());

  let latest: EngineCounters | undefined;
  let peakRss = 0;
  // The engine's own pace: from its first input record to its last committed output.
  let firstInAt: number | undefined;
  let lastOutAt: number | undefined;
  let lastOutCount = 0;
  const progress = setInterval(async () => {
    latest = await scrapeMetrics(metricsUrl).catch(() => latest);
    if (!latest) return;
    peakRss = Math.max(peakRss, latest.rssBytes);
    const s = latest.carsOut;
    const outCount = Object.values(s).reduce((a, b) => a + b, 0) + latest.deadLetters;
    if (firstInAt === undefined && latest.recordsIn > 0) firstInAt = Date.now();
    if (outCount > lastOutCount) {
      lastOutCount = outCount;
      lastOutAt = Date.now();
    }
    process.stderr.write(
      `\r[demo] in ${latest.recordsIn} records | out: completed ${s.COMPLETED ?? 0}, missing ${(s.MISSING_BODY ?? 0) + (s.MISSING_ENGINE ?? 0) + (s.MISSING_REMOTE_CONTROL ?? 0) + (s.MISSING_WHEELS ?? 0)}, failed price ${s.FAILED_GET_PRICE ?? 0}, dlq ${latest.deadLetters} | waiting ${latest.waiting}, price requests in flight ${latest.inFlight}   `,
    );
  }, 500);

  const genStart = Date.now();
  const manifest = await generate(
    {
      cars: demo.cars,
      seed: demo.seed,
      missingBody: 0.02,
      missingEngine: 0.02,
      missingRemote: 0.02,
      missingWheels: 0.02,
      lateRate: 0.01,
      dupRate: 0.02,
      conflictRate: 0.01,
      malformedRate: 0.01,
      rate: demo.rate,
    },
    kafka,
  );
  const genMs = Date.now() - genStart;
  const expectedCars = manifest.cars.length;
  const expectedOut = expectedCars + manifest.deadLetters.length;
  const read = await readOutputs(kafka, [topics.completed, topics.incomplete, topics.dlq], {
    quietMs: 8000,
    timeoutMs: 10 * 60_000,
    expectedRecords: expectedOut,
    earlyQuietMs: 1500,
  });
  clearInterval(progress);
  process.stderr.write("\n");
  const report = compare(manifest, read.records, { allowFailedPrice: false });
  const latency = watcher.latencies(manifest);
  const records = manifest.counts.recordsSent;
  // Incomplete cars wait out their 5 s window and late parts are sent 6-7 s after their car:
  // both are part of the engine's time here, as they would be in production.
  const engineS = Math.max(0.001, ((lastOutAt ?? Date.now()) - (firstInAt ?? genStart)) / 1000);
  console.log("\nsummary");
  console.table({
    cars: { value: expectedCars },
    "input records": { value: records },
    "generator records/s": { value: Math.round(records / (genMs / 1000)) },
    "engine seconds (first record in → last output)": { value: Number(engineS.toFixed(1)) },
    "engine cars/s": { value: Math.round(expectedCars / engineS) },
    "engine records/s": { value: Math.round(records / engineS) },
    "latency p50 / p99 / max, ms (COMPLETED: last part → visible)": { value: `${latency.completed.p50} / ${latency.completed.p99} / ${latency.completed.max}` },
    "latency p50 / p99 / max, ms (incomplete: window end → visible)": {
      value: `${latency.incomplete.p50} / ${latency.incomplete.p99} / ${latency.incomplete.max}`,
    },
    "peak engine RSS (MB)": { value: Math.round(peakRss / 1e6) },
    "price API requests": { value: priceApi.stats().served },
    "price API max concurrency seen": { value: priceApi.stats().maxConcurrencySeen },
  });
  printReport(report);
  await stopAll();
  process.exit(report.ok ? 0 : 1);
} catch (e) {
  process.stderr.write("\n");
  logger.error(`failed: ${(e as Error).message}`);
  await stopAll();
  process.exit(1);
}
