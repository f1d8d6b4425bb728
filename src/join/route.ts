// carId → shard → worker. The shard count is fixed by configuration; the same carId always
// lands on the same shard, so one worker sees every part of a car in order.
//
// The hash is FNV-1a over the carId's UTF-8 bytes, so the main thread can route a record by
// its key bytes without decoding them (a valid part's key equals its carId), and a carId
// string read back from the changelog lands on the same shard.

export function shardOfKey(key: Uint8Array, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

export function shardOf(carId: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < carId.length; i++) {
    const c = carId.charCodeAt(i);
    // Beyond ASCII, UTF-16 code units are not the UTF-8 bytes: hash the bytes.
    if (c >= 0x80) return shardOfKey(Buffer.from(carId, "utf8"), shards);
    h ^= c;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

export function workerOfShard(shard: number, workers: number): number {
  return shard % workers;
}
