// Keyed join state and its workers. (worker.ts is the Piscina worker's entry, not exported.)
export { JoinPool, type JoinPoolOptions, type TickBatch } from "./pool.ts";
export type { JoinOutput, JoinTaskResult, PartitionProgress, RawRecord, SourceRef, TickRecord } from "./protocol.ts";
export { partitionOf } from "./route.ts";
