// /metrics (Prometheus text), /health (no fatal error, no stalled partition), /ready (every owned partition restored).
import { Hono } from "hono";
import type { Engine } from "./engine.ts";

export function engineHttp(engine: Engine): Hono {
  const app = new Hono();
  // Not ok after a fatal error or while a partition is stalled: which one and why (SPEC §10).
  app.get("/health", (c) => {
    const h = engine.health();
    return c.json(h, h.ok ? 200 : 503);
  });
  app.get("/ready", (c) => {
    const s = engine.status();
    return c.json(s, s.ready ? 200 : 503);
  });
  app.get("/metrics", (c) => c.text(engine.metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }));
  return app;
}
