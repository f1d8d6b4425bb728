// Decoding an input record into a part, or the dead-letter reason it earns instead (SPEC §3,
// §8). On the hot path: one UTF-8 decode, one JSON.parse, then straight-line field checks
// with no per-record allocation besides the part itself.
//
// It must agree exactly with `validate.ts` (the generator's reference model judges the engine
// with that one): same class, same detail, for every input. `test/core-decode.test.ts` holds
// the two side by side. Validation reports the first failure in domain.ts's order:
//   OVERSIZED     value longer than maxPartBytes (checked on the raw bytes, before parsing)
//   NOT_JSON      null value (tombstone), not UTF-8, not JSON, or JSON that is not an object
//   MISSING_FIELD carId, partId, sku, then the kind's own fields, in that order
//   WRONG_TYPE    same order; null is present-with-the-wrong-type, not missing
//   BAD_VALUE     same order; carId/partId 1..128, sku 1..64, color/material non-empty,
//                 weightKg finite and > 0, channelFrequency/placement from their enums
// The key is not judged here: a record keyed by anything else than its carId is re-keyed
// (SPEC §9); `keyIsCarId` tells the join which records need that.
// Unknown extra fields stay on the returned part (it is the parsed object itself).
import type { InputRole, Part, PartKind } from "../domain.ts";
import { CHANNEL_FREQUENCIES, deadLetterReason, KIND_OF_ROLE, WHEEL_PLACEMENTS } from "../domain.ts";

export type Decoded = { ok: true; kind: PartKind; part: Part } | { ok: false; reason: string };

const MAX_ID_CHARS = 128;
const MAX_SKU_CHARS = 64;
const FREQUENCIES: ReadonlySet<string> = new Set(CHANNEL_FREQUENCIES);
const PLACEMENTS: ReadonlySet<string> = new Set(WHEEL_PLACEMENTS);

// Fatal: a byte sequence that is not UTF-8 is NOT_JSON rather than silently replaced by U+FFFD.
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The kind's own fields, in check order, with their JSON type. */
const OWN_FIELDS: Record<PartKind, ReadonlyArray<readonly [name: string, type: "string" | "number"]>> = {
  BODY: [
    ["color", "string"],
    ["material", "string"],
    ["weightKg", "number"],
  ],
  ENGINE: [],
  REMOTE_CONTROL: [["channelFrequency", "string"]],
  WHEEL: [["placement", "string"]],
};

export function decodePart(role: InputRole, value: Buffer | null, maxPartBytes: number): Decoded {
  const kind = KIND_OF_ROLE[role];
  if (value !== null && value.length > maxPartBytes) {
    return fail("OVERSIZED", `value is ${value.length} bytes, more than MAX_PART_BYTES=${maxPartBytes}`);
  }
  if (value === null) return fail("NOT_JSON", "value is null (tombstone)");
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(value));
  } catch (e) {
    return fail("NOT_JSON", `value is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return fail("NOT_JSON", "value is not a JSON object");
  const o = parsed as Record<string, unknown>;
  const own = OWN_FIELDS[kind];

  // JSON.parse never yields undefined, so `=== undefined` means "absent" (an own-or-inherited
  // `in` check would also look at Object.prototype, which has none of these names).
  if (o.carId === undefined) return missing("carId");
  if (o.partId === undefined) return missing("partId");
  if (o.sku === undefined) return missing("sku");
  for (const [name] of own) if (o[name] === undefined) return missing(name);

  if (typeof o.carId !== "string") return wrongType("carId", "string");
  if (typeof o.partId !== "string") return wrongType("partId", "string");
  if (typeof o.sku !== "string") return wrongType("sku", "string");
  for (const [name, type] of own) if (typeof o[name] !== type) return wrongType(name, type);

  const bad = badText("carId", o.carId, MAX_ID_CHARS) ?? badText("partId", o.partId, MAX_ID_CHARS) ?? badText("sku", o.sku, MAX_SKU_CHARS) ?? badOwn(kind, o);
  if (bad !== undefined) return fail("BAD_VALUE", bad);

  return { ok: true, kind, part: o as Part };
}

function fail(cls: Parameters<typeof deadLetterReason>[0], detail: string): Decoded {
  return { ok: false, reason: deadLetterReason(cls, detail) };
}

function missing(name: string): Decoded {
  return fail("MISSING_FIELD", `${name} is missing`);
}

function wrongType(name: string, type: string): Decoded {
  return fail("WRONG_TYPE", `${name} is not a ${type}`);
}

function badText(name: string, v: string, max: number): string | undefined {
  if (v.length === 0) return `${name} is empty`;
  return v.length > max ? `${name} is longer than ${max} chars` : undefined;
}

function badOwn(kind: PartKind, o: Record<string, unknown>): string | undefined {
  switch (kind) {
    case "BODY": {
      // SPEC §3 gives color and material no upper bound; empty is still an empty field (§8).
      if ((o.color as string).length === 0) return "color is empty";
      if ((o.material as string).length === 0) return "material is empty";
      const w = o.weightKg as number;
      return w > 0 && Number.isFinite(w) ? undefined : `weightKg ${w} is not > 0`;
    }
    case "ENGINE":
      return undefined;
    case "REMOTE_CONTROL":
      return oneOf("channelFrequency", o.channelFrequency as string, FREQUENCIES, CHANNEL_FREQUENCIES);
    case "WHEEL":
      return oneOf("placement", o.placement as string, PLACEMENTS, WHEEL_PLACEMENTS);
  }
}

function oneOf(name: string, v: string, set: ReadonlySet<string>, list: readonly string[]): string | undefined {
  return set.has(v) ? undefined : `${name} ${JSON.stringify(v)} is not one of ${list.join(", ")}`;
}

/**
 * key (UTF-8 bytes) === carId, without decoding the key when both are ASCII (the usual case).
 * Non-ASCII falls back to decoding, replacing bad sequences as the dead letter's key text does.
 */
export function keyIsCarId(key: Buffer | null, carId: string): boolean {
  if (key === null) return false;
  const n = carId.length;
  if (key.length === n) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = carId.charCodeAt(i);
      if (c >= 0x80 || key[i]! >= 0x80) {
        ascii = false;
        break;
      }
      if (c !== key[i]) return false;
    }
    if (ascii) return true;
  } else if (key.length < n) {
    return false; // UTF-8 never takes fewer bytes than UTF-16 code units
  }
  return key.toString("utf8") === carId;
}
