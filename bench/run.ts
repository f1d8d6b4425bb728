// bun run bench: micro benchmarks, end-to-end throughput against a passthrough ceiling,
// latency at a fixed rate, pricing saturation, and memory with many open cars. Prints figures
// and ratios taken in one run (the machine is shared and noisy), writes bench/results/*.json
// and the README's table. Targets are printed as met / not met, never asserted.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { resolve } from "node:path";
import { benchSpec, kafkaBrokersGiven, type KeyBy, kafkaSpec, loadOrExit, loadSettings, localBrokerSpec, processSource } from "../src/config.ts";
import { brokerStatus, startBroker } from "../src/local/broker.ts";
import { runE2e, type E2eResult, type EngineRun, type FailedRun } from "./e2e.ts";
import { runLatency, WARMUP_S, type LatencyResult } from "./latency.ts";
import { runMemory, type MemoryResult } from "./memory.ts";
import { runMicro, type MicroResult } from "./micro.ts";
import { runPricing, type PricingRun } from "./pricing.ts";
import { NO_PREVIOUS, previousFigures, readmeFigures, type Row } from "./previous.ts";
import { runRestore, type RestoreResult } from "./restore.ts";

const settings = loadOrExit(benchSpec);
const env = processSource().env;
const kafka = loadSettings(kafkaSpec, { env, argv: [] });
const parts = new Set(settings.parts.split(","));
const progress = (line: string) => process.stderr.write(`\r\x1b[K[bench] ${line.slice(0, 150)}`);
const log = (line: string) => process.stderr.write(`\r\x1b[K[bench] ${line}\n`);

let brokerPid: number | undefined;
if (!kafkaBrokersGiven() && [...parts].some((p) => p !== "micro")) {
  const local = loadSettings(localBrokerSpec, { env, argv: [] });
  await startBroker(local, { ...kafka, brokers: [`127.0.0.1:${local.port}`] }, log);
  brokerPid = brokerStatus(local).pid;
}

const results: {
  machine: Record<string, string | number>;
  micro?: MicroResult;
  e2e?: E2eResult;
  latency?: LatencyResult[];
  pricing?: PricingRun[];
  memory?: MemoryResult;
  restore?: RestoreResult;
} = {
  machine: { cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), bun: Bun.version, at: new Date().toISOString() },
};
const started = Date.now();
if (parts.has("micro")) results.micro = await runMicro(log);
if (parts.has("e2e"))
  results.e2e = await runE2e(kafka, settings.cars, settings.workers.split(",").map(Number), [...new Set(settings.keyBy.split(",") as KeyBy[])], progress, log);
if (parts.has("latency")) {
  results.latency = [];
  const rates = settings.latencyRates.split(",").map(Number);
  for (const rate of rates) results.latency.push(await runLatency(kafka, rate, settings.latencySeconds, brokerPid, progress));
  // The grace is a floor under every part's wait for the safe time: the judged rate again with smaller ones.
  for (const grace of settings.latencyIdleGraces.split(",").filter((g) => g !== ""))
    results.latency.push(await runLatency(kafka, rates[0]!, settings.latencySeconds, brokerPid, progress, { IDLE_GRACE_MS: grace }));
}
if (parts.has("pricing")) results.pricing = await runPricing(kafka, settings.pricingSeconds, progress);
if (parts.has("memory")) results.memory = await runMemory(kafka, settings.openCars, progress);
if (parts.has("restore")) results.restore = await runRestore(kafka, settings.restoreOpenCars, settings.restoreWaitingCars, progress);
process.stderr.write("\n");

// ---- the table ------------------------------------------------------------------------
/** CPU per car of `run` over `base`'s: the cost of the keying, much less dependent on the machine's other load than cars/s. */
function cpuFactor(run: EngineRun | FailedRun, base: EngineRun | FailedRun): string {
  if ("error" in run || "error" in base || !run.cpuSecondsPer1000Cars || !base.cpuSecondsPer1000Cars) return "";
  return `, CPU per car × ${(run.cpuSecondsPer1000Cars / base.cpuSecondsPer1000Cars).toFixed(2)}`;
}

const rows: Row[] = [];
const target = (ok: boolean, what: string) => `${ok ? "met" : "NOT met"} (${what})`;
if (results.micro) {
  for (const [name, ops] of Object.entries(results.micro.opsPerSecond)) rows.push([`micro: ${name}`, `${ops.toLocaleString("en")} ops/s`, ""]);
  for (const [batch, ns] of Object.entries(results.micro.hopNsPerRecord)) rows.push([`micro: worker hop, ${batch}`, `${ns} ns/record`, ""]);
  rows.push(["micro: join cost per part", `${results.micro.joinNsPerPart} ns`, ""]);
  rows.push(["micro: hop stops dominating at batch size", String(results.micro.hopStopsDominatingAt ?? "never (≤ 10,000)"), ""]);
}
if (results.e2e) {
  const e = results.e2e;
  rows.push([`e2e: input`, `${e.cars.toLocaleString("en")} cars, ${e.records.toLocaleString("en")} records`, ""]);
  rows.push(["e2e: passthrough (ceiling)", `${e.passthroughRecordsPerSecond.toLocaleString("en")} records/s`, ""]);
  for (const r of e.engine) {
    // carId keying keeps the figure names it had before keyings were compared, so its previous runs still show.
    const keys = { carId: "", partId: " keyed by partId", none: " with no keys", mixed: " with mixed keys" }[r.keyBy];
    const what = (figure: string) => `e2e: ${figure}${keys}, ${r.workers} worker(s)`;
    if ("error" in r) {
      rows.push([what("engine"), `failed: ${r.error}`, ""]);
    } else {
      rows.push([
        what("engine"),
        `${r.carsPerSecond.toLocaleString("en")} cars/s, ${r.recordsPerSecond.toLocaleString("en")} records/s, ÷ passthrough ${r.ratio}`,
        r.workers === 2 && r.keyBy === "carId" ? target(r.ratio >= 0.8, "≥ 0.8") : "",
      ]);
      if (r.cpuSecondsPer1000Cars !== undefined) rows.push([what("engine CPU (all threads)"), `${r.cpuSecondsPer1000Cars} CPU-s per 1,000 cars`, ""]);
      const c = r.changelog;
      const perThousand = (n: number) => Math.round((n / e.cars) * 1000);
      if (c && r.recordsPerCar !== undefined)
        rows.push([
          what("records written per car"),
          `${r.recordsPerCar} (per 1,000 cars: join state ${perThousand(c.joinValues)} + ${perThousand(c.joinTombstones)} deleted, waiting ${perThousand(c.waitingValues)} + ${perThousand(c.waitingTombstones)} deleted, lane positions ${perThousand(c.positions)}${r.repartition ? `, repartition ${perThousand(r.repartition.parts)} parts + ${perThousand(r.repartition.markers)} watermark markers` : ""})`,
          "",
        ]);
    }
    // Each other keying against carId at the same worker count, measured back to back.
    const base = e.engine.find((b) => b.workers === r.workers && b.keyBy === "carId");
    if (r.keyBy === "carId" || !base) continue;
    const rate = (x: typeof r) => ("error" in x ? undefined : x.carsPerSecond);
    const [mine, theirs] = [rate(r), rate(base)];
    const ratio = mine !== undefined && theirs !== undefined && theirs > 0 ? Number((mine / theirs).toFixed(2)) : undefined;
    rows.push([
      `e2e: ${r.keyBy} ÷ carId keys, ${r.workers} worker(s)`,
      ratio === undefined ? `none (the ${mine === undefined ? r.keyBy : "carId"} run failed)` : `${ratio} (cars/s)${cpuFactor(r, base)}`,
      r.keyBy === "partId" ? target(ratio !== undefined && ratio >= 0.65, "≥ 0.65") : "",
    ]);
  }
}
for (const [i, l] of (results.latency ?? []).entries()) {
  // A run with settings of its own says so after its rate; default runs keep the figure names they always had.
  const at = `${l.rate} cars/s${Object.entries(l.settings ?? {})
    .map(([k, v]) => `, ${k}=${v}`)
    .join("")}`;
  rows.push([
    `latency: COMPLETED, last part → visible @ ${at}`,
    `p50 ${l.completed.p50} ms, p99 ${l.completed.p99} ms, max ${l.completed.max} ms`,
    i === 0 ? target(l.completed.p99 <= 250, "p99 ≤ 250 ms") : "",
  ]);
  const s = l.completedAfterWarmup;
  rows.push([`latency: COMPLETED after the first ${WARMUP_S} s @ ${at}`, `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms`, ""]);
  rows.push([`latency: incomplete, window end → visible @ ${at}`, `p50 ${l.incomplete.p50} ms, p99 ${l.incomplete.p99} ms`, ""]);
  rows.push([`latency: peak RSS / open cars (max) @ ${at}`, `${l.peakRssMb} MB / ${Math.max(0, ...l.openCarsSeries)}`, ""]);
  rows.push([
    `latency: where the time went @ ${at} (mean, p99 ≤ bucket)`,
    l.stages.map((st) => `${st.stage} ${st.meanMs} ms (≤ ${st.p99AtMostMs} ms)`).join(", "),
    "",
  ]);
  rows.push([
    `latency: CPU while the input ran @ ${at} (% of one core, 2 cores)`,
    Object.entries(l.cpuPercent)
      .map(([p, v]) => `${p} ${v} %`)
      .join(", "),
    "",
  ]);
}
if (results.latency && results.latency.length > 0) {
  // The knee: the highest rate tried whose p99 stays within the target.
  const defaults = results.latency.filter((l) => Object.keys(l.settings ?? {}).length === 0);
  const within = defaults.filter((l) => l.completed.p99 <= 250).map((l) => l.rate);
  const tried = defaults
    .map((l) => l.rate)
    .sort((a, b) => a - b)
    .join(", ");
  rows.push([
    "latency: knee (highest rate with p99 ≤ 250 ms)",
    within.length > 0 ? `${Math.max(...within)} cars/s (tried ${tried})` : `none of ${tried} cars/s`,
    "",
  ]);
}
for (const p of results.pricing ?? []) {
  rows.push([
    `pricing: ${p.catalog} catalog, API 0–800 ms, cap 5`,
    `${p.carsPerSecond} cars/s, 5 open ${(p.saturation * 100).toFixed(1)} % of the waiting time`,
    p.catalog === "small" ? target(p.saturation >= 0.95, "≥ 95 %") : "",
  ]);
}
if (results.memory) {
  const m = results.memory;
  rows.push([
    `memory: RSS holding ${m.openCars.toLocaleString("en")} open cars`,
    `${m.rssMb} MB (idle engine ${m.idleRssMb} MB)`,
    target(m.rssMb <= 250 && m.openCars >= settings.openCars, "≤ 250 MB"),
  ]);
  // What the join threads' heaps grew by, holding the cars, over what they held idle.
  const joinHeap = (bytes: Record<string, number> | undefined) =>
    Object.entries(bytes ?? {}).reduce((n, [thread, b]) => n + (thread.startsWith("join") ? b : 0), 0);
  const perCar = m.openCars > 0 ? Math.round((joinHeap(m.heapBytes) - joinHeap(m.idleHeapBytes)) / m.openCars) : 0;
  rows.push([`memory: JS heap of the join threads per open car (over idle)`, `${perCar} bytes`, target(perCar <= 500 && m.openCars > 0, "≤ 500 bytes")]);
  rows.push([`memory: peak RSS while reading ${m.openCars.toLocaleString("en")} open cars`, `${m.peakRssMb} MB`, ""]);
  rows.push([
    `memory: JS heap in use by thread, holding ${m.openCars.toLocaleString("en")} open cars`,
    Object.entries(m.heapMb)
      .map(([t, v]) => `${t} ${v} MB`)
      .join(", "),
    "",
  ]);
}
if (results.restore) {
  const r = results.restore;
  rows.push([
    `restore: ${r.openCars.toLocaleString("en")} open + ${r.waitingCars.toLocaleString("en")} waiting cars, assignment → processing`,
    `${r.restoredMs} ms (${r.joinStates.toLocaleString("en")} join states, ${r.restoredWaiting.toLocaleString("en")} waiting, ${r.changelogRecords.toLocaleString("en")} changelog records; spawn → /ready ${r.spawnToReadyMs} ms)`,
    target(r.restoredMs <= 3000, "≤ 3 s"),
  ]);
}
const readme = resolve(import.meta.dir, "../README.md");
const text = readFileSync(readme, "utf8");
const start = "<!-- bench:start -->";
const end = "<!-- bench:end -->";
const stored = previousFigures(resolve(import.meta.dir, "results"));
const committed = readmeFigures(text, start, end);
const previous = (figure: string) => stored.get(figure) ?? committed.get(figure) ?? NO_PREVIOUS;
const table = [
  `| figure | value | previous run | target |`,
  `|---|---|---|---|`,
  ...rows.map(([a, b, c]) => `| ${a} | ${b} | ${previous(a)} | ${c} |`),
  "",
  `Machine: ${results.machine.cores} cores, ${results.machine.memoryGiB} GiB, Bun ${results.machine.bun}, ${results.machine.at}; \`bun run bench\` (${Math.round((Date.now() - started) / 1000)} s).`,
].join("\n");
console.log(table);

const dir = resolve(import.meta.dir, "results");
mkdirSync(dir, { recursive: true });
writeFileSync(resolve(dir, `${Date.now()}.json`), JSON.stringify({ ...results, rows }, null, 2));
if (text.includes(start) && text.includes(end) && parts.size >= 5) {
  writeFileSync(readme, text.slice(0, text.indexOf(start) + start.length) + "\n" + table + "\n" + text.slice(text.indexOf(end)));
  log("README.md: benchmark table updated");
}
process.exit(0);
