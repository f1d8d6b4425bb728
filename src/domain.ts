// The domain every module shares: parts, cars, situations, dead letters, and the
// deterministic catalog price the mock API serves (SPEC §3, §4, §6).

export type PartKind = "BODY" | "ENGINE" | "REMOTE_CONTROL" | "WHEEL";
/** The kinds a car can miss; wheels are missed as a group. Order = situation precedence. */
export type MissingKind = "BODY" | "ENGINE" | "REMOTE_CONTROL" | "WHEELS";
export const MISSING_ORDER: readonly MissingKind[] = ["BODY", "ENGINE", "REMOTE_CONTROL", "WHEELS"];

export type Situation = "COMPLETED" | "MISSING_BODY" | "MISSING_ENGINE" | "MISSING_REMOTE_CONTROL" | "MISSING_WHEELS" | "FAILED_GET_PRICE";

export const CHANNEL_FREQUENCIES = ["RF_27", "RF_49", "RF_50", "RF_53", "RF_72", "RF_75"] as const;
export type ChannelFrequency = (typeof CHANNEL_FREQUENCIES)[number];
export const WHEEL_PLACEMENTS = ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"] as const;
export type WheelPlacement = (typeof WHEEL_PLACEMENTS)[number];
export const WHEELS_PER_CAR = WHEEL_PLACEMENTS.length;

/** Fields every part carries. Unknown extra fields are kept and passed through. */
export interface PartBase {
  carId: string;
  partId: string;
  sku: string;
  [extra: string]: unknown;
}
export interface Body extends PartBase {
  color: string;
  material: string;
  weightKg: number;
}
export type Engine = PartBase;
export interface RemoteControl extends PartBase {
  channelFrequency: ChannelFrequency;
}
export interface Wheel extends PartBase {
  placement: WheelPlacement;
}
export type Part = Body | Engine | RemoteControl | Wheel;

/** The output record on rccar-completed / rccar-incomplete. */
export interface Car {
  carId: string;
  /** AWAITING_PRICE only between the join and the pricing dispatcher; never an output. */
  situation: Situation | "AWAITING_PRICE";
  missing: MissingKind[];
  body?: Body;
  engine?: Engine;
  remoteControl?: RemoteControl;
  wheels: Wheel[];
  prices?: Record<string, number>;
  totalPrice?: number;
  error?: string;
  firstPartAt: number;
  assembledAt: number;
  pricedAt?: number;
}

/** The output record on rccar-dlq. `value` is the original bytes, base64. */
export interface DeadLetter {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string;
  reason: string;
}

/** Which input topic (by logical role) carries which part kind. */
export type InputRole = "body" | "engine" | "remoteControl" | "wheel";
export const INPUT_ROLES: readonly InputRole[] = ["body", "engine", "remoteControl", "wheel"];
/** A role's position in INPUT_ROLES (its index in arrays and packed records). */
export const ROLE_INDEX: Record<InputRole, number> = { body: 0, engine: 1, remoteControl: 2, wheel: 3 };
/**
 * Where a task reads a role's records from: the input topic itself ("direct"), or the role's
 * repartition topic ("hop"), which carries the records that arrived on another partition than
 * their car's, re-keyed by carId (SPEC §9). A task has a lane per (role, route).
 */
export type Route = "direct" | "hop";
export interface Lane {
  role: InputRole;
  route: Route;
}
/** Lanes in index order: the four direct lanes (role order), then the four hop lanes. */
export const LANES: readonly Lane[] = [
  ...INPUT_ROLES.map((role) => ({ role, route: "direct" as const })),
  ...INPUT_ROLES.map((role) => ({ role, route: "hop" as const })),
];
export function laneIndex(role: InputRole, route: Route): number {
  return ROLE_INDEX[role] + (route === "hop" ? INPUT_ROLES.length : 0);
}

export const KIND_OF_ROLE: Record<InputRole, PartKind> = {
  body: "BODY",
  engine: "ENGINE",
  remoteControl: "REMOTE_CONTROL",
  wheel: "WHEEL",
};

export function situationFor(missing: readonly MissingKind[]): Situation {
  const first = MISSING_ORDER.find((k) => missing.includes(k));
  return first === undefined ? "COMPLETED" : (`MISSING_${first}` as Situation);
}

/** Missing kinds of a set of parts, in situation precedence order. */
export function missingKinds(has: { body: boolean; engine: boolean; remoteControl: boolean; wheelPlacements: number }): MissingKind[] {
  const missing: MissingKind[] = [];
  if (!has.body) missing.push("BODY");
  if (!has.engine) missing.push("ENGINE");
  if (!has.remoteControl) missing.push("REMOTE_CONTROL");
  if (has.wheelPlacements < WHEELS_PER_CAR) missing.push("WHEELS");
  return missing;
}

/**
 * The mock price API's catalog price for a SKU, in integer cents (100..9999, i.e. 1.00–99.99).
 * FNV-1a over the UTF-8 bytes: the generator's manifest and the API agree without talking.
 */
export function catalogPriceCents(sku: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(sku)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 100 + (h % 9900);
}

/** Cents → the JSON number a price is written as (exact to the cent). */
export function centsToAmount(cents: number): number {
  return Math.round(cents) / 100;
}

/**
 * A JSON price → integer cents, or null when it is not a whole number of cents or the cents
 * are past exact integers (1e18 × 100 is not). Judged on the shortest decimal that reads back
 * as the number, i.e. what the sender wrote: `amount * 100` alone is off by float error that
 * grows with the amount, so a fixed tolerance either refuses large exact prices or accepts
 * large inexact ones.
 */
export function amountToCents(amount: number): number | null {
  if (!Number.isFinite(amount) || !/^-?\d+(\.\d{1,2})?$/.test(String(amount))) return null;
  const cents = Math.round(amount * 100);
  return Number.isSafeInteger(cents) ? cents : null;
}

/**
 * Why a record went to the dead-letter topic. A reason is written `CLASS: detail`, e.g.
 * `BAD_VALUE: placement "MIDDLE" is not one of FRONT_LEFT, ...`. Validation checks in this
 * order and reports the first failure: OVERSIZED, NOT_JSON, MISSING_FIELD, WRONG_TYPE,
 * BAD_VALUE. A record's key is not judged: one that is not its carId is re-keyed (SPEC §9).
 * CONFLICT is decided by the join, not by decoding; FUTURE_TIMESTAMP
 * and BAD_TIMESTAMP by the record's timestamp against the engine's clock (SPEC §3).
 */
export const DEAD_LETTER_CLASSES = [
  "OVERSIZED", // value larger than MAX_PART_BYTES
  "NOT_JSON", // not UTF-8 JSON, not an object, or a tombstone (null value)
  "MISSING_FIELD", // a required field is absent (carId, partId, sku, then the kind's own fields)
  "WRONG_TYPE", // a field has the wrong JSON type
  "BAD_VALUE", // empty or too long string, weightKg <= 0, unknown enum value
  "CONFLICT", // a second different part for a slot the open car already filled
  "FUTURE_TIMESTAMP", // stamped more than MAX_CLOCK_SKEW_MS ahead of the engine's clock when read
  "BAD_TIMESTAMP", // no usable timestamp (negative)
] as const;
export type DeadLetterClass = (typeof DEAD_LETTER_CLASSES)[number];

export function deadLetterReason(cls: DeadLetterClass, detail: string): string {
  return `${cls}: ${detail}`;
}

export function classOfReason(reason: string): DeadLetterClass | undefined {
  const cls = reason.slice(0, reason.indexOf(":"));
  return (DEAD_LETTER_CLASSES as readonly string[]).includes(cls) ? (cls as DeadLetterClass) : undefined;
}
