// The engine's HTTP port: /metrics (Prometheus text), /health (no fatal error, no stalled
// partition), /ready (every owned partition restored), and the live status page (`/`, its data
// at /status.json).
import { Hono } from "hono";
import type { EngineMetrics } from "./metrics.ts";
import { STATUS_PAGE } from "./status-page.ts";
import { StatusHistory } from "./status.ts";

/** What the HTTP port needs of an engine. */
export interface ServedEngine {
  readonly metrics: EngineMetrics;
  failure(): Error | undefined;
  status(): { ready: boolean };
  health(): { ok: boolean };
}

export function engineHttp(engine: ServedEngine): Hono {
  const app = new Hono();
  const history = new StatusHistory(engine.metrics).start();
  // Not ok after a fatal error or while a partition is stalled: which one and why (SPEC §10).
  app.get("/health", (c) => {
    const h = engine.health();
    return c.json(h, h.ok ? 200 : 503);
  });
  app.get("/ready", (c) => {
    const s = engine.status();
    return c.json(s, s.ready ? 200 : 503);
  });
  app.get("/metrics", async (c) => c.text(await engine.metrics.render(), 200, { "content-type": engine.metrics.contentType }));
  app.get("/status.json", (c) => {
    const since = Number(c.req.query("since") ?? 0);
    const engineState = { ready: engine.status().ready, error: engine.failure()?.message ?? null };
    return c.json({ ...history.snapshot(Number.isFinite(since) ? since : 0), engine: engineState }, 200, { "cache-control": "no-store" });
  });
  app.get("/", (c) => c.html(STATUS_PAGE));
  return app;
}
