// A fix to kafkajs 2.2.4's read_committed filtering, installed before kafkajs is first loaded:
// bunfig.toml preloads this module in every program and in the tests.
//
// kafkajs drops the records of aborted transactions with the fetch response's list of them,
// but it takes at most ONE aborted transaction from the list per record it looks at. When
// several producers' aborted transactions start at or before the first record of a fetch
// (a fetch that starts in the middle of them, or several transactional producers writing to
// one partition: here every task writes markers and re-keyed parts to every repartition
// partition), the others are never taken and their records are handed over as committed. A
// task killed mid-transaction then had its aborted re-keyed parts joined, and read-back checks
// saw them twice. The Java consumer takes every aborted transaction that starts at or before
// the batch being read; so does this.
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

const require = createRequire(import.meta.url);
const path = require.resolve("kafkajs/src/consumer/filterAbortedMessages.js");
const batchPath = require.resolve("kafkajs/src/consumer/batch.js");
// kafkajs's Batch takes the filter when it loads: the fix must be in the module cache first.
if (require.cache[batchPath] !== undefined && require.cache[path]?.exports !== filterAbortedMessages) {
  throw new Error("kafkajs-fix: kafkajs was loaded before its read_committed fix; preload src/kafkajs-fix.ts (bunfig.toml)");
}
require.cache[path] = { id: path, filename: path, loaded: true, exports: filterAbortedMessages, children: [], paths: [] } as unknown as NodeJS.Module;
