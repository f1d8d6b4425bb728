// What every end-to-end benchmark needs: fresh topics under a prefix, the mock price API,
// engine processes, and a wait for the engine's committed outputs.
import { resolve } from "node:path";
import type { KafkaSettings } from "../src/config.ts";
import { topicsOf } from "../src/config.ts";
import type { Situation } from "../src/domain.ts";
import { createKafka, ensureTopics } from "../src/kafka.ts";
import { EngineProcess } from "../src/local/engine-process.ts";
import { freePort } from "../src/local/ports.ts";

export const logDir = resolve(import.meta.dir, "../.local/bench-logs");

export async function freshPrefix(base: KafkaSettings, label: string): Promise<KafkaSettings> {
  const kafka = { ...base, topicPrefix: `bench-${Date.now().toString(36)}-${label}-` };
  const admin = createKafka(kafka, "bench-admin").admin();
  await admin.connect();
  await ensureTopics(admin, kafka);
  await admin.disconnect();
  return kafka;
}

/** The mock price API as its own process (`bun src/cli/price-api.ts`), as a real service runs. */
export interface PriceApiProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts the mock price API in a process of its own (settings as its environment, e.g.
 * DELAY_MAX_MS) and waits for its /health. Every run uses one: the bench process also runs
 * the generator, whose model of the expected outputs takes seconds of CPU once the input is
 * sent, and after the backlog runs it holds their manifests, whose collections pause it for
 * seconds. An API in that process answered nothing meanwhile: the engine's requests timed out
 * in live runs, and a full bench's pricing run once priced 0.2 cars/s instead of ~140.
 */
export async function priceApiProcess(env: Record<string, string>): Promise<PriceApiProcess> {
  const port = await freePort();
  const proc = Bun.spawn([process.execPath, resolve(import.meta.dir, "../src/cli/price-api.ts")], {
    cwd: resolve(import.meta.dir, ".."),
    env: { ...process.env, ...env, PORT: String(port) },
    stdout: "ignore",
    stderr: "inherit",
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
  };
  for (const deadline = Date.now() + 15_000; ;) {
    if (
      await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) }).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, pid: proc.pid, stop };
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the price API process did not answer /health at ${url} (exit code ${proc.exitCode})`);
    }
    await Bun.sleep(50);
  }
}

export function engine(kafka: KafkaSettings, api: { url: string }, name: string, env: Record<string, string> = {}): EngineProcess {
  return new EngineProcess(
    `${kafka.topicPrefix}${name}`,
    { KAFKA_BROKERS: kafka.brokers.join(","), TOPIC_PREFIX: kafka.topicPrefix, GROUP_ID: `${kafka.topicPrefix}${name}`, PRICE_API_URL: api.url, ...env },
    logDir,
  );
}

// The situations of output cars. Every other situation of rccar_records_out_total (dead letters,
// records re-keyed to a repartition topic, ...) is not a car. A Record, so a new Situation
// fails the typecheck here until it is listed.
const IS_CAR: Record<Situation, true> = {
  COMPLETED: true,
  MISSING_BODY: true,
  MISSING_ENGINE: true,
  MISSING_REMOTE_CONTROL: true,
  MISSING_WHEELS: true,
  FAILED_GET_PRICE: true,
};
const isCar = (situation: string): situation is Situation => Object.hasOwn(IS_CAR, situation);

/** What the generator's model says a run must output. */
export interface ExpectedOutputs {
  cars: number;
  deadLetters: number;
}

/**
 * Waits until the engine committed the expected cars and dead letters; returns the seconds it
 * took from `since`. Dead letters never stand in for cars: more dead letters than the model
 * expects means the engine dead-lettered parts that belong in cars (an engine that cannot
 * re-key, for one), and the wait fails at once instead of finishing or waiting for cars that
 * cannot come. It also fails when nothing moved (records in, cars, dead letters) for `stallMs`.
 */
export async function waitForOutputs(
  e: EngineProcess,
  expected: ExpectedOutputs,
  since: number,
  timeoutMs: number,
  progress: (line: string) => void,
  stallMs = 120_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let movedAt = Date.now();
  for (;;) {
    const m = await e.metrics();
    const cars = m ? Object.entries(m.carsOut).reduce((n, [situation, count]) => n + (isCar(situation) ? count : 0), 0) : 0;
    const dead = m?.deadLetters ?? 0;
    const so = `${cars}/${expected.cars} cars, ${dead}/${expected.deadLetters} dead letters`;
    const now = `${so}, ${m?.recordsIn ?? 0} records in`;
    if (now !== last) {
      last = now;
      movedAt = Date.now();
      progress(`${now}, RSS ${Math.round((m?.rssBytes ?? 0) / 1e6)} MB`);
    }
    if (dead > expected.deadLetters) throw new Error(`engine ${e.name}: dead-lettered parts that belong in cars (${so}; log ${logDir}/${e.name}.log)`);
    if (cars >= expected.cars && dead >= expected.deadLetters) return (Date.now() - since) / 1000;
    if (Date.now() - movedAt > stallMs) throw new Error(`engine ${e.name}: no progress for ${Math.round(stallMs / 1000)} s at ${so}`);
    if (Date.now() > deadline) throw new Error(`engine ${e.name}: ${so} after ${Math.round(timeoutMs / 1000)} s`);
    await Bun.sleep(200);
  }
}

export { topicsOf };
