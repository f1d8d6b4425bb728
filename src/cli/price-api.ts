// bun run price-api: the mock price API until SIGTERM/SIGINT.
import { ConfigError, loadPriceApiSettings } from "../config.ts";
import { startPriceApi } from "../price-api/index.ts";
import { startLogging } from "../log.ts";

const logger = startLogging("price-api");

let settings;
try {
  settings = loadPriceApiSettings();
} catch (e) {
  if (!(e instanceof ConfigError)) throw e;
  console.error(`configuration error: ${e.message}`);
  process.exit(2);
}
const api = await startPriceApi(settings, { hostname: "0.0.0.0" });
const faulty = Object.keys(settings.faults).length;
logger.info(
  `listening on ${api.url} (delay ${settings.delayMinMs}-${settings.delayMaxMs} ms, fail ${settings.failRate}, hang ${settings.hangRate}, max concurrency ${settings.maxConcurrency}${faulty ? `, ${faulty} faulty SKUs` : ""})`,
);
const stop = async () => {
  await api.stop();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
