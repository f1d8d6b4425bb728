// A join worker thread: owns the keyed state (per input partition, a JoinShard and the parts
// waiting for the safe time) of the shards the pool's load balancer routes to it, and decodes
// the raw records it is handed (so that parsing and validation run in parallel, off the main
// thread). Tasks run one at a time, in the order posted.
import { workerData } from "piscina";
import { CollectionPolicy } from "../gc.ts";
import { JoinShard } from "./shard.ts";
import { joinStep, type PartitionState } from "./step.ts";
import { SafeTimeBuffer } from "./safe-time.ts";
import { LANES } from "../domain.ts";
import { decodeCarState } from "./codec.ts";
import { recordCount, unpack } from "./batch.ts";
import { unpackStates } from "./states-batch.ts";
import type { JoinOutput, JoinTask, JoinTaskResult, JoinWorkerData, PartitionProgress } from "./protocol.ts";

const options = workerData as JoinWorkerData;
const partitions = new Map<number, PartitionState>();

function stateOf(partition: number): PartitionState {
  let s = partitions.get(partition);
  if (!s) {
    s = {
      shard: new JoinShard({ joinTimeoutMs: options.joinTimeoutMs, dedupRetentionMs: options.dedupRetentionMs }),
      buffer: new SafeTimeBuffer(LANES.length),
    };
    partitions.set(partition, s);
  }
  return s;
}

function openCars(): number {
  let n = 0;
  for (const s of partitions.values()) n += s.shard.openCars();
  return n;
}

function waitingParts(): number {
  let n = 0;
  for (const s of partitions.values()) n += s.buffer.size;
  return n;
}

/** Full collections (src/gc.ts): at most every 5 s, after 20,000 parts handed over or joined, or once quiet. */
const collection = new CollectionPolicy(5000, 20_000);

export default function run(task: JoinTask): JoinTaskResult {
  const outputs: JoinOutput[] = [];
  const progress: PartitionProgress[] = [];
  let handed = 0;
  switch (task.op) {
    case "process": {
      const waitingBefore = waitingParts();
      let taken = 0;
      for (const item of task.items) {
        const p = joinStep(stateOf(item.partition), item.partition, unpack(item), item.safeTime, options, outputs);
        progress.push(p);
        handed += recordCount(item);
        taken += p.taken.length;
      }
      // Work: the records handed over, and the parts that left the stage-2 buffer into the join.
      collection.did(handed + waitingBefore + taken - waitingParts());
      break;
    }
    case "restore": {
      const shard = stateOf(task.states.partition).shard;
      unpackStates(task.states, (carId, bytes) => {
        shard.restore(carId, decodeCarState(bytes));
        collection.did(1);
      });
      break;
    }
    case "drop":
      partitions.delete(task.partition);
      break;
    case "stats":
      break;
  }
  // Synchronous: a concurrent collection does not finish in a thread that idles between tasks (src/gc.ts).
  if (collection.due(Date.now(), handed === 0 && waitingParts() === 0)) Bun.gc(true);
  return { outputs, progress, openCars: openCars(), heapUsedBytes: process.memoryUsage().heapUsed };
}
