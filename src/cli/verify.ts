// bun run verify -- --manifest FILE [--quiet-ms 5000] [--timeout-ms 120000] [--allow-failed-price]
// Reads the output topics named in the manifest (read_committed) and checks them against it.
// Exit code 0 only when everything matches exactly.
import { kafkaSpec, loadOrExit, verifierSpec } from "../config.ts";
import { readManifest } from "../generate/index.ts";
import { verify } from "../verify/index.ts";
import { exitCodeOf, formatReport } from "../verify/index.ts";
import { startLogging } from "../log.ts";

const logger = startLogging("verify");

const s = loadOrExit({ ...kafkaSpec, ...verifierSpec });
let manifest;
try {
  manifest = readManifest(s.manifest);
} catch (e) {
  logger.error(`cannot read manifest ${s.manifest}: ${(e as Error).message}`);
  process.exit(2);
}
const tty = process.stderr.isTTY;
try {
  const { report, read } = await verify(manifest, s, {
    quietMs: s.quietMs,
    timeoutMs: s.timeoutMs,
    allowFailedPrice: s.allowFailedPrice,
    onProgress: (p) => {
      if (tty) process.stderr.write(`\rverify: ${p.records} records read${p.caughtUp ? ", caught up" : ""}, ${(p.elapsedMs / 1000).toFixed(1)} s\x1b[K`);
    },
  });
  if (tty) process.stderr.write("\n");
  console.log(
    `read ${read.records} records in ${(read.elapsedMs / 1000).toFixed(1)} s${read.timedOut ? ` (timed out${read.caughtUp ? "" : " before catching up"})` : ""}`,
  );
  console.log(formatReport(report));
  process.exit(exitCodeOf(report));
} catch (e) {
  logger.error(String((e as Error).stack ?? e));
  process.exit(2);
}
