// The exactly-once sink: one transactional producer per input partition.
export { FencedError, PartitionSink, type ConsumedOffset, type OutRecord } from "./transactions.ts";
