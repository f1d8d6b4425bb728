// The manifest: what a correct engine must write for one generator run, computed by the model
// from the records as they were actually sent. The verifier needs nothing else.
import { readFileSync, writeFileSync } from "node:fs";
import type { Topics } from "../config.ts";
import type { DeadLetterClass, MissingKind, Situation } from "../domain.ts";
import { partsDigest } from "./digest.ts";
import type { ModelRecord, ModelResult } from "./model.ts";
import type { Keying, Plan, PlanOptions } from "./plan.ts";
import type { SentRecord } from "./placement.ts";

export interface ExpectedCar {
  carId: string;
  situation: Situation;
  missing: MissingKind[];
  /** partIds of body, engine, remote control and wheels, sorted. */
  partIds: string[];
  /** COMPLETED only: sum of the catalog prices of the seven parts, in cents. */
  totalCents?: number;
  /** Timestamp of the window's first part. */
  firstPartAt: number;
  /** Event time the car can leave the join: its completing (last) part, or its window's end. */
  emittedAt: number;
  /** digest.partsDigest of the parts as sent (extra fields included). */
  partsDigest: string;
}

export interface ExpectedDeadLetter {
  /** Source topic, partition and offset of the bad record. */
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** The original value bytes; null for a tombstone. */
  valueBase64: string | null;
  class: DeadLetterClass;
  /** The model's reason, for people; the engine's wording may differ. */
  detail: string;
  /** The record's timestamp as written (for FUTURE_TIMESTAMP / BAD_TIMESTAMP, the wrong one). */
  timestamp: number;
}

export interface ManifestCounts {
  /** Records written to the input topics, duplicates and bad records included. */
  recordsSent: number;
  recordsByTopic: Record<string, number>;
  /** carIds the plan generated (a carId may end in several cars, or none). */
  plannedCars: number;
  outputCars: number;
  bySituation: Partial<Record<Situation, number>>;
  deadLetters: number;
  deadLettersByClass: Partial<Record<DeadLetterClass, number>>;
  distinctPartIds: number;
  late: number;
  duplicates: number;
  /** Records the engine must absorb (redeliveries). */
  absorbed: number;
  conflicts: number;
  malformed: number;
  /** Valid parts written with a wrong clock: each is one FUTURE_TIMESTAMP / BAD_TIMESTAMP dead letter. */
  futureStamped: number;
  badTimestamp: number;
  /** Records by what their key is. */
  keying: Record<Keying, number>;
  /** carIds whose valid parts (wrong clocks left out) landed on more than one partition number: they need the re-keying hop. */
  carsSpanningPartitions: number;
}

export interface Manifest {
  version: 1;
  seed: number;
  options: PlanOptions;
  topics: Topics;
  /** Earliest and latest record timestamp of the run, wrong clocks (futureStamped, badTimestamp) left out. */
  startedAt: number;
  finishedAt: number;
  counts: ManifestCounts;
  cars: ExpectedCar[];
  deadLetters: ExpectedDeadLetter[];
}

export function modelRecordsOf(sent: readonly SentRecord[]): ModelRecord[] {
  return sent.map((s) => ({
    seq: s.record.seq,
    topic: s.topic,
    role: s.record.role,
    key: s.record.key,
    value: s.record.value,
    timestamp: s.timestamp,
    producedAt: s.sentAt,
    partition: s.partition,
    offset: s.offset,
  }));
}

export function buildManifest(plan: Plan, sent: readonly SentRecord[], model: ModelResult, topics: Topics): Manifest {
  const recordsByTopic: Record<string, number> = {};
  for (const s of sent) recordsByTopic[s.topic] = (recordsByTopic[s.topic] ?? 0) + 1;
  const bySituation: ManifestCounts["bySituation"] = {};
  for (const c of model.cars) bySituation[c.situation] = (bySituation[c.situation] ?? 0) + 1;
  const deadLettersByClass: ManifestCounts["deadLettersByClass"] = {};
  for (const d of model.deadLetters) deadLettersByClass[d.cls] = (deadLettersByClass[d.cls] ?? 0) + 1;
  const timestamps = sent.filter((s) => s.record.clock === undefined).map((s) => s.timestamp);
  const keying: Record<Keying, number> = { carId: 0, partId: 0, none: 0 };
  const partitionsOfCar = new Map<string, Set<number>>();
  for (const s of sent) {
    keying[s.record.keying]++;
    if (s.record.intent === "malformed" || s.record.clock !== undefined) continue;
    const set = partitionsOfCar.get(s.record.carId) ?? new Set<number>();
    partitionsOfCar.set(s.record.carId, set.add(s.partition));
  }

  const cars: ExpectedCar[] = model.cars.map((c) => {
    const p = c.parts;
    const e: ExpectedCar = {
      carId: c.carId,
      situation: c.situation,
      missing: c.missing,
      partIds: c.partIds,
      firstPartAt: c.firstPartAt,
      emittedAt: c.emittedAt,
      partsDigest: partsDigest([p.body, p.engine, p.remoteControl, ...p.wheels].filter((x) => x !== undefined)),
    };
    if (c.totalCents !== undefined) e.totalCents = c.totalCents;
    return e;
  });
  const deadLetters: ExpectedDeadLetter[] = model.deadLetters.map((d) => ({
    topic: d.topic,
    partition: d.partition,
    offset: d.offset,
    key: d.key,
    valueBase64: d.value === null ? null : Buffer.from(d.value).toString("base64"),
    class: d.cls,
    detail: d.detail,
    timestamp: d.timestamp,
  }));

  return {
    version: 1,
    seed: plan.options.seed,
    options: plan.options,
    topics,
    startedAt: timestamps.length ? timestamps.reduce((a, b) => Math.min(a, b)) : 0,
    finishedAt: timestamps.length ? timestamps.reduce((a, b) => Math.max(a, b)) : 0,
    counts: {
      recordsSent: sent.length,
      recordsByTopic,
      plannedCars: plan.stats.cars,
      outputCars: cars.length,
      bySituation,
      deadLetters: deadLetters.length,
      deadLettersByClass,
      distinctPartIds: new Set(model.cars.flatMap((c) => c.partIds)).size,
      late: plan.stats.late,
      duplicates: plan.stats.duplicates,
      absorbed: model.absorbed,
      conflicts: plan.stats.conflicts,
      malformed: plan.stats.malformed,
      futureStamped: plan.stats.futureStamped,
      badTimestamp: plan.stats.badTimestamp,
      keying,
      carsSpanningPartitions: [...partitionsOfCar.values()].filter((p) => p.size > 1).length,
    },
    cars,
    deadLetters,
  };
}

export function writeManifest(path: string, m: Manifest): void {
  writeFileSync(path, `${JSON.stringify(m, null, 1)}\n`);
}

export function readManifest(path: string): Manifest {
  const m = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  if (m.version !== 1 || !Array.isArray(m.cars) || !Array.isArray(m.deadLetters)) throw new Error(`${path} is not a generator manifest (version 1)`);
  return m;
}
