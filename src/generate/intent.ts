// Did the run do what the plan meant? The model's outcomes are right for whatever timestamps
// the records got, but a slow machine can turn a timely part into a late one or put a part so
// near its window's end that a live engine may legitimately decide either way. Such a run
// proves nothing, so it is refused loudly instead of producing a misleading manifest.
import type { ModelResult } from "./model.ts";
import { LATE_MARGIN_MS, timelyMarginMs, type Plan } from "./plan.ts";
import type { Stamped } from "./schedule.ts";

export interface IntentProblem {
  seq: number;
  carId: string;
  intent: string;
  detail: string;
}

/** Redeliveries must come this long before their car's partIds are forgotten. */
export const DEDUP_MARGIN_MS = 1000;

export function checkIntent(plan: Plan, stamped: readonly Stamped[], model: ModelResult): IntentProblem[] {
  const { joinTimeoutMs, dedupRetentionMs } = plan.options;
  const timelyLimit = joinTimeoutMs - timelyMarginMs(joinTimeoutMs);
  const problems: IntentProblem[] = [];
  const first = new Map<number, number>();
  for (const s of stamped) if (s.record.opensCar) first.set(s.record.carIndex, s.timestamp);
  if (stamped.length !== plan.records.length) {
    problems.push({ seq: -1, carId: "", intent: "all", detail: `${stamped.length} of ${plan.records.length} records were sent` });
  }

  for (const { record: r, timestamp } of stamped) {
    const problem = (detail: string) => problems.push({ seq: r.seq, carId: r.carId, intent: r.intent, detail });
    const start = first.get(r.carIndex);
    const age = start === undefined ? undefined : timestamp - start;
    const fate = model.fates.get(r.seq);
    switch (r.intent) {
      case "part":
      case "conflict":
        if (age === undefined || age > timelyLimit) problem(`sent ${age} ms after the car's first part; timely parts must be within ${timelyLimit} ms`);
        break;
      case "late":
        if (age === undefined || age < joinTimeoutMs + LATE_MARGIN_MS)
          problem(`sent only ${age} ms after the car's first part; late parts must be >= ${joinTimeoutMs + LATE_MARGIN_MS} ms`);
        break;
      case "duplicate":
        if (age === undefined || age > dedupRetentionMs - DEDUP_MARGIN_MS)
          problem(`sent ${age} ms after the car's first part, too near DEDUP_RETENTION_MS=${dedupRetentionMs}`);
        break;
      case "malformed":
      case "futureStamped":
      case "badTimestamp":
        break;
    }
    const expected =
      r.intent === "part"
        ? r.opensCar
          ? "opened a car"
          : "joined the open car"
        : r.intent === "late"
          ? "opened a car"
          : r.intent === "duplicate"
            ? "absorbed"
            : r.intent === "conflict"
              ? "dead letter CONFLICT"
              : r.intent === "futureStamped"
                ? "dead letter FUTURE_TIMESTAMP"
                : r.intent === "badTimestamp"
                  ? "dead letter BAD_TIMESTAMP"
                  : `dead letter ${r.malformed?.cls}`;
    const actual =
      fate === undefined
        ? "no fate"
        : fate.kind === "joined"
          ? fate.opened
            ? "opened a car"
            : "joined the open car"
          : fate.kind === "absorbed"
            ? "absorbed"
            : `dead letter ${fate.cls}`;
    if (expected !== actual) problem(`the model says ${actual}, the plan meant ${expected}`);
  }
  return problems;
}
