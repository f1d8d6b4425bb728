// bun run engine: validates every setting, runs until SIGTERM/SIGINT, then commits and exits.
import { hostname } from "node:os";
import { ConfigError, loadEngineSettings } from "../config.ts";
import { Engine, engineHttp } from "../engine/index.ts";
import { startLogging } from "../log.ts";

// Unnamed: the engine's own lines already say who speaks ("engine: ...").
const logger = startLogging();

let loaded;
try {
  loaded = loadEngineSettings();
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(`configuration error: ${e.message}`);
    process.exit(2);
  }
  throw e;
}
const { engine: settings, kafka } = loaded;
if (settings.instanceId === "") settings.instanceId = `${hostname()}-${process.pid}`;

const engine = new Engine(settings, kafka, logger);
const http = Bun.serve({ hostname: "0.0.0.0", port: settings.httpPort, fetch: engineHttp(engine).fetch });
logger.info(`engine ${settings.instanceId}: group ${settings.groupId}, ${settings.workers} workers, http :${http.port}`);
try {
  await engine.start();
} catch (e) {
  if (e instanceof ConfigError) console.error(`configuration error: ${e.message}`);
  else logger.error(`engine: could not start: ${(e as Error).message}`);
  process.exit(e instanceof ConfigError ? 2 : 1);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info(`engine: ${signal}: committing and stopping`);
  await engine.stop();
  http.stop(true);
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

// A dead join worker or a fenced sink: exit non-zero; a restart recovers from the changelog.
const watchdog = setInterval(() => {
  const failure = engine.failure();
  if (failure) {
    clearInterval(watchdog);
    logger.error(`engine: stopping after a fatal error: ${failure.message}`);
    process.exit(1);
  }
}, 200);
