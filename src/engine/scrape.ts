// Reads an engine's /metrics back into numbers (the demo's and the bench's progress lines).
export interface EngineCounters {
  recordsIn: number;
  carsOut: Record<string, number>;
  deadLetters: number;
  waiting: number;
  inFlight: number;
  openCars: number;
  rssBytes: number;
  /** JavaScript heap in use by thread: main, join-0, join-1, ... */
  heapUsedBytes: Record<string, number>;
  priceSaturatedS: number;
  priceWaitingS: number;
}

export function parseMetrics(text: string): EngineCounters {
  const c: EngineCounters = {
    recordsIn: 0,
    carsOut: {},
    deadLetters: 0,
    waiting: 0,
    inFlight: 0,
    openCars: 0,
    rssBytes: 0,
    heapUsedBytes: {},
    priceSaturatedS: 0,
    priceWaitingS: 0,
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, labels = "", raw] = m;
    const v = Number(raw);
    const situation = /situation="(\w+)"/.exec(labels)?.[1];
    if (name === "rccar_records_in_total") c.recordsIn += v;
    else if (name === "rccar_records_out_total" && situation === "DEAD_LETTER") c.deadLetters += v;
    else if (name === "rccar_records_out_total" && situation) c.carsOut[situation] = (c.carsOut[situation] ?? 0) + v;
    else if (name === "rccar_cars_waiting_for_price") c.waiting = v;
    else if (name === "rccar_price_requests_in_flight") c.inFlight = v;
    else if (name === "rccar_open_cars") c.openCars = v;
    else if (name === "process_resident_memory_bytes") c.rssBytes = v;
    else if (name === "rccar_heap_used_bytes") c.heapUsedBytes[/thread="([\w-]+)"/.exec(labels)?.[1] ?? "?"] = v;
    else if (name === "rccar_price_saturated_seconds_total") c.priceSaturatedS = v;
    else if (name === "rccar_price_waiting_seconds_total") c.priceWaitingS = v;
  }
  return c;
}

export async function scrapeMetrics(baseUrl: string): Promise<EngineCounters> {
  const r = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
  return parseMetrics(await r.text());
}
