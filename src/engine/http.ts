// /metrics (Prometheus text), /health (the process runs), /ready (every owned partition restored).
import { Hono } from "hono";
import type { Engine } from "./engine.ts";

export function engineHttp(engine: Engine): Hono {
  const app = new Hono();
  app.get("/health", (c) => {
    const failure = engine.failure();
    return failure ? c.json({ ok: false, error: failure.message }, 500) : c.json({ ok: true });
  });
  app.get("/ready", (c) => {
    const s = engine.status();
    return c.json(s, s.ready ? 200 : 503);
  });
  app.get("/metrics", (c) => c.text(engine.metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }));
  return app;
}
