// What the generator tells a person: a progress line while sending, a table at the end.
import type { Manifest } from "./manifest.ts";
import type { Progress } from "./producer.ts";

export function progressLine(p: Progress): string {
  const rate = p.elapsedMs > 0 ? Math.round((p.sent * 1000) / p.elapsedMs) : 0;
  return `generate: ${p.sent}/${p.total} records, ${p.cars} cars started, ${rate} records/s, ${(p.elapsedMs / 1000).toFixed(1)} s`;
}

export function summaryTable(m: Manifest, t: { wallMs: number; busyMs: number }): string {
  const c = m.counts;
  const rows: Array<[string, string | number]> = [];
  for (const [topic, n] of Object.entries(c.recordsByTopic).sort()) rows.push([`records on ${topic}`, n]);
  rows.push(
    ["records sent", c.recordsSent],
    ["cars planned", c.plannedCars],
    ["cars expected out", c.outputCars],
    ...Object.entries(c.bySituation).map(([s, n]): [string, number] => [`  ${s}`, n ?? 0]),
    ["dead letters expected", c.deadLetters],
    ...Object.entries(c.deadLettersByClass).map(([k, n]): [string, number] => [`  ${k}`, n ?? 0]),
    ["malformed records", c.malformed],
    ["duplicates sent", c.duplicates],
    ["  absorbed", c.absorbed],
    ["conflicts", c.conflicts],
    ["late parts", c.late],
    ["future-stamped parts", c.futureStamped],
    ["negative-timestamp parts", c.badTimestamp],
    [`keys (--key-by ${m.options.keyBy})`, `${c.keying.carId} carId / ${c.keying.partId} partId / ${c.keying.none} none`],
    ["cars over several partitions", c.carsSpanningPartitions],
    ["seconds", (t.wallMs / 1000).toFixed(2)],
    ["records/s overall", t.wallMs > 0 ? Math.round((c.recordsSent * 1000) / t.wallMs) : "-"],
    // Pacing (--rate) and waiting for late parts excluded: what the producer can do.
    ["records/s while sending", t.busyMs > 0 ? Math.round((c.recordsSent * 1000) / t.busyMs) : "-"],
  );
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${String(v).padStart(10)}`).join("\n");
}
