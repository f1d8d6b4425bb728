// Changelog values of join state (and the form join state crosses threads in): MessagePack.
// Plain maps, not msgpackr's record extension: every value decodes on its own with any
// MessagePack reader (no shared structure table to lose between versions or processes), and
// the record extension saved only ~10 % here. variableMapSize picks fixmap headers for small
// objects (1 byte instead of 3). A typical open car with five parts is ~400 bytes (JSON: ~500).
import { Packr } from "msgpackr";
import type { CarState, OpenCarState, RecentCar } from "../join/state.ts";

const packr = new Packr({ useRecords: false, variableMapSize: true, mapsAsObjects: true });

export function encodeCarState(state: CarState): Uint8Array {
  return packr.pack(state);
}

/** Throws on bytes that are not a join state: a changelog we did not write is not guessed at. */
export function decodeCarState(bytes: Uint8Array): CarState {
  const s = packr.unpack(bytes) as CarState;
  if (s === null || typeof s !== "object" || Array.isArray(s)) throw new Error("changelog: join state is not a map");
  if (s.open === undefined && s.recent === undefined) throw new Error("changelog: join state has neither an open window nor remembered partIds");
  if (s.open !== undefined && !isOpen(s.open)) throw new Error("changelog: malformed open window in join state");
  if (s.recent !== undefined && !(Array.isArray(s.recent) && s.recent.every(isRecent))) throw new Error("changelog: malformed remembered partIds in join state");
  return s;
}

function isOpen(o: OpenCarState): boolean {
  return typeof o === "object" && o !== null && typeof o.firstPartAt === "number" && Array.isArray(o.wheels);
}

function isRecent(r: RecentCar): boolean {
  return typeof r === "object" && r !== null && typeof r.until === "number" && Array.isArray(r.partIds) && r.partIds.every((id) => typeof id === "string");
}
