// The verifier in-process: read the output topics a manifest names, compare, report.
import type { KafkaSettings } from "../config.ts";
import type { Manifest } from "../generate/index.ts";
import { compare, type Report } from "./compare.ts";
import { readOutputs, type ReadOptions } from "./reader.ts";

export { compare, type Report } from "./compare.ts";
export { readOutputs } from "./reader.ts";
export { exitCodeOf, formatReport, printReport } from "./report.ts";
export { OutputWatcher } from "./watch.ts";

export interface VerifyOptions extends Omit<ReadOptions, "expectedRecords"> {
  allowFailedPrice: boolean;
}

export interface Verdict {
  report: Report;
  read: { records: number; caughtUp: boolean; timedOut: boolean; elapsedMs: number };
}

export async function verify(manifest: Manifest, kafka: Pick<KafkaSettings, "brokers">, opts: VerifyOptions): Promise<Verdict> {
  const t = manifest.topics;
  const read = await readOutputs(kafka, [t.completed, t.incomplete, t.dlq], { ...opts, expectedRecords: manifest.cars.length + manifest.deadLetters.length });
  const report = compare(manifest, read.records, { allowFailedPrice: opts.allowFailedPrice });
  return { report, read: { records: read.records.length, caughtUp: read.caughtUp, timedOut: read.timedOut, elapsedMs: read.elapsedMs } };
}
