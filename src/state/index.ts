// The engine's state in Kafka: changelog keys, restore, waiting-car entries.
export { hopSeenKey, joinKey, parseKey, positionKey, priceKey, restorePartitions, type ChangelogKey } from "./changelog.ts";
export { decodeWaitingCar, encodeWaitingCar, type WaitingCar } from "./waiting.ts";
