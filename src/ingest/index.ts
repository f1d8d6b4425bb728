// The source side: the consumer, the timestamp merge of a partition's topics, record decoding.
export { coPartitionedAssigner } from "./assigner.ts";
export { decodePart, type Decoded } from "./decode.ts";
export { PartitionGroup, type LaneStats, type Released, type Timestamped } from "./merge.ts";
export { InputSource, type SourceListener, type SourceOptions } from "./source.ts";
export { validatePart, type Validation } from "./validate.ts";
