// The engine's counters, gauges and histograms (SPEC §10), exposed through prom-client.
//
// Each family keeps its own values in a Map the engine updates synchronously (cheap on the hot
// path, readable at once by the status page) and hands them to prom-client only when a scrape
// asks (`collect`). prom-client brings the exposition format and the process metrics.
//
// prom-client 15 under Bun 1.4.4 (checked): CPU seconds, resident/virtual memory, open fds,
// heap size and event-loop lag (perf_hooks.monitorEventLoopDelay) all carry real values.
// Left out because Bun never fills them: nodejs_gc_duration_seconds (Bun accepts a
// PerformanceObserver for 'gc' entries but never emits one: 'gc' is not in
// PerformanceObserver.supportedEntryTypes) and nodejs_active_{handles,requests,resources}
// (Bun's process._getActiveHandles()/getActiveResourcesInfo() return empty lists, so they read 0
// with timers and sockets open). Also left out: nodejs_heap_space_size_*, V8's heap spaces, of
// which Bun fills only "old" and whose collection (v8.getHeapSpaceStatistics) takes milliseconds
// per scrape in Bun, most of a render; nodejs_heap_size_* and rccar_heap_used_bytes remain.
// Bun's monitorEventLoopDelay histograms share one state (resetting one resets all), so
// nodejs_eventloop_lag_* hold since the last /metrics scrape only while nothing else resets them;
// the status page measures the loop with its own timer instead (status.ts).
import { Counter, Gauge, Histogram as PromHistogram, Registry, collectDefaultMetrics } from "prom-client";
import { RecentDeadLetters } from "./recent-dead-letters.ts";

export type Labels<L extends string = string> = Record<L, string | number>;

function keyOf(labels: Record<string, string | number>): string {
  let k = "";
  for (const name in labels) k += `${name}=${labels[name]}\u0000`;
  return k;
}

/** Why these are left out under Bun: see the header. */
const EMPTY_UNDER_BUN = [
  "nodejs_gc_duration_seconds",
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_requests",
  "nodejs_active_requests_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
];

/** A counter or gauge family with label names L. A counter's `set` is for totals kept elsewhere (the pricing clock). */
export class Family<L extends string = never> {
  private readonly values = new Map<string, { labels: Labels<L>; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
    readonly labelNames: readonly L[],
    registry: Registry,
  ) {
    const values = this.values;
    const config = {
      name,
      help,
      labelNames: labelNames as readonly string[] as string[],
      registers: [registry],
      collect(this: Counter<string> | Gauge<string>) {
        this.reset();
        if (this instanceof Counter) for (const { labels, value } of values.values()) this.inc(labels, value);
        else for (const { labels, value } of values.values()) (this as Gauge<string>).set(labels, value);
      },
    };
    if (type === "counter") new Counter(config);
    else new Gauge(config);
  }

  add(labels: Labels<L>, by: number): void {
    const key = keyOf(labels);
    const cur = this.values.get(key);
    if (cur) cur.value += by;
    else this.values.set(key, { labels: { ...labels }, value: by });
  }

  set(labels: Labels<L>, value: number): void {
    const key = keyOf(labels);
    const cur = this.values.get(key);
    if (cur) cur.value = value;
    else this.values.set(key, { labels: { ...labels }, value });
  }

  get(labels: Labels<L> = {} as Labels<L>): number {
    return this.values.get(keyOf(labels))?.value ?? 0;
  }

  /** Drops every series (a gauge the engine sets afresh each time). */
  clear(): void {
    this.values.clear();
  }

  /** Drops one series (a gauge of a partition this process no longer owns). */
  remove(labels: Labels<L>): void {
    this.values.delete(keyOf(labels));
  }

  /** Drops every series whose labels include `match` (e.g. every reason of one partition). */
  removeWhere(match: Partial<Labels<L>>): void {
    for (const [k, { labels }] of this.values) {
      if (Object.entries(match).every(([n, v]) => String(labels[n as L]) === String(v))) this.values.delete(k);
    }
  }

  /** Every series, for the status page. */
  entries(): ReadonlyArray<{ labels: Labels<L>; value: number }> {
    return [...this.values.values()];
  }

  /** The sum over every series. */
  total(): number {
    let t = 0;
    for (const { value } of this.values.values()) t += value;
    return t;
  }
}

export class Histogram {
  private readonly prom: PromHistogram<string>;
  /** Mirrors of what prom-client holds, readable synchronously by the status page. */
  count = 0;
  sum = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
    registry: Registry,
  ) {
    this.prom = new PromHistogram({ name, help, buckets: [...bounds], registers: [registry] });
  }

  observe(v: number): void {
    this.count++;
    this.sum += v;
    this.prom.observe(v);
  }
}

const STAGE_BOUNDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

/** What the process itself costs, read at the moment of asking. */
export interface ProcessReadings {
  cpuSeconds: number;
  rssBytes: number;
}

export class EngineMetrics {
  readonly registry = new Registry();

  private counter<L extends string = never>(name: string, help: string, labels: readonly L[] = []): Family<L> {
    return new Family<L>(name, help, "counter", labels, this.registry);
  }
  private gauge<L extends string = never>(name: string, help: string, labels: readonly L[] = []): Family<L> {
    return new Family<L>(name, help, "gauge", labels, this.registry);
  }

  readonly recordsIn = this.counter("rccar_records_in_total", "input records consumed, by topic", ["topic"]);
  readonly recordsOut = this.counter("rccar_records_out_total", "output records committed, by topic and situation", ["topic", "situation"]);
  readonly recordsRepartitioned = this.counter("rccar_records_repartitioned_total", "input records re-keyed by carId to a repartition topic (committed)");
  readonly waitingParts = this.gauge("rccar_parts_waiting_for_safe_time", "parts read and waiting in the join workers for the safe time, by partition", [
    "partition",
  ]);
  readonly safeTimeDelay = this.gauge("rccar_partition_safe_time_delay_seconds", "wall clock minus the partition's safe time", ["partition"]);
  readonly consumerLag = this.gauge("rccar_consumer_lag", "records behind the log end, by topic and partition", ["topic", "partition"]);
  readonly openCars = this.gauge("rccar_open_cars", "cars whose join window is open");
  readonly waitingCars = this.gauge("rccar_cars_waiting_for_price", "assembled cars waiting for prices");
  readonly inFlight = this.gauge("rccar_price_requests_in_flight", "price requests open now");
  readonly priceSaturated = this.counter("rccar_price_saturated_seconds_total", "time with PRICE_MAX_IN_FLIGHT requests open while cars waited");
  readonly priceWaiting = this.counter("rccar_price_waiting_seconds_total", "time with cars waiting for prices");
  readonly priceRequestErrors = this.counter(
    "rccar_price_request_errors_total",
    "price requests that failed, by reason (http_5xx, http_4xx, timeout, connection, bad_body)",
    ["reason"],
  );
  readonly transactions = this.counter("rccar_transactions_total", "Kafka transactions, by result", ["result"]);
  readonly heapUsed = this.gauge("rccar_heap_used_bytes", "JavaScript heap in use, by thread (main, join-0, join-1, ...)", ["thread"]);
  readonly partitionPaused = this.gauge("rccar_partition_paused", "input topic-partitions paused (1), by reason lane_full|no_room", [
    "topic",
    "partition",
    "reason",
  ]);
  readonly partitionLastProgress = this.gauge("rccar_partition_last_progress_seconds", "unix time of each partition's last progress", ["partition"]);
  readonly partitionWatermarkDelay = this.gauge("rccar_partition_watermark_delay_seconds", "wall clock minus each partition's watermark", ["partition"]);
  readonly partitionStalled = this.gauge("rccar_partition_stalled", "partitions with input waiting and no progress for STALL_TIMEOUT_MS (1), by reason", [
    "partition",
    "reason",
  ]);
  readonly restores = this.counter("rccar_restores_total", "partition sets taken and restored from the changelog");
  readonly rebuilds = this.counter("rccar_rebuilds_total", "tasks closed and rebuilt from Kafka after a failed commit");
  readonly kafkaRetriable = this.counter("rccar_kafka_retriable_total", "retriable Kafka client errors, by type", ["type"]);
  readonly priceLatency = new Histogram("rccar_price_request_seconds", "price request latency", [0.01, 0.05, 0.1, 0.25, 0.5, 0.8, 1, 2, 5], this.registry);
  readonly commitLatency = new Histogram("rccar_commit_seconds", "transaction commit latency", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5], this.registry);
  /** Where a car's time goes, stage by stage (the bench prints them beside its latency). */
  readonly mergeWait = new Histogram(
    "rccar_stage_merge_wait_seconds",
    "input record fetched → released by its partition's timestamp merge",
    STAGE_BOUNDS,
    this.registry,
  );
  readonly joinTurn = new Histogram("rccar_stage_join_seconds", "one turn's records through the join workers and back", STAGE_BOUNDS, this.registry);
  readonly safeTimeWait = new Histogram(
    "rccar_stage_safe_time_wait_seconds",
    "part handed to the join workers → joined (waiting for its partition's safe time, the repartition hop's stage 2)",
    STAGE_BOUNDS,
    this.registry,
  );
  readonly priceWait = new Histogram("rccar_stage_price_wait_seconds", "assembled car waiting for its prices", STAGE_BOUNDS, this.registry);
  readonly commitWait = new Histogram(
    "rccar_stage_commit_wait_seconds",
    "oldest output of a transaction, collected → its transaction started",
    STAGE_BOUNDS,
    this.registry,
  );
  readonly restoreSeconds = new Histogram(
    "rccar_restore_seconds",
    "time from taking partitions to processing them",
    [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30],
    this.registry,
  );
  readonly recentDeadLetters = new RecentDeadLetters(50);
  readonly startedAt = Date.now();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const name of EMPTY_UNDER_BUN) this.registry.removeSingleMetric(name);
  }

  /** Prometheus text exposition. */
  async render(): Promise<string> {
    this.heapUsed.set({ thread: "main" }, process.memoryUsage().heapUsed);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  processReadings(): ProcessReadings {
    const cpu = process.cpuUsage();
    return { cpuSeconds: (cpu.user + cpu.system) / 1e6, rssBytes: process.memoryUsage.rss() };
  }
}

/** The reason label for a dispatcher error text: a handful of values, never the free text. */
export function priceErrorReason(error: string): string {
  const http = /HTTP (\d)\d\d/.exec(error);
  if (http) return `http_${http[1]}xx`;
  if (/timeout|timed out|abort/i.test(error)) return "timeout";
  if (/connection|ECONN|socket/i.test(error)) return "connection";
  return "bad_body";
}
