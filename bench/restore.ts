// Restore: how long a fresh engine takes from being assigned its partitions to processing
// them, when the changelog holds many open cars and cars waiting for prices. The state is
// preloaded by an engine that reads a backlog (cars missing their engine stay open under a
// long window; complete cars wait on a price API that never answers in time), then killed
// with SIGKILL; a second engine with the same group restores it.
//
// The figure judged is the engine's own "restored in N ms" log line: assignment → fence →
// restore → committed offsets → processing. Spawn → /ready is reported beside it; it adds
// process start, the group join and, after a SIGKILL, the session timeout of the dead member.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { KafkaSettings } from "../src/config.ts";
import { generate } from "../src/generate/index.ts";
import { createKafka } from "../src/kafka.ts";
import { engine, freshPrefix, logDir, priceApiProcess, topicsOf } from "./stack.ts";

export interface RestoreResult {
  openCars: number;
  waitingCars: number;
  /** Changelog records the restore read (all versions of every key since the last compaction). */
  changelogRecords: number;
  /** From the engine's log: assignment to processing. */
  restoredMs: number;
  /** What the restoring engine reported it restored. */
  joinStates: number;
  restoredWaiting: number;
  /** Process spawn to /ready (includes the group join and the dead member's session timeout). */
  spawnToReadyMs: number;
}

const RESTORED = /restored in (\d+) ms \((\d+) join states, (\d+) cars waiting for prices\)/g;

export async function runRestore(base: KafkaSettings, openCars: number, waitingCars: number, progress: (line: string) => void): Promise<RestoreResult> {
  const kafka = await freshPrefix(base, "restore");
  // Answers after ten minutes: every priced car waits for the whole run.
  const api = await priceApiProcess({ DELAY_MIN_MS: "600000", DELAY_MAX_MS: "600000" });
  const env = {
    JOIN_TIMEOUT_MS: "3600000",
    PRICE_DEADLINE_MS: "3600000",
    PRICE_REQUEST_TIMEOUT_MS: "600000",
    PRICE_MAX_WAITING_CARS: String(waitingCars * 2 + 1000),
  };
  const name = "restore";
  const first = engine(kafka, api, name, env);
  try {
    await first.start();
    // Cars waiting for prices first, then the open ones (carIds differ by seed).
    if (waitingCars > 0) await generate({ cars: waitingCars, seed: 21, skus: 20, batchSize: 2000, joinTimeoutMs: 3_600_000, extraFieldRate: 0 }, kafka);
    await generate({ cars: openCars, seed: 13, missingEngine: 1, skus: 20, batchSize: 2000, joinTimeoutMs: 3_600_000, extraFieldRate: 0 }, kafka);
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      const m = await first.metrics();
      progress(`restore: preloading ${m?.openCars ?? 0}/${openCars} open cars, ${m?.waiting ?? 0}/${waitingCars} waiting`);
      if ((m?.openCars ?? 0) >= openCars && (m?.waiting ?? 0) >= waitingCars) break;
      if (Date.now() > deadline) throw new Error(`restore bench: preload did not finish: ${m?.openCars} open, ${m?.waiting} waiting`);
      await Bun.sleep(500);
    }
    // Let the last transaction (outputs, changelog, offsets) commit.
    await Bun.sleep(2000);
  } finally {
    await first.kill9();
  }
  const second = engine(kafka, api, name, env);
  try {
    const spawned = Date.now();
    progress("restore: restarting after SIGKILL");
    await second.start(5 * 60_000);
    const spawnToReadyMs = Date.now() - spawned;
    const log = readFileSync(join(logDir, `${second.name}.log`), "utf8");
    const lines = [...log.matchAll(RESTORED)];
    const last = lines[lines.length - 1];
    if (!last) throw new Error(`restore bench: no "restored in" line in ${join(logDir, `${second.name}.log`)}`);
    const changelogRecords = await changelogSize(kafka);
    return {
      openCars,
      waitingCars,
      changelogRecords,
      restoredMs: Number(last[1]),
      joinStates: Number(last[2]),
      restoredWaiting: Number(last[3]),
      spawnToReadyMs,
    };
  } finally {
    await second.kill9();
    await api.stop();
  }
}

async function changelogSize(kafka: KafkaSettings): Promise<number> {
  const admin = createKafka(kafka, "bench-admin").admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topicsOf(kafka).changelog);
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}
