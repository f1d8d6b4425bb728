// Bad input for the dead-letter path (SPEC §8). Each record has exactly one defect, so its
// class is unambiguous under the validation order, and carries its partId as a unique token
// so the dead letter can be matched by its bytes.
import { KIND_OF_ROLE, WHEEL_PLACEMENTS, INPUT_ROLES, type DeadLetterClass, type InputRole } from "../domain.ts";
import { chooseSku, encodeJson, makePart, type SkuOptions } from "./parts.ts";
import type { Rng } from "./prng.ts";

/**
 * The classes a record's value alone decides. Not KEY_MISMATCH: a valid part keyed by anything
 * but its carId is re-keyed and joined (SPEC §8, §9), so the key makes no record bad. Not the
 * timestamp classes either: those are valid parts with a bad clock (plan.ts makes them).
 */
export const MALFORMED_CLASSES = ["OVERSIZED", "NOT_JSON", "MISSING_FIELD", "WRONG_TYPE", "BAD_VALUE"] as const satisfies readonly DeadLetterClass[];
export type MalformedClass = (typeof MALFORMED_CLASSES)[number];

export interface Malformed {
  role: InputRole;
  key: string | null;
  value: Uint8Array;
  cls: MalformedClass;
  /** What is wrong, for people reading the plan. */
  defect: string;
  /** The same record without its defect: a valid part (tests check there is only one defect). */
  repaired: { key: string; value: Uint8Array };
}

export interface MalformedRequest {
  cls: MalformedClass;
  /** Cycles through the class's variants. */
  variant: number;
  carId: string;
  /** Unique across the run; appears in the value's bytes. */
  partId: string;
  maxPartBytes: number;
  sku: SkuOptions;
}

type Obj = Record<string, unknown>;

interface Edit {
  roles: readonly InputRole[];
  defect: string;
  apply(o: Obj): void;
}
const ANY = INPUT_ROLES;

const MISSING: Edit[] = [
  { roles: ANY, defect: "sku removed", apply: (o) => delete o.sku },
  { roles: ["wheel"], defect: "placement removed", apply: (o) => delete o.placement },
  { roles: ["body"], defect: "weightKg removed", apply: (o) => delete o.weightKg },
  { roles: ["remoteControl"], defect: "channelFrequency removed", apply: (o) => delete o.channelFrequency },
  { roles: ["body"], defect: "color removed", apply: (o) => delete o.color },
];
const WRONG_TYPE: Edit[] = [
  { roles: ANY, defect: "sku is a number", apply: (o) => (o.sku = 4711) },
  { roles: ["body"], defect: "weightKg is a string", apply: (o) => (o.weightKg = String(o.weightKg)) },
  { roles: ["wheel"], defect: "placement is a number", apply: (o) => (o.placement = 2) },
  { roles: ["remoteControl"], defect: "channelFrequency is a number", apply: (o) => (o.channelFrequency = 27) },
  { roles: ANY, defect: "sku is an array", apply: (o) => (o.sku = [o.sku]) },
];
const BAD_VALUE: Edit[] = [
  { roles: ANY, defect: "sku is empty", apply: (o) => (o.sku = "") },
  { roles: ["wheel"], defect: 'placement is "MIDDLE"', apply: (o) => (o.placement = "MIDDLE") },
  { roles: ["body"], defect: "weightKg is 0", apply: (o) => (o.weightKg = 0) },
  { roles: ["remoteControl"], defect: 'channelFrequency is "RF_99"', apply: (o) => (o.channelFrequency = "RF_99") },
  { roles: ANY, defect: "sku is 65 chars", apply: (o) => (o.sku = "S".repeat(65)) },
  { roles: ["body"], defect: "weightKg is negative", apply: (o) => (o.weightKg = -1.5) },
  { roles: ANY, defect: "partId is 129 chars", apply: (o) => (o.partId = `${o.partId}-`.padEnd(129, "p")) },
];

const encoder = new TextEncoder();

export function makeMalformed(req: MalformedRequest, rng: Rng): Malformed {
  const v = req.variant;
  const pickEdit = (edits: Edit[]): { role: InputRole; edit: Edit } => {
    const edit = edits[v % edits.length]!;
    return { role: rng.pick(edit.roles), edit };
  };
  const validFor = (role: InputRole): Obj => {
    const placement = KIND_OF_ROLE[role] === "WHEEL" ? rng.pick(WHEEL_PLACEMENTS) : undefined;
    const sku = chooseSku(KIND_OF_ROLE[role], req.partId, rng, req.sku);
    return makePart({ role, carId: req.carId, partId: req.partId, sku, placement }, rng, 0);
  };
  const edited = (edits: Edit[]): Malformed => {
    const { role, edit } = pickEdit(edits);
    const valid = validFor(role);
    const bad = { ...valid };
    edit.apply(bad);
    return { role, key: req.carId, value: encodeJson(bad), cls: req.cls, defect: edit.defect, repaired: { key: req.carId, value: encodeJson(valid) } };
  };

  switch (req.cls) {
    case "OVERSIZED": {
      const role = rng.pick(INPUT_ROLES);
      const valid = validFor(role);
      // An otherwise valid part, pushed just past the limit by an extra field.
      const target = req.maxPartBytes + 1 + rng.int(64);
      const empty = encodeJson({ ...valid, padding: "" }).length;
      const value = encodeJson({ ...valid, padding: "x".repeat(Math.max(0, target - empty)) });
      return { role, key: req.carId, value, cls: "OVERSIZED", defect: `${value.length} bytes`, repaired: { key: req.carId, value: encodeJson(valid) } };
    }
    case "NOT_JSON": {
      const role = rng.pick(INPUT_ROLES);
      const valid = validFor(role);
      const json = JSON.stringify(valid);
      const repaired = { key: req.carId, value: encoder.encode(json) };
      const variants: Array<[string, Uint8Array]> = [
        // Cut inside the object, after the partId, so the token survives.
        ["truncated JSON", encoder.encode(json.slice(0, json.indexOf(req.partId) + req.partId.length + 1 + rng.int(3)))],
        // 0xC3 0x28 is an invalid UTF-8 sequence (and no byte-order mark a decoder might honour).
        ["not UTF-8", new Uint8Array([0xc3, 0x28, ...encoder.encode(json)])],
        ["a JSON array, not an object", encoder.encode(`[${json}]`)],
        ["plain text", encoder.encode(`carId=${req.carId} partId=${req.partId} sku=${String(valid.sku)}`)],
        ["a JSON string, not an object", encoder.encode(JSON.stringify(json))],
      ];
      const [defect, value] = variants[v % variants.length]!;
      return { role, key: req.carId, value, cls: "NOT_JSON", defect, repaired };
    }
    case "MISSING_FIELD":
      return edited(MISSING);
    case "WRONG_TYPE":
      return edited(WRONG_TYPE);
    case "BAD_VALUE":
      return edited(BAD_VALUE);
  }
}
