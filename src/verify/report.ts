// The verifier's verdict for people: expected against found per situation and dead-letter
// class, then each kind of problem with its first few examples.
import { PROBLEM_KINDS, type ProblemKind, type Report } from "./compare.ts";

export function formatReport(r: Report, opts: { examples?: number } = {}): string {
  const n = opts.examples ?? 5;
  const lines: string[] = [];
  const table = (title: string, rows: Array<{ name: string; expected: number; found: number }>) => {
    const width = Math.max(title.length, ...rows.map((x) => x.name.length));
    lines.push(`${title.padEnd(width)}  ${"expected".padStart(9)}  ${"found".padStart(9)}`);
    for (const x of rows)
      lines.push(`${x.name.padEnd(width)}  ${String(x.expected).padStart(9)}  ${String(x.found).padStart(9)}${x.expected === x.found ? "" : "  <--"}`);
  };
  table("situation", [...r.situations.map((s) => ({ name: s.situation, expected: s.expected, found: s.found })), { name: "all cars", ...r.cars }]);
  lines.push("");
  table("dead letters", [
    ...r.deadLetterClasses.map((c) => ({ name: c.cls, expected: c.expected, found: c.found })),
    { name: "all dead letters", ...r.deadLetters },
  ]);
  if (r.failedPrice > 0) lines.push("", `${r.failedPrice} expected COMPLETED car(s) ended FAILED_GET_PRICE (allowed)`);
  const kinds = Object.keys(r.problems) as ProblemKind[];
  for (const k of kinds) {
    const p = r.problems[k]!;
    lines.push("", `${k}: ${p.count} ${PROBLEM_KINDS[k]}`);
    for (const ex of p.examples.slice(0, n)) lines.push(`  ${ex}`);
    if (p.count > n) lines.push(`  ... and ${p.count - n} more`);
  }
  lines.push("", r.ok ? "OK: the outputs match the manifest exactly" : `FAILED: ${kinds.map((k) => `${k}=${r.problems[k]!.count}`).join(" ")}`);
  return lines.join("\n");
}

export function exitCodeOf(r: Report): number {
  return r.ok ? 0 : 1;
}

export function printReport(r: Report, opts: { examples?: number } = {}): void {
  console.log(formatReport(r, opts));
}
