// Fixes to kafkajs 2.2.4, installed before kafkajs is first loaded: bunfig.toml preloads this
// module in every program and in the tests.
//
// 1. read_committed filtering (correctness). kafkajs drops the records of aborted transactions
//    with the fetch response's list of them, but it takes at most ONE aborted transaction from
//    the list per record it looks at. When several producers' aborted transactions start at or
//    before the first record of a fetch (a fetch that starts in the middle of them, or several
//    transactional producers writing to one partition: here every task writes markers and
//    re-keyed parts to every repartition partition), the others are never taken and their
//    records are handed over as committed. A task killed mid-transaction then had its aborted
//    re-keyed parts joined, and read-back checks saw them twice. The Java consumer takes every
//    aborted transaction that starts at or before the batch being read; so does this.
// 2. Grouping a send's messages per partition (CPU). kafkajs copies a partition's array for
//    every message it adds to it, quadratic in the messages per partition; the sink had to cut
//    its sends into 256-message chunks, one produce round trip each. This groups in one pass.
// 3. The protocol encoder's buffers (CPU). kafkajs zero-fills every buffer it allocates (one per
//    record and per nested structure, and every time a buffer doubles), then overwrites it: the
//    allocations were 10 % of the main thread in a backlog run (`bun --cpu-prof`). The encoder
//    only ever exposes the bytes it wrote (`buffer` is a slice up to `offset`), so its buffers
//    need not be zeroed. And it nests by copying: a produce request's records were copied into
//    their batch, the batch into its partition, that into its topic, the request body and the
//    framed request, each into a buffer grown by doubling (copies: 11 % of the main thread).
//    Here an encoder takes a large nested encoder's bytes by reference (a list of pieces) and
//    copies them once, when its own bytes are asked for: the framed request, before sending.
// 4. Decoding a fetched record (CPU). kafkajs computes each record's offset and timestamp with
//    its BigInt-backed Long (parse the batch's first offset from a string, add, print), and
//    folds its headers by copying an object per header: ~10 % of the main thread in a backlog
//    run. Offsets and millisecond timestamps are far below 2^53, so this adds plain numbers
//    (kafkajs's Long where a value would not be exact) and gives the same record.
import { createRequire } from "node:module";
import { CommittedFilter } from "./state/record-batches.ts";

interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  batchContext: { producerId: string; inTransaction: boolean };
  isControlRecord?: boolean;
}

interface AbortedTransaction {
  firstOffset: string;
  producerId: string;
}

const ABORT_MARKER_KEY = Buffer.from([0, 0, 0, 0]);

/**
 * kafkajs's filterAbortedMessages, judged by the project's own read_committed rules (the
 * changelog restore's CommittedFilter): every aborted transaction begun at or before a record
 * counts.
 */
export function filterAbortedMessages({
  messages,
  abortedTransactions,
}: {
  messages: FetchedMessage[];
  abortedTransactions?: AbortedTransaction[];
}): FetchedMessage[] {
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const filter = new CommittedFilter(abortedTransactions.map((t) => ({ firstOffset: Number(t.firstOffset), producerId: BigInt(t.producerId) })));
  return messages.filter((message) => {
    const offset = Number(message.offset);
    const producerId = BigInt(message.batchContext.producerId);
    if (message.key !== null && Buffer.from(message.key).equals(ABORT_MARKER_KEY) && message.isControlRecord !== false) {
      filter.closeTransaction(producerId, offset);
      return true;
    }
    return !filter.isAborted(producerId, message.batchContext.inTransaction, offset);
  });
}

/** kafkajs's groupMessagesPerPartition in one pass: partition → its messages, in send order. */
export function groupMessagesPerPartition<M>({
  topic,
  partitionMetadata,
  messages,
  partitioner,
}: {
  topic: string;
  partitionMetadata: unknown[];
  messages: M[];
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: M }) => number;
}): Record<number, M[]> {
  const grouped: Record<number, M[]> = {};
  if (partitionMetadata.length === 0) return grouped;
  for (const message of messages) (grouped[partitioner({ topic, partitionMetadata, message })] ??= []).push(message);
  return grouped;
}

interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
  ensureAvailable(length: number): void;
  writeBufferInternal(buffer: Buffer): void;
  writeEncoder(value: KafkajsEncoder): KafkajsEncoder;
  writeEncoderArray(values: KafkajsEncoder[]): KafkajsEncoder;
  size(): number;
}
type EncoderClass = (new (initialSize?: number) => KafkajsEncoder) & { nextPowerOfTwo(n: number): number; prototype: KafkajsEncoder };

const require = createRequire(import.meta.url);

/** Nested bytes from this size on are taken by reference, smaller ones copied. */
const BY_REFERENCE_BYTES = 16 * 1024;

/**
 * kafkajs's Encoder, allocating without zero-filling (it writes every byte it exposes), and
 * holding large nested encoders (and large buffers other encoders gave out) by reference.
 * kafkajs writes an encoder front to back and never rewrites a byte, so a piece taken by
 * reference stays what it was: its owner only writes past it, or into a new buffer.
 */
function fixedEncoder(Encoder: EncoderClass): EncoderClass {
  /** Buffers an encoder gave out (`buffer`) that are large enough to be taken by reference. */
  const givenOut = new WeakSet<Buffer>();
  const Unzeroed = class extends Encoder {
    /** Bytes before `buf`'s, in order. */
    pieces: Buffer[] = [];
    piecesBytes = 0;

    constructor(initialSize = 511) {
      super(0);
      this.buf = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(initialSize));
    }

    override ensureAvailable(length: number): void {
      if (this.offset + length <= this.buf.length) return;
      const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
      this.buf.copy(grown, 0, 0, this.offset);
      this.buf = grown;
    }

    override get buffer(): Buffer {
      if (this.pieces.length > 0) {
        // Asked for its bytes: one copy of the pieces, which it then holds as its own.
        this.buf = Buffer.concat([...this.pieces, this.buf.subarray(0, this.offset)], this.piecesBytes + this.offset);
        this.offset = this.buf.length;
        this.pieces = [];
        this.piecesBytes = 0;
      }
      const bytes = this.buf.subarray(0, this.offset);
      if (bytes.length >= BY_REFERENCE_BYTES) givenOut.add(bytes);
      return bytes;
    }

    override size(): number {
      return this.piecesBytes + this.offset;
    }

    override writeBufferInternal(buffer: Buffer): void {
      if (buffer.length >= BY_REFERENCE_BYTES && givenOut.has(buffer)) this.take(buffer);
      else this.copy(buffer);
    }

    override writeEncoder(value: KafkajsEncoder): KafkajsEncoder {
      if (value == null || !Buffer.isBuffer(value.buf)) throw new Error("value should be an instance of Encoder");
      this.nest(value);
      return this;
    }

    override writeEncoderArray(values: KafkajsEncoder[]): KafkajsEncoder {
      if (!Array.isArray(values) || values.some((v) => v == null || !Buffer.isBuffer(v.buf))) throw new Error("all values should be an instance of Encoder[]");
      for (const v of values) this.nest(v);
      return this;
    }

    private nest(value: KafkajsEncoder): void {
      const pieces = (value as Partial<{ pieces: Buffer[] }>).pieces ?? [];
      for (const piece of pieces) this.take(piece);
      const tail = value.buf.subarray(0, value.offset);
      if (tail.length >= BY_REFERENCE_BYTES) this.take(tail);
      else this.copy(tail);
    }

    private copy(bytes: Buffer): void {
      this.ensureAvailable(bytes.length);
      bytes.copy(this.buf, this.offset, 0);
      this.offset += bytes.length;
    }

    /** `piece` follows the bytes written so far, by reference; writing goes on in a new buffer. */
    private take(piece: Buffer): void {
      if (this.offset > 0) {
        this.pieces.push(this.buf.subarray(0, this.offset));
        this.piecesBytes += this.offset;
        this.buf = Buffer.allocUnsafe(256);
        this.offset = 0;
      }
      this.pieces.push(piece);
      this.piecesBytes += piece.length;
    }
  };
  return Unzeroed as unknown as EncoderClass;
}

/** Puts `exports` in the module cache as the module at `specifier`; kafkajs must not have loaded its users yet. */
function install(specifier: string, exports: unknown, usedBy: string): void {
  const path = require.resolve(specifier);
  const userPath = require.resolve(usedBy);
  // kafkajs's modules take these when they load: the fix must be in the module cache first.
  if (require.cache[userPath] !== undefined && require.cache[path]?.exports !== exports)
    throw new Error(`kafkajs-fix: kafkajs was loaded before its fixes; preload src/kafkajs-fix.ts (bunfig.toml)`);
  require.cache[path] = { id: path, filename: path, loaded: true, exports, children: [], paths: [] } as unknown as NodeJS.Module;
}

/** What kafkajs's record decoder reads from (its protocol Decoder). */
interface KafkajsDecoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readVarInt(): number;
  readVarLong(): { toString(): string };
  readVarIntBytes(): Buffer | null;
  readVarIntString(): string | null;
}

interface RecordBatchContext {
  firstOffset: string;
  firstTimestamp: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: string;
}

type KafkajsLong = { fromValue(v: string | number): KafkajsLong; add(v: unknown): KafkajsLong; toString(): string };
const Long = require("kafkajs/src/utils/long.js") as KafkajsLong;
const LOG_APPEND_TIME = (require("kafkajs/src/protocol/timestampTypes.js") as { LOG_APPEND_TIME: number }).LOG_APPEND_TIME;

/** A zig-zag varlong as a number, or undefined (decoder untouched) when it may not be exact. */
function readSmallVarLong(decoder: KafkajsDecoder): number | undefined {
  const buf = decoder.buffer;
  let at = decoder.offset;
  let unsigned = 0;
  let scale = 1;
  for (let i = 0; ; i++) {
    // Seven varint bytes hold 49 bits: exact as a number; longer ones go to kafkajs's Long.
    if (i === 7 || at >= buf.length) return undefined;
    const byte = buf[at++]!;
    unsigned += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) break;
  }
  decoder.offset = at;
  return unsigned % 2 === 0 ? unsigned / 2 : -(unsigned + 1) / 2;
}

/** `base` (a decimal string) + `delta` as a decimal string, as kafkajs's Long would print it. */
function addToDecimal(base: string, delta: number | { toString(): string }): string {
  if (typeof delta === "number") {
    const start = Number(base);
    const sum = start + delta;
    if (Number.isSafeInteger(start) && Number.isSafeInteger(sum)) return String(sum);
  }
  return Long.fromValue(base)
    .add(typeof delta === "number" ? Long.fromValue(delta) : delta)
    .toString();
}

/** kafkajs's record decoder (recordBatch/record/v0/decoder.js) with number arithmetic: the same record. */
export function decodeRecord(decoder: KafkajsDecoder, batchContext: RecordBatchContext = { firstOffset: "0", firstTimestamp: "0" }) {
  const { firstOffset, firstTimestamp, magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
  const attributes = decoder.readInt8();
  const timestampDelta = readSmallVarLong(decoder) ?? decoder.readVarLong();
  const timestamp = timestampType === LOG_APPEND_TIME && maxTimestamp ? maxTimestamp : addToDecimal(firstTimestamp, timestampDelta);
  const offset = addToDecimal(firstOffset, decoder.readVarInt());
  const key = decoder.readVarIntBytes();
  const value = decoder.readVarIntBytes();
  // kafkajs's header fold: a key seen twice collects its values in an array.
  const headers: Record<string, Buffer | null | (Buffer | null)[]> = {};
  const count = decoder.readVarInt();
  for (let i = 0; i < count; i++) {
    const name = String(decoder.readVarIntString());
    const headerValue = decoder.readVarIntBytes();
    const seen = headers[name];
    headers[name] = seen === undefined ? headerValue : Array.isArray(seen) ? [...seen, headerValue] : [seen, headerValue];
  }
  return { magicByte, attributes, timestamp, offset, key, value, headers, isControlRecord: isControlBatch, batchContext };
}

export const Encoder = fixedEncoder(require("kafkajs/src/protocol/encoder.js") as EncoderClass);

install("kafkajs/src/consumer/filterAbortedMessages.js", filterAbortedMessages, "kafkajs/src/consumer/batch.js");
install("kafkajs/src/producer/groupMessagesPerPartition.js", groupMessagesPerPartition, "kafkajs/src/producer/sendMessages.js");
install("kafkajs/src/protocol/encoder.js", Encoder, "kafkajs/src/protocol/request.js");
install("kafkajs/src/protocol/recordBatch/record/v0/decoder.js", decodeRecord, "kafkajs/src/protocol/recordBatch/v0/decoder.js");
