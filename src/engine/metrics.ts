// Prometheus text exposition of the engine's counters, gauges and histograms (SPEC §10).
import { kafkaLogStats } from "../kafka-log.ts";

export type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, "_")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

class Family {
  readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
  ) {}
  add(labels: Labels, by: number): void {
    const key = labelText(labels);
    const cur = this.values.get(key);
    if (cur) cur.value += by;
    else this.values.set(key, { labels, value: by });
  }
  set(labels: Labels, value: number): void {
    this.values.set(labelText(labels), { labels, value });
  }
  clear(): void {
    this.values.clear();
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join("\n");
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) this.counts[i]!++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.bounds.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join("\n");
  }
}

export class EngineMetrics {
  readonly recordsIn = new Family("rccar_records_in_total", "input records consumed, by topic", "counter");
  readonly recordsOut = new Family("rccar_records_out_total", "output records committed, by topic and situation", "counter");
  readonly consumerLag = new Family("rccar_consumer_lag", "records behind the log end, by topic and partition", "gauge");
  readonly openCars = new Family("rccar_open_cars", "cars whose join window is open", "gauge");
  readonly waitingCars = new Family("rccar_cars_waiting_for_price", "assembled cars waiting for prices", "gauge");
  readonly inFlight = new Family("rccar_price_requests_in_flight", "price requests open now", "gauge");
  readonly priceSaturated = new Family("rccar_price_saturated_seconds_total", "time with PRICE_MAX_IN_FLIGHT requests open while cars waited", "counter");
  readonly priceWaiting = new Family("rccar_price_waiting_seconds_total", "time with cars waiting for prices", "counter");
  readonly transactions = new Family("rccar_transactions_total", "Kafka transactions, by result", "counter");
  readonly kafkaRetried = new Family("rccar_kafka_retried_total", "conditions kafkajs retried or handled itself (debug lines), by condition", "counter");
  readonly rss = new Family("process_resident_memory_bytes", "resident memory of the engine process", "gauge");
  readonly heapUsed = new Family("rccar_heap_used_bytes", "JavaScript heap in use, by thread (main, join-0, join-1, ...)", "gauge");
  readonly partitionPaused = new Family("rccar_partition_paused", "input topic-partitions paused (1), by reason lane_full|no_room", "gauge");
  readonly partitionLastProgress = new Family("rccar_partition_last_progress_seconds", "unix time of each partition's last progress", "gauge");
  readonly partitionWatermarkDelay = new Family("rccar_partition_watermark_delay_seconds", "wall clock minus each partition's watermark", "gauge");
  readonly partitionStalled = new Family("rccar_partition_stalled", "partitions with input waiting and no progress for STALL_TIMEOUT_MS (1), by reason", "gauge");
  readonly restores = new Family("rccar_restores_total", "partition sets taken and restored from the changelog", "counter");
  readonly rebuilds = new Family("rccar_rebuilds_total", "tasks closed and rebuilt from Kafka after a failed commit", "counter");
  readonly restoreSeconds = new Histogram("rccar_restore_seconds", "time from taking partitions to processing them", [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30]);
  readonly priceLatency = new Histogram("rccar_price_request_seconds", "price request latency", [0.01, 0.05, 0.1, 0.25, 0.5, 0.8, 1, 2, 5]);
  readonly commitLatency = new Histogram("rccar_commit_seconds", "transaction commit latency", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5]);

  render(): string {
    this.rss.set({}, process.memoryUsage.rss());
    this.heapUsed.set({ thread: "main" }, process.memoryUsage().heapUsed);
    for (const [condition, n] of kafkaLogStats().counts()) this.kafkaRetried.set({ condition }, n);
    const all = [this.kafkaRetried, this.rss, this.heapUsed, this.partitionPaused, this.partitionLastProgress, this.partitionWatermarkDelay, this.partitionStalled, this.restores, this.rebuilds, this.restoreSeconds, this.priceSaturated, this.priceWaiting, this.recordsIn, this.recordsOut, this.consumerLag, this.openCars, this.waitingCars, this.inFlight, this.transactions, this.priceLatency, this.commitLatency];
    return all.map((f) => f.render()).join("\n") + "\n";
  }
}
