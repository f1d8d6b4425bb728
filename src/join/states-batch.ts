// Restored join states for one worker as two flat buffers (see PackedStates): packed on the
// main thread, moved to the worker (no structured clone of 100,000 [carId, bytes] pairs: that
// cost ~4 µs an entry on the main thread, as much again in the worker), read back there.
import type { PackedStates } from "./protocol.ts";

const utf8 = new TextEncoder();

/** Packs [carId, changelog value] pairs into two fresh buffers that are then moved, not copied. */
export function packStates(partition: number, entries: ReadonlyArray<readonly [carId: string, state: Uint8Array]>): PackedStates {
  let size = 0;
  // A carId of n UTF-16 units takes at most 3n UTF-8 bytes.
  for (const [carId, state] of entries) size += carId.length * 3 + state.length;
  const lengths = new Uint32Array(entries.length * 2);
  const bytes = new Uint8Array(size);
  let at = 0;
  let l = 0;
  for (const [carId, state] of entries) {
    const { written } = utf8.encodeInto(carId, bytes.subarray(at));
    at += written;
    bytes.set(state, at);
    at += state.length;
    lengths[l++] = written;
    lengths[l++] = state.length;
  }
  return { partition, lengths, bytes };
}

/** Calls `each` with every carId and a view of its state bytes, in packing order. */
export function unpackStates(packed: PackedStates, each: (carId: string, state: Uint8Array) => void): void {
  const { lengths, bytes } = packed;
  const whole = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  for (let l = 0; l < lengths.length; l += 2) {
    const carId = whole.toString("utf8", at, (at += lengths[l]!));
    each(carId, whole.subarray(at, (at += lengths[l + 1]!)));
  }
}

export function movingStates(packed: PackedStates): { transferList: ArrayBuffer[] } {
  return { transferList: [packed.lengths.buffer as ArrayBuffer, packed.bytes.buffer as ArrayBuffer] };
}
