// Changelog values of join state (and the form join state crosses threads in): MessagePack.
// Plain maps, not msgpackr's record extension: every value decodes on its own with any
// MessagePack reader (no shared structure table to lose between versions or processes), and
// the record extension saved only ~10 % here. variableMapSize picks fixmap headers for small
// objects (1 byte instead of 3). An open window's parts are one packed string (car.ts): a
// typical open car with five parts is ~110 bytes (as parsed parts, earlier: ~400).
//
// Entries written by earlier versions (open windows as parsed parts) still read: they are
// packed on decode, so a restored shard holds the same form as one that never stopped.
import { Packr } from "msgpackr";
import type { Part, PartKind } from "../domain.ts";
import { packParts } from "./car.ts";
import type { CarState, LegacyOpenCarState, OpenCarState, RecentCar } from "./state.ts";

const packr = new Packr({ useRecords: false, variableMapSize: true, mapsAsObjects: true });

export function encodeCarState(state: CarState): Uint8Array {
  return packr.pack(state);
}

/** Throws on bytes that are not a join state: a changelog we did not write is not guessed at. */
export function decodeCarState(bytes: Uint8Array): CarState {
  const s = packr.unpack(bytes) as CarState;
  if (s === null || typeof s !== "object" || Array.isArray(s)) throw new Error("changelog: join state is not a map");
  if (s.open === undefined && s.recent === undefined) throw new Error("changelog: join state has neither an open window nor remembered partIds");
  if (s.open !== undefined) {
    if (isLegacy(s.open)) s.open = fromLegacy(s.open);
    else if (!isOpen(s.open)) throw new Error("changelog: malformed open window in join state");
  }
  if (s.recent !== undefined && !(Array.isArray(s.recent) && s.recent.every(isRecent)))
    throw new Error("changelog: malformed remembered partIds in join state");
  return s;
}

function isOpen(o: OpenCarState): boolean {
  return typeof o === "object" && o !== null && typeof o.firstPartAt === "number" && typeof o.parts === "string";
}

function isLegacy(o: unknown): o is LegacyOpenCarState {
  const l = o as LegacyOpenCarState;
  return typeof l === "object" && l !== null && typeof l.firstPartAt === "number" && Array.isArray(l.wheels) && !("parts" in l);
}

function fromLegacy(l: LegacyOpenCarState): OpenCarState {
  const parts: { kind: PartKind; part: Part }[] = [];
  if (l.body) parts.push({ kind: "BODY", part: l.body });
  if (l.engine) parts.push({ kind: "ENGINE", part: l.engine });
  if (l.remoteControl) parts.push({ kind: "REMOTE_CONTROL", part: l.remoteControl });
  for (const w of l.wheels) parts.push({ kind: "WHEEL", part: w });
  const carId = parts[0]?.part.carId ?? "";
  try {
    return { firstPartAt: l.firstPartAt, parts: packParts(carId, parts) };
  } catch (e) {
    throw new Error(`changelog: malformed open window in join state (${(e as Error).message})`);
  }
}

function isRecent(r: RecentCar): boolean {
  return typeof r === "object" && r !== null && typeof r.until === "number" && Array.isArray(r.partIds) && r.partIds.every((id) => typeof id === "string");
}
