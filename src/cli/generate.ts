// bun run generate -- --cars N --seed S [--late-rate 0.1 ...] [--manifest PATH]
// Produces cars' parts to the input topics and writes the manifest the verifier checks.
import { ConfigError, generatorSpec, kafkaSpec, loadOrExit, type GeneratorSettings, type KafkaSettings } from "../config.ts";
import { generate, IntentError } from "../generate/index.ts";
import { writeManifest } from "../generate/index.ts";
import { progressLine, summaryTable } from "../generate/index.ts";
import { startLogging } from "../log.ts";

const logger = startLogging("generate");

const all = loadOrExit({ ...kafkaSpec, ...generatorSpec });
const kafka = Object.fromEntries(Object.keys(kafkaSpec).map((k) => [k, all[k as keyof typeof all]])) as KafkaSettings;
const options = Object.fromEntries(Object.keys(generatorSpec).map((k) => [k, all[k as keyof typeof all]])) as GeneratorSettings;

const tty = process.stderr.isTTY;
let timing = { wallMs: 0, busyMs: 0 };
try {
  const manifest = await generate(options, kafka, {
    onProgress: (p) => process.stderr.write(tty ? `\r${progressLine(p)}\x1b[K` : `${progressLine(p)}\n`),
    onSent: (t) => (timing = t),
  });
  if (tty) process.stderr.write("\n");
  writeManifest(options.manifest, manifest);
  console.log(summaryTable(manifest, timing));
  console.log(`manifest: ${options.manifest}`);
  process.exit(0);
} catch (e) {
  if (tty) process.stderr.write("\n");
  if (e instanceof IntentError || e instanceof ConfigError) {
    logger.error(e.message);
    process.exit(1);
  }
  logger.error(String((e as Error).stack ?? e));
  process.exit(1);
}
