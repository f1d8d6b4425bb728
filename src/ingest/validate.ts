// Part validation (SPEC §3, §8), used by the engine's decoder and by the generator's model. Decides from a record's bytes alone whether it is a valid part of
// the topic's kind, and if not, which dead-letter class it falls in. It checks in the order
// domain.ts documents (OVERSIZED, NOT_JSON, MISSING_FIELD, WRONG_TYPE, BAD_VALUE) and reports
// the first failure, so a record with one defect has one class. The record's key is not
// judged: a valid part keyed by anything else than its carId is re-keyed (SPEC §9).
import { CHANNEL_FREQUENCIES, WHEEL_PLACEMENTS, type DeadLetterClass, type Part, type PartKind } from "../domain.ts";

export type Validation = { ok: true; part: Part } | { ok: false; cls: Exclude<DeadLetterClass, "CONFLICT">; detail: string };

interface FieldRule {
  name: string;
  type: "string" | "number";
  /** A reason the value is not allowed, or undefined when it is fine. */
  bad(value: never): string | undefined;
}

const text = (name: string, max = Infinity): FieldRule => ({
  name,
  type: "string",
  bad: (v: string) => (v.length === 0 ? `${name} is empty` : v.length > max ? `${name} is longer than ${max} chars` : undefined),
});
const oneOf = (name: string, allowed: readonly string[]): FieldRule => ({
  name,
  type: "string",
  bad: (v: string) => (allowed.includes(v) ? undefined : `${name} ${JSON.stringify(v)} is not one of ${allowed.join(", ")}`),
});

const COMMON: FieldRule[] = [text("carId", 128), text("partId", 128), text("sku", 64)];
const OWN: Record<PartKind, FieldRule[]> = {
  BODY: [
    // SPEC §3 gives no length limit for these; empty is still "an empty field" (§8).
    text("color"),
    text("material"),
    { name: "weightKg", type: "number", bad: (v: number) => (v > 0 && Number.isFinite(v) ? undefined : `weightKg ${v} is not > 0`) },
  ],
  ENGINE: [],
  REMOTE_CONTROL: [oneOf("channelFrequency", CHANNEL_FREQUENCIES)],
  WHEEL: [oneOf("placement", WHEEL_PLACEMENTS)],
};

const decoder = new TextDecoder("utf-8", { fatal: true });

export function validatePart(kind: PartKind, value: Uint8Array | null, maxPartBytes: number): Validation {
  if (value !== null && value.length > maxPartBytes) {
    return { ok: false, cls: "OVERSIZED", detail: `value is ${value.length} bytes, more than MAX_PART_BYTES=${maxPartBytes}` };
  }
  if (value === null) return { ok: false, cls: "NOT_JSON", detail: "value is null (tombstone)" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(value));
  } catch (e) {
    return { ok: false, cls: "NOT_JSON", detail: `value is not UTF-8 JSON (${(e as Error).message})` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { ok: false, cls: "NOT_JSON", detail: "value is not a JSON object" };
  }
  const obj = parsed as Record<string, unknown>;
  const rules = [...COMMON, ...OWN[kind]];
  for (const r of rules) {
    if (!(r.name in obj)) return { ok: false, cls: "MISSING_FIELD", detail: `${r.name} is missing` };
  }
  for (const r of rules) {
    // null counts as present with the wrong type, not as missing.
    if (typeof obj[r.name] !== r.type) return { ok: false, cls: "WRONG_TYPE", detail: `${r.name} is not a ${r.type}` };
  }
  for (const r of rules) {
    const why = r.bad(obj[r.name] as never);
    if (why !== undefined) return { ok: false, cls: "BAD_VALUE", detail: why };
  }
  return { ok: true, part: obj as Part };
}
