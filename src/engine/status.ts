// What the status page shows, computed from EngineMetrics alone: a sample of every number once
// a second (kept for the last 15 minutes, so a page opened mid-run still sees the run's shape)
// and, on request, the current breakdowns (partitions, outcomes, recent dead letters).
import type { EngineMetrics } from "./metrics.ts";
import type { RecentDeadLetter } from "./recent-dead-letters.ts";

/** One point of the page's charts; counters are running totals, the page takes differences. */
export interface StatusSample {
  /** Unix milliseconds. */
  t: number;
  recordsIn: number;
  /** Cars committed to an outcome topic, by situation (dead letters apart). */
  carsOut: Record<string, number>;
  deadLetters: number;
  openCars: number;
  waitingForPrice: number;
  priceInFlight: number;
  priceRequests: number;
  priceErrors: number;
  priceSecondsSum: number;
  priceSaturatedS: number;
  priceWaitingS: number;
  commits: number;
  commitsFailed: number;
  /** Records behind the log end, by partition (summed over the input topics). */
  lag: Record<string, number>;
  watermarkDelayS: Record<string, number>;
  pausedPartitions: number;
  stalledPartitions: number;
  restores: number;
  rebuilds: number;
  kafkaRetriable: number;
  cpuSeconds: number;
  rssBytes: number;
  /** Worst event-loop delay seen since the previous sample. */
  loopDelayMaxS: number;
}

export interface PartitionStatus {
  partition: string;
  lag: number;
  lagByTopic: Record<string, number>;
  watermarkDelayS: number | null;
  /** Unix milliseconds of the last progress, when the engine reports it. */
  lastProgressAt: number | null;
  paused: Array<{ topic: string; reason: string }>;
  stalled: string[];
}

export interface StatusSnapshot {
  startedAt: number;
  now: StatusSample;
  /** Samples newer than the request's `since`, oldest first. */
  history: StatusSample[];
  partitions: PartitionStatus[];
  priceErrorsByReason: Record<string, number>;
  kafkaRetriableByType: Record<string, number>;
  restoreSeconds: { count: number; sum: number };
  recentDeadLetters: RecentDeadLetter[];
}

const DEAD_LETTER = "DEAD_LETTER";

export function sampleOf(m: EngineMetrics, t: number, loopDelayMaxS: number): StatusSample {
  const carsOut: Record<string, number> = {};
  let deadLetters = 0;
  for (const { labels, value } of m.recordsOut.entries()) {
    if (labels.situation === DEAD_LETTER) deadLetters += value;
    else if (labels.situation !== "") carsOut[labels.situation] = (carsOut[labels.situation] ?? 0) + value;
  }
  const lag: Record<string, number> = {};
  for (const { labels, value } of m.consumerLag.entries()) lag[labels.partition] = (lag[labels.partition] ?? 0) + value;
  const watermarkDelayS: Record<string, number> = {};
  for (const { labels, value } of m.partitionWatermarkDelay.entries()) watermarkDelayS[labels.partition] = value;
  const proc = m.processReadings();
  return {
    t,
    recordsIn: m.recordsIn.total(),
    carsOut,
    deadLetters,
    openCars: m.openCars.get({}),
    waitingForPrice: m.waitingCars.get({}),
    priceInFlight: m.inFlight.get({}),
    priceRequests: m.priceLatency.count,
    priceErrors: m.priceRequestErrors.total(),
    priceSecondsSum: m.priceLatency.sum,
    priceSaturatedS: m.priceSaturated.get({}),
    priceWaitingS: m.priceWaiting.get({}),
    commits: m.transactions.get({ result: "committed" }),
    commitsFailed: m.transactions.get({ result: "failed" }),
    lag,
    watermarkDelayS,
    pausedPartitions: new Set(
      m.partitionPaused
        .entries()
        .filter((e) => e.value > 0)
        .map((e) => String(e.labels.partition)),
    ).size,
    stalledPartitions: new Set(
      m.partitionStalled
        .entries()
        .filter((e) => e.value > 0)
        .map((e) => String(e.labels.partition)),
    ).size,
    restores: m.restores.get({}),
    rebuilds: m.rebuilds.get({}),
    kafkaRetriable: m.kafkaRetriable.total(),
    cpuSeconds: proc.cpuSeconds,
    rssBytes: proc.rssBytes,
    loopDelayMaxS,
  };
}

function byLabel<L extends string>(entries: ReadonlyArray<{ labels: Record<L, string | number>; value: number }>, label: L): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { labels, value } of entries) out[String(labels[label])] = (out[String(labels[label])] ?? 0) + value;
  return out;
}

export function partitionsOf(m: EngineMetrics): PartitionStatus[] {
  const rows = new Map<string, PartitionStatus>();
  const row = (p: string | number): PartitionStatus => {
    const key = String(p);
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { partition: key, lag: 0, lagByTopic: {}, watermarkDelayS: null, lastProgressAt: null, paused: [], stalled: [] }));
    return r;
  };
  for (const { labels, value } of m.consumerLag.entries()) {
    const r = row(labels.partition);
    r.lag += value;
    r.lagByTopic[String(labels.topic)] = value;
  }
  for (const { labels, value } of m.partitionWatermarkDelay.entries()) row(labels.partition).watermarkDelayS = value;
  for (const { labels, value } of m.partitionLastProgress.entries()) row(labels.partition).lastProgressAt = value * 1000;
  for (const { labels, value } of m.partitionPaused.entries())
    if (value > 0) row(labels.partition).paused.push({ topic: String(labels.topic), reason: String(labels.reason) });
  for (const { labels, value } of m.partitionStalled.entries()) if (value > 0) row(labels.partition).stalled.push(String(labels.reason));
  return [...rows.values()].sort((a, b) => Number(a.partition) - Number(b.partition) || a.partition.localeCompare(b.partition));
}

/** The worst event-loop delay between two readings, from a timer that should fire every `everyMs`. */
class LoopDelayProbe {
  private worstMs = 0;
  private expected = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly everyMs = 50) {}

  start(): void {
    this.expected = performance.now() + this.everyMs;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.worstMs = Math.max(this.worstMs, now - this.expected);
      this.expected = now + this.everyMs;
    }, this.everyMs);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The worst delay since the previous call, in seconds. */
  take(): number {
    const w = this.worstMs;
    this.worstMs = 0;
    return Math.max(0, w) / 1000;
  }
}

/** Samples the metrics every second and keeps the last `keep` samples. */
export class StatusHistory {
  private readonly samples: StatusSample[] = [];
  private readonly probe = new LoopDelayProbe();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly metrics: EngineMetrics,
    private readonly everyMs = 1000,
    private readonly keep = 900,
  ) {}

  start(): this {
    this.probe.start();
    this.record();
    this.timer = setInterval(() => this.record(), this.everyMs);
    this.timer.unref?.();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.probe.stop();
  }

  private record(): void {
    this.samples.push(sampleOf(this.metrics, Date.now(), this.probe.take()));
    if (this.samples.length > this.keep) this.samples.splice(0, this.samples.length - this.keep);
  }

  /** The numbers as they are now, with the samples after `since` (unix ms). */
  snapshot(since = 0): StatusSnapshot {
    const m = this.metrics;
    const last = this.samples[this.samples.length - 1];
    return {
      startedAt: m.startedAt,
      // `now` is read fresh (the page's tiles must agree with /metrics at this instant); the
      // loop delay is the last sample's, so reading does not reset the probe's window.
      now: sampleOf(m, Date.now(), last?.loopDelayMaxS ?? 0),
      history: this.samples.filter((s) => s.t > since),
      partitions: partitionsOf(m),
      priceErrorsByReason: byLabel(m.priceRequestErrors.entries(), "reason"),
      kafkaRetriableByType: byLabel(m.kafkaRetriable.entries(), "type"),
      restoreSeconds: { count: m.restoreSeconds.count, sum: m.restoreSeconds.sum },
      recentDeadLetters: m.recentDeadLetters.list(),
    };
  }
}
