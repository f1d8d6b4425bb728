// One partition's records for one worker as two flat buffers (see PartitionBatch): packed on
// the main thread, moved to the worker (no copy, no structured clone), read back there.
import type { InputRole, Route } from "../domain.ts";
import { LANES } from "../domain.ts";
import { META_FIELDS, type PartitionBatch, type TickRecord } from "./protocol.ts";

/** Packs records into two fresh buffers that are then moved to the worker, not copied. */
export function pack(partition: number, records: ReadonlyArray<TickRecord>, safeTime: number): PartitionBatch {
  let size = 0;
  for (const { record } of records) size += (record.key?.length ?? 0) + (record.value?.length ?? 0);
  const meta = new Float64Array(records.length * META_FIELDS);
  const bytes = new Uint8Array(size);
  let at = 0;
  let m = 0;
  for (const { lane, replay, record } of records) {
    meta[m++] = lane;
    meta[m++] = record.timestamp;
    meta[m++] = Number(record.offset);
    meta[m++] = record.origin?.partition ?? partition;
    meta[m++] = Number(record.origin?.offset ?? record.offset);
    meta[m++] = replay ? 1 : 0;
    meta[m++] = record.key === null ? -1 : record.key.length;
    meta[m++] = record.value === null ? -1 : record.value.length;
    if (record.key !== null) {
      bytes.set(record.key, at);
      at += record.key.length;
    }
    if (record.value !== null) {
      bytes.set(record.value, at);
      at += record.value.length;
    }
  }
  return { partition, meta, bytes, safeTime };
}

/** A record read back from a batch; key and value are views into the batch's bytes. */
export interface UnpackedRecord {
  lane: number;
  role: InputRole;
  route: Route;
  timestamp: number;
  offset: number;
  originPartition: number;
  originOffset: number;
  replay: boolean;
  key: Buffer | null;
  value: Buffer | null;
}

export function* unpack(batch: PartitionBatch): Generator<UnpackedRecord> {
  const { meta, bytes } = batch;
  const whole = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  for (let m = 0; m < meta.length; m += META_FIELDS) {
    const keyLength = meta[m + 6]!;
    const valueLength = meta[m + 7]!;
    const key = keyLength < 0 ? null : whole.subarray(at, (at += keyLength));
    const value = valueLength < 0 ? null : whole.subarray(at, (at += valueLength));
    const lane = meta[m]!;
    const { role, route } = LANES[lane]!;
    yield {
      lane,
      role,
      route,
      timestamp: meta[m + 1]!,
      offset: meta[m + 2]!,
      originPartition: meta[m + 3]!,
      originOffset: meta[m + 4]!,
      replay: meta[m + 5] === 1,
      key,
      value,
    };
  }
}

export function recordCount(batch: PartitionBatch): number {
  return batch.meta.length / META_FIELDS;
}

/**
 * Piscina's run() options that move the batches' buffers instead of copying them. (Piscina
 * infers its TransferList type from MessagePort.postMessage, whose bun-types overloads it
 * cannot infer from; ArrayBuffers are what it transfers.)
 */
export function moving(batches: readonly PartitionBatch[]): { transferList: ArrayBuffer[] } {
  return { transferList: batches.flatMap((b) => [b.meta.buffer as ArrayBuffer, b.bytes.buffer as ArrayBuffer]) };
}
