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

/**
 * The input partition a carId belongs to: Kafka's default partitioner (the Java client's
 * murmur2 of the key's UTF-8 bytes, made positive, modulo the partition count). A producer
 * keying by carId with any standard client puts the car's parts there; the repartition hop
 * sends every other record there too.
 */
export function partitionOfKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

export function partitionOf(carId: string, partitions: number): number {
  return partitionOfKey(Buffer.from(carId, "utf8"), partitions);
}

const M = 0x5bd1e995;

/** org.apache.kafka.common.utils.Utils.murmur2, in 32-bit integer arithmetic. */
function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) h = Math.imul(h ^ data[tail]!, M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}
