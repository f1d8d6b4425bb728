// Valid parts as a factory would publish them (SPEC §3): the catalog of SKUs, the fields
// of each kind, and now and then an unknown extra field that must pass through the engine.
import { CHANNEL_FREQUENCIES, KIND_OF_ROLE, type InputRole, type Part, type PartKind, type WheelPlacement } from "../domain.ts";
import type { Rng } from "./prng.ts";

export interface SkuOptions {
  /** Catalog size per kind. */
  skus: number;
  /** Every part gets a SKU of its own (exercises the price dispatcher with no sharing). */
  distinctSkus: boolean;
}

export const ROLE_OF_KIND: Record<PartKind, InputRole> = {
  BODY: "body",
  ENGINE: "engine",
  REMOTE_CONTROL: "remoteControl",
  WHEEL: "wheel",
};
export const KIND_CODE: Record<PartKind, string> = { BODY: "BD", ENGINE: "EN", REMOTE_CONTROL: "RC", WHEEL: "WH" };
export const PLACEMENT_CODE: Record<WheelPlacement, string> = {
  FRONT_LEFT: "FL",
  FRONT_RIGHT: "FR",
  REAR_LEFT: "RL",
  REAR_RIGHT: "RR",
};

const COLORS = ["red", "blue", "green", "yellow", "black", "white", "orange", "silver"];
const MATERIALS = ["ABS", "polycarbonate", "carbon fibre", "aluminium", "nylon"];

// Extra fields cover the JSON shapes a pass-through can get wrong: nesting, arrays, null,
// non-ASCII text, large integers that are still exact doubles.
const EXTRAS: ReadonlyArray<(rng: Rng) => [string, unknown]> = [
  (r) => ["batch", `B-${r.int(10000)}`],
  (r) => ["factory", { line: 1 + r.int(8), shift: r.pick(["early", "late", "night"]) }],
  (r) => ["tags", ["inspected", r.pick(["grade-a", "grade-b"])]],
  (r) => ["inspector", r.pick(["Zoë Müller ✓", "Łukasz Żółw", "佐藤 花子"])],
  (r) => ["serial", 1_000_000_000 + r.int(1_000_000_000)],
  () => ["note", null],
];

export function catalogSku(kind: PartKind, n: number): string {
  return `${KIND_CODE[kind]}-${String(n + 1).padStart(4, "0")}`;
}

/** A SKU for a new part; `partId` makes distinct SKUs unique. */
export function chooseSku(kind: PartKind, partId: string, rng: Rng, o: SkuOptions): string {
  return o.distinctSkus ? `${KIND_CODE[kind]}-${partId}` : catalogSku(kind, rng.int(o.skus));
}

export interface PartSpec {
  role: InputRole;
  carId: string;
  partId: string;
  sku: string;
  placement?: WheelPlacement;
}

/** A valid part of the role's kind; with probability extraFieldRate one unknown field is added. */
export function makePart(spec: PartSpec, rng: Rng, extraFieldRate: number): Part {
  const base = { carId: spec.carId, partId: spec.partId, sku: spec.sku };
  let part: Part;
  switch (KIND_OF_ROLE[spec.role]) {
    case "BODY":
      part = { ...base, color: rng.pick(COLORS), material: rng.pick(MATERIALS), weightKg: (30 + rng.int(220)) / 100 };
      break;
    case "ENGINE":
      part = base;
      break;
    case "REMOTE_CONTROL":
      part = { ...base, channelFrequency: rng.pick(CHANNEL_FREQUENCIES) };
      break;
    case "WHEEL":
      if (spec.placement === undefined) throw new Error("a wheel needs a placement");
      part = { ...base, placement: spec.placement };
      break;
  }
  if (rng.chance(extraFieldRate)) {
    const [name, value] = rng.pick(EXTRAS)(rng);
    part[name] = value;
  }
  return part;
}

const encoder = new TextEncoder();
export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}
