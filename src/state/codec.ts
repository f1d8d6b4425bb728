// Changelog values of join state: msgpack (compact, and much cheaper than JSON to rebuild).
import { pack, unpack } from "msgpackr";
import type { CarState } from "../join/shard.ts";

export function encodeCarState(state: CarState): Uint8Array {
  return pack(state);
}

export function decodeCarState(bytes: Uint8Array): CarState {
  const s = unpack(bytes) as CarState;
  if (s === null || typeof s !== "object" || (s.open === undefined && s.recent === undefined)) throw new Error("changelog: malformed join-state entry");
  return s;
}
