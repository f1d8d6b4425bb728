// kafkajs 2.2.4 handed over records of aborted transactions as committed when several
// producers' aborted transactions began before a fetch's first record (src/kafkajs-fix.ts).
import { describe, expect, test } from "bun:test";
import { createRequire } from "node:module";
import { filterAbortedMessages } from "../src/kafkajs-fix.ts";

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
