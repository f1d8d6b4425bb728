// The engine shell's public face.
export { Engine, type EngineHealth, type EngineStatus } from "./engine.ts";
export { engineHttp } from "./http.ts";
export { parseMetrics, scrapeMetrics, type EngineCounters } from "./scrape.ts";
