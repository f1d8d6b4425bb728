// The manifest: what a correct engine must write for one generator run, computed by the model
// from the records as they were actually sent. The verifier needs nothing else.
import { readFileSync, writeFileSync } from "node:fs";
import type { Topics } from "../config.ts";
import type { DeadLetterClass, MissingKind, Situation } from "../domain.ts";
import { partsDigest } from "./digest.ts";
import type { ModelRecord, ModelResult } from "./model.ts";
import type { Plan, PlanOptions } from "./plan.ts";
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
}

export interface Manifest {
  version: 1;
  seed: number;
  options: PlanOptions;
  topics: Topics;
  /** Earliest and latest record timestamp of the run. */
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
  const timestamps = sent.map((s) => s.timestamp);

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
