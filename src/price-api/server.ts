// Serves the mock price API on 127.0.0.1 (in-process for tests and the demo; bun run price-api).
import type { PriceApiSettings } from "../config.ts";
import { createPriceApi, type Behaviour, type PriceApiStats } from "./app.ts";

export interface RunningPriceApi {
  url: string;
  port: number;
  stats(): PriceApiStats;
  reconfigure(change: Partial<Behaviour>): Behaviour;
  stop(): Promise<void>;
}

export async function startPriceApi(settings: PriceApiSettings, options: { random?: () => number; hostname?: string } = {}): Promise<RunningPriceApi> {
  const api = createPriceApi(settings, options);
  const server = Bun.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: settings.port,
    fetch: api.app.fetch,
    // Bun closes idle connections after 10 s by default, which would cut delays and hangs
    // short in a way the real API would not: 0 disables it, clients time out themselves.
    idleTimeout: 0,
  });
  const url = `http://${server.hostname}:${server.port}`;
  return {
    url,
    port: server.port ?? settings.port,
    stats: api.stats,
    reconfigure: api.reconfigure,
    stop: async () => {
      await server.stop(true);
    },
  };
}
