// The generator in-process: plan, send, model, check, manifest. Used by the CLI, the demo and
// tests; throws when the run did not do what the plan meant (see intent.ts).
import { checkGeneratorSettings, generatorSpec, loadSettings, topicsOf, type GeneratorSettings, type KafkaSettings } from "../config.ts";
import { checkIntent, type IntentProblem } from "./intent.ts";
import { buildManifest, modelRecordsOf, type Manifest } from "./manifest.ts";
import { runModel } from "./model.ts";
import { buildPlan, type PlanOptions } from "./plan.ts";
import { sendPlan, type Progress } from "./producer.ts";

export { readManifest, writeManifest, type ExpectedCar, type ExpectedDeadLetter, type Manifest } from "./manifest.ts";
export { partsDigest } from "./digest.ts";
export { progressLine, summaryTable } from "./summary.ts";

export interface GenerateHooks {
  onProgress?: (p: Progress) => void;
  /** Called with the run's wall-clock time and the part of it spent sending (for throughput). */
  onSent?: (t: { wallMs: number; busyMs: number }) => void;
  /**
   * Awaited after the last record was sent and before the model runs (seconds of CPU for a
   * large run): a caller that measures something live in this process finishes it first.
   */
  beforeModel?: () => Promise<void>;
}

export class IntentError extends Error {
  constructor(readonly problems: IntentProblem[]) {
    const examples = problems.slice(0, 5).map((p) => `  seq ${p.seq} ${p.carId} (${p.intent}): ${p.detail}`);
    super(`the run did not go as planned (machine too slow?): ${problems.length} problem(s)\n${examples.join("\n")}`);
    this.name = "IntentError";
  }
}

export function generatorDefaults(): GeneratorSettings {
  return loadSettings(generatorSpec, { env: {}, argv: [] });
}

export function planOptionsOf(s: GeneratorSettings): PlanOptions {
  const { batchSize: _b, manifest: _m, ...options } = s;
  return options;
}

export async function generate(options: Partial<GeneratorSettings>, kafka: KafkaSettings, hooks: GenerateHooks = {}): Promise<Manifest> {
  const settings = { ...generatorDefaults(), ...options };
  checkGeneratorSettings(settings);
  const plan = buildPlan(planOptionsOf(settings));
  const { sent, wallStartedAt, wallFinishedAt, busyMs } = await sendPlan(plan, kafka, { batchSize: settings.batchSize, onProgress: hooks.onProgress });
  hooks.onSent?.({ wallMs: wallFinishedAt - wallStartedAt, busyMs });
  await hooks.beforeModel?.();
  const model = runModel(modelRecordsOf(sent), plan.options);
  const problems = checkIntent(plan, sent, model);
  if (problems.length > 0) throw new IntentError(problems);
  return buildManifest(plan, sent, model, topicsOf(kafka));
}
