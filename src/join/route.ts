// carId → shard → worker. The shard count is fixed by configuration; the same carId always
// lands on the same shard, so one worker sees every part of a car in order.

/** FNV-1a over UTF-16 code units: cheap, stable across processes and threads. */
export function shardOf(carId: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < carId.length; i++) {
    h ^= carId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

export function workerOfShard(shard: number, workers: number): number {
  return shard % workers;
}
