// Reads the committed records out of the raw record batches (message format v2) of one
// partition of a fetch response, the way the Java consumer does under read_committed:
// records of a transaction listed as aborted are skipped from its first offset until its
// abort marker; control batches (commit and abort markers) are never records. Pure: bytes in,
// records out; decompression is passed in (the engine's producers do not compress).

export interface AbortedTransaction {
  producerId: bigint;
  firstOffset: number;
}

/** Inflates the records of a compressed batch (codec from the batch attributes). */
export type Inflate = (attributes: number, records: Buffer) => Promise<Buffer>;

export interface BatchVisitor {
  /** A committed data record. Key and value are views into the response's bytes (no copy). */
  record(offset: number, key: Buffer | null, value: Buffer | null): void;
}

const MAGIC_V2 = 2;
/** baseOffset(8) batchLength(4): the batch length counts the bytes after these. */
const LOG_OVERHEAD = 12;
/** From the batch start to its record count, inclusive. */
const BATCH_HEADER = 61;
const COMPRESSION_MASK = 0x07;
const TRANSACTIONAL_FLAG = 0x10;
const CONTROL_FLAG = 0x20;
const ABORT_MARKER = 0;

/**
 * The read_committed state of one fetched partition: the aborted transactions the broker
 * listed (sorted by first offset) and the producers inside one at the current batch.
 */
export class CommittedFilter {
  private readonly pending: AbortedTransaction[];
  private readonly abortedProducers = new Set<bigint>();

  constructor(aborted: readonly AbortedTransaction[]) {
    this.pending = [...aborted].sort((a, b) => a.firstOffset - b.firstOffset);
  }

  /** Whether the data batch of this producer, ending at lastOffset, belongs to an aborted transaction. */
  isAborted(producerId: bigint, transactional: boolean, lastOffset: number): boolean {
    this.admit(lastOffset);
    return transactional && this.abortedProducers.has(producerId);
  }

  /** An abort marker closes its producer's aborted transaction. */
  closeTransaction(producerId: bigint, lastOffset: number): void {
    this.admit(lastOffset);
    this.abortedProducers.delete(producerId);
  }

  private admit(lastOffset: number): void {
    while (this.pending.length > 0 && this.pending[0]!.firstOffset <= lastOffset) this.abortedProducers.add(this.pending.shift()!.producerId);
  }
}

/**
 * Walks the complete record batches of `bytes` (the last one may be cut off by the fetch
 * size: it is left for the next fetch), hands each committed record at or after
 * `fetchOffset` to the visitor in offset order, and returns the offset after the last
 * complete batch (control and aborted batches included: the next fetch starts there).
 */
export async function readBatches(bytes: Buffer, fetchOffset: number, filter: CommittedFilter, visit: BatchVisitor, inflate: Inflate): Promise<number> {
  let at = 0;
  let nextOffset = fetchOffset;
  while (at + BATCH_HEADER <= bytes.length) {
    const baseOffset = Number(bytes.readBigInt64BE(at));
    const end = at + LOG_OVERHEAD + bytes.readInt32BE(at + 8);
    if (end > bytes.length) break;
    const magic = bytes.readInt8(at + 16);
    if (magic !== MAGIC_V2) throw new Error(`changelog: record batch at offset ${baseOffset} has message format v${magic}; only v2 is read`);
    const attributes = bytes.readInt16BE(at + 21);
    const lastOffset = baseOffset + bytes.readInt32BE(at + 23);
    const producerId = bytes.readBigInt64BE(at + 43);
    const count = bytes.readInt32BE(at + 57);
    const batchNext = lastOffset + 1;
    if (batchNext > nextOffset) {
      const transactional = (attributes & TRANSACTIONAL_FLAG) !== 0;
      if ((attributes & CONTROL_FLAG) !== 0) {
        if (controlType(bytes, at + BATCH_HEADER, end) === ABORT_MARKER) filter.closeTransaction(producerId, lastOffset);
        else filter.isAborted(producerId, false, lastOffset);
      } else if (!filter.isAborted(producerId, transactional, lastOffset)) {
        if ((attributes & COMPRESSION_MASK) !== 0) {
          const records = await inflate(attributes, bytes.subarray(at + BATCH_HEADER, end));
          readRecords(records, 0, records.length, count, baseOffset, fetchOffset, visit);
        } else {
          readRecords(bytes, at + BATCH_HEADER, end, count, baseOffset, fetchOffset, visit);
        }
      }
      nextOffset = batchNext;
    }
    at = end;
  }
  return nextOffset;
}

/** Reads `count` records from bytes[from, to) of a batch whose first offset is baseOffset. */
function readRecords(bytes: Buffer, from: number, to: number, count: number, baseOffset: number, fetchOffset: number, visit: BatchVisitor): void {
  const r = { at: from };
  for (let i = 0; i < count && r.at < to; i++) {
    const length = varint(bytes, r);
    const end = r.at + length;
    r.at++; // attributes
    skipVarint(bytes, r); // timestamp delta
    const offset = baseOffset + varint(bytes, r);
    const keyLength = varint(bytes, r);
    const key = keyLength < 0 ? null : bytes.subarray(r.at, (r.at += keyLength));
    const valueLength = varint(bytes, r);
    const value = valueLength < 0 ? null : bytes.subarray(r.at, (r.at += valueLength));
    r.at = end; // headers are not read
    if (offset >= fetchOffset) visit.record(offset, key, value);
  }
}

/** A control record's key is version (int16) then type (int16: 0 abort, 1 commit). */
function controlType(bytes: Buffer, from: number, to: number): number {
  const r = { at: from };
  if (r.at >= to) return -1;
  varint(bytes, r); // length
  r.at++; // attributes
  skipVarint(bytes, r);
  varint(bytes, r); // offset delta
  const keyLength = varint(bytes, r);
  return keyLength >= 4 ? bytes.readInt16BE(r.at + 2) : -1;
}

/** A zigzag varint of at most 32 bits. */
function varint(bytes: Buffer, r: { at: number }): number {
  let value = 0;
  let shift = 0;
  let b: number;
  do {
    b = bytes[r.at++]!;
    value |= (b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80 && shift < 35);
  return (value >>> 1) ^ -(value & 1);
}

function skipVarint(bytes: Buffer, r: { at: number }): void {
  while (bytes[r.at++]! & 0x80);
}
