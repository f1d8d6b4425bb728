// kafkajs 2.2.4 fixes (src/kafkajs-fix.ts): read_committed filtering that handed over records of
// aborted transactions as committed, quadratic grouping of a send's messages, zero-filled encoder
// buffers, BigInt arithmetic per fetched record.
import { describe, expect, test } from "bun:test";
import { createRequire } from "node:module";
import { decodeRecord, Encoder, filterAbortedMessages, groupMessagesPerPartition } from "../src/kafkajs-fix.ts";

const require = createRequire(import.meta.url);
type Message = Parameters<typeof filterAbortedMessages>[0]["messages"][number];

const record = (offset: number, producerId: string, inTransaction = true): Message => ({
  offset: String(offset),
  key: Buffer.from(`k${offset}`),
  batchContext: { producerId, inTransaction },
  isControlRecord: false,
});
const abortMarker = (offset: number, producerId: string): Message => ({
  offset: String(offset),
  key: Buffer.from([0, 0, 0, 0]),
  batchContext: { producerId, inTransaction: true },
  isControlRecord: true,
});

const [A, B, C] = ["1", "2", "3"];

describe("read_committed filtering (kafkajs fix)", () => {
  // Producers A (id 1) and B (id 2) each began a transaction before offset 10 and had it
  // aborted later; C (id 3) committed. Producer ids are Int64 strings, as kafkajs decodes them. A fetch that starts at offset 10 sees both aborted transactions in its list.
  // kafkajs took A at offset 10 and B only at 11: B's record at 10 was handed over.
  const messages = [record(10, B), record(11, C), record(12, A), abortMarker(13, A), abortMarker(14, B), record(15, A), record(16, B)];
  const aborted = [
    { firstOffset: "3", producerId: A },
    { firstOffset: "5", producerId: B },
  ];

  test("every aborted transaction begun before a record is dropped, not only the first", () => {
    const kept = filterAbortedMessages({ messages, abortedTransactions: aborted }).map((m) => m.offset);
    expect(kept).toEqual(["11", "13", "14", "15", "16"]);
  });

  test("kafkajs's own Batch uses the fix (it was installed before kafkajs loaded)", () => {
    const Batch = require("kafkajs/src/consumer/batch.js") as new (topic: string, fetchedOffset: string, partitionData: unknown) => { messages: Message[] };
    const batch = new Batch("t", "10", { partition: 0, highWatermark: "17", messages, abortedTransactions: aborted });
    expect(batch.messages.map((m) => m.offset)).toEqual(["11", "15", "16"]);
  });
});

describe("grouping a send's messages per partition (kafkajs fix)", () => {
  const partitionMetadata = [{ partitionId: 0 }, { partitionId: 1 }, { partitionId: 2 }];

  test("every message lands in its partition's list once, in send order", () => {
    const messages = Array.from({ length: 10_000 }, (_, i) => ({ value: String(i), partition: (i * 7) % 3 }));
    const grouped = groupMessagesPerPartition({ topic: "t", partitionMetadata, messages, partitioner: ({ message }) => message.partition });
    expect(Object.keys(grouped).sort()).toEqual(["0", "1", "2"]);
    for (const p of [0, 1, 2]) expect(grouped[p]).toEqual(messages.filter((m) => m.partition === p));
  });

  test("a topic without partition metadata groups nothing, as kafkajs's did", () => {
    expect(groupMessagesPerPartition({ topic: "t", partitionMetadata: [], messages: [{}], partitioner: () => 0 })).toEqual({});
  });

  test("kafkajs's producer uses it", () => {
    expect(require("kafkajs/src/producer/groupMessagesPerPartition.js")).toBe(groupMessagesPerPartition);
  });
});

describe("the protocol encoder without zero-filling (kafkajs fix)", () => {
  interface Writer {
    readonly buffer: Buffer;
    writeInt8(v: number): Writer;
    writeInt16(v: number): Writer;
    writeInt32(v: number): Writer;
    writeInt64(v: string): Writer;
    writeDouble(v: number): Writer;
    writeBoolean(v: boolean): Writer;
    writeString(v: string | null): Writer;
    writeVarIntString(v: string): Writer;
    writeBytes(v: Buffer): Writer;
    writeVarIntBytes(v: Buffer): Writer;
    writeUVarIntBytes(v: Buffer): Writer;
    writeEncoder(v: Writer): Writer;
    writeEncoderArray(v: Writer[]): Writer;
    size(): number;
    writeArray(v: string[]): Writer;
    writeVarInt(v: number): Writer;
    writeUVarInt(v: number): Writer;
    writeVarLong(v: number): Writer;
  }
  const Original = Object.getPrototypeOf(Encoder) as new (size?: number) => Writer;
  const Unzeroed = Encoder as unknown as new (size?: number) => Writer;

  // Every kind of write, nested encoders, and growth far past the first 512 bytes.
  const write = (E: new (size?: number) => Writer): Buffer => {
    const inner = new E().writeInt32(7).writeVarIntString("wheel-".repeat(50)).writeVarLong(-123456789);
    const e = new E(8).writeInt8(-1).writeInt16(300).writeInt64("9007199254740993").writeDouble(0.1).writeBoolean(true).writeString("body");
    e.writeBytes(Buffer.from("x".repeat(3000))).writeString(null);
    for (let i = 0; i < 200; i++)
      e.writeVarInt(i * 1013 - 50_000)
        .writeUVarInt(i * 977)
        .writeEncoder(inner);
    e.writeVarIntBytes(Buffer.from([1, 2, 3]))
      .writeUVarIntBytes(Buffer.from([4]))
      .writeArray(["a", "bb"]);
    // Nesting as a produce request does: records in a batch, the batch (over 16 KB) in its
    // partition, that in its topic, in the request; sizes written before the bytes.
    const batch = new E();
    for (let i = 0; i < 3000; i++) batch.writeVarIntString(`record-${i}`).writeEncoder(inner);
    const partition = new E().writeInt32(3).writeInt32(batch.size()).writeEncoder(batch);
    const topic = new E().writeString("topic").writeEncoderArray([partition, inner, partition]);
    e.writeInt32(topic.size()).writeEncoder(topic).writeEncoder(new E().writeEncoder(topic));
    // A large buffer another encoder gave out, written as bytes; then more after reading.
    e.writeBytes(topic.buffer).writeInt32(topic.size());
    const first = e.buffer;
    e.writeInt8(5).writeEncoder(partition);
    return Buffer.concat([first, e.buffer, Buffer.from(String(e.size()))]);
  };

  test("writes the same bytes as kafkajs's own encoder, whatever the reused memory held", () => {
    // Dirty the allocator's memory so an unwritten byte would not happen to be zero.
    for (let i = 0; i < 64; i++) Buffer.allocUnsafe(1 << (i % 16)).fill(0xa5);
    const expected = write(Original);
    expect(expected.length).toBeGreaterThan(200_000);
    expect(write(Unzeroed).equals(expected)).toBe(true);
  });

  test("a large nested encoder is taken by reference, and copied once when the bytes are asked for", () => {
    const big = new Unzeroed();
    for (let i = 0; i < 3000; i++) big.writeVarIntString(`record-${i}`);
    const outer = new Unzeroed().writeInt32(1).writeEncoder(big).writeInt16(2);
    const pieces = (outer as unknown as { pieces: Buffer[] }).pieces;
    expect(pieces.some((p) => p.buffer === big.buffer.buffer)).toBe(true); // big's own memory, not a copy
    expect(outer.size()).toBe(4 + big.size() + 2);
    expect(outer.buffer.length).toBe(outer.size());
    expect((outer as unknown as { pieces: Buffer[] }).pieces).toEqual([]);
  });

  test("kafkajs's protocol uses it", () => {
    expect(require("kafkajs/src/protocol/encoder.js")).toBe(Encoder);
  });
});

describe("decoding a fetched record with numbers (kafkajs fix)", () => {
  const recordPath = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/decoder.js");
  // kafkajs's own decoder, loaded once more past the installed fix.
  const installed = require.cache[recordPath];
  delete require.cache[recordPath];
  const original = require(recordPath) as typeof decodeRecord;
  require.cache[recordPath] = installed;
  const Decoder = require("kafkajs/src/protocol/decoder.js") as new (b: Buffer) => Parameters<typeof decodeRecord>[0];
  const encodeRecord = require("kafkajs/src/protocol/recordBatch/record/v0/index.js") as (r: {
    offsetDelta: number;
    timestampDelta: number | string;
    key: Buffer | null;
    value: Buffer | null;
    headers?: Record<string, string | string[]>;
  }) => { buffer: Buffer };
  const LongType = require("kafkajs/src/utils/long.js") as { fromValue(v: string): unknown };

  /** The record's body as kafkajs's batch decoder hands it to the record decoder. */
  const body = (r: Parameters<typeof encodeRecord>[0]) => new Decoder(new Decoder(encodeRecord(r).buffer).readVarIntBytes() as unknown as Buffer);

  test("gives the record kafkajs's own decoder gives: offsets, timestamps (small, negative, beyond 2^53), keys, values, headers", () => {
    const records: Parameters<typeof encodeRecord>[0][] = [
      { offsetDelta: 0, timestampDelta: 0, key: Buffer.from("car-1"), value: Buffer.from('{"partId":"p"}') },
      { offsetDelta: 7, timestampDelta: 12, key: null, value: Buffer.from("v"), headers: { "rccar-origin": "2:41", "rccar-key": "k" } },
      { offsetDelta: 300, timestampDelta: -5, key: Buffer.from([]), value: null, headers: { twice: ["a", "b"], thrice: ["x", "y", "z"] } },
      { offsetDelta: 1, timestampDelta: 2 ** 45, key: Buffer.from("k"), value: Buffer.from("v") },
      { offsetDelta: 2, timestampDelta: LongType.fromValue("9007199254740993") as unknown as string, key: Buffer.from("k"), value: Buffer.from("v") },
    ];
    const contexts = [
      { firstOffset: "0", firstTimestamp: "1764000000000", magicByte: 2, timestampType: 0 },
      { firstOffset: "9007199254740990", firstTimestamp: "-1", magicByte: 2, isControlBatch: true, timestampType: 0 },
      { firstOffset: "41", firstTimestamp: "1764000000000", magicByte: 2, timestampType: 1, maxTimestamp: "1764000000999" },
    ];
    let compared = 0;
    for (const r of records)
      for (const ctx of contexts) {
        const mine = decodeRecord(body(r), ctx);
        const theirs = original(body(r), ctx);
        expect(mine).toEqual(theirs);
        expect(typeof mine.offset).toBe("string");
        compared++;
      }
    expect(compared).toBe(15);
    // Past 2^53 the sum is kafkajs's Long, not a rounded number.
    expect(decodeRecord(body(records[0]!), contexts[1]!).offset).toBe("9007199254740990");
    expect(decodeRecord(body(records[1]!), contexts[1]!).offset).toBe("9007199254740997");
  });

  test("kafkajs's batch decoder uses it", () => {
    expect(require(recordPath)).toBe(decodeRecord);
  });
});
