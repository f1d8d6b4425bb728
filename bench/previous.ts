// Figures of earlier runs, so every figure prints beside its previous value and a regression
// shows. Each run stores its table rows in bench/results/<ms>.json; a figure's previous value
// is the one in the newest stored run that has it (a run of some parts still leaves the
// others' last values in place). Runs stored before rows were kept count as absent. Those files
// are not committed: on a fresh clone the previous values are the README's table, which the
// last full run wrote.
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

export type Row = [figure: string, value: string, target: string];

export const NO_PREVIOUS = "no previous run";

export function previousFigures(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => /^\d+\.json$/.test(f));
  } catch {
    return found;
  }
  files.sort((a, b) => Number.parseInt(b) - Number.parseInt(a));
  for (const f of files) {
    let rows: unknown;
    try {
      rows = (JSON.parse(readFileSync(resolve(dir, f), "utf8")) as { rows?: unknown }).rows;
    } catch {
      continue;
    }
    if (!Array.isArray(rows)) continue;
    for (const r of rows) if (Array.isArray(r) && typeof r[0] === "string" && typeof r[1] === "string" && !found.has(r[0])) found.set(r[0], r[1]);
  }
  return found;
}

/** The figures of the README's benchmark table (between `start` and `end`): figure → value. */
export function readmeFigures(readme: string, start: string, end: string): Map<string, string> {
  const found = new Map<string, string>();
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) return found;
  for (const line of readme.slice(from, to).split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    // | figure | value | ... |  (the header and the separator row are not figures)
    if (cells.length < 4 || cells[1] === "figure" || /^-+$/.test(cells[1] ?? "")) continue;
    if (cells[1] && cells[2]) found.set(cells[1], cells[2]);
  }
  return found;
}
