// A join worker thread: owns the keyed state (per input partition, a JoinShard and the parts
// waiting for the safe time) of the shards the pool's load balancer routes to it, and decodes
// the raw records it is handed (so that parsing and validation run in parallel, off the main
// thread). Tasks run one at a time, in the order posted.
import { workerData } from "piscina";
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

/**
 * After a burst of input (a backlog, a restore) the pages that the burst's garbage (cloned
 * batches, encoded states) occupied stay resident until a full collection; JSC's eden
 * collections free the objects but the process keeps the memory: 100,000 open cars held
 * ~330 MB RSS for ~90 MB of live heap (`bun run bench -- --bench-parts memory`). So once a
 * worker has taken GC_AFTER_PARTS parts since its last full collection and a tick brings it
 * nothing, it collects (~40 ms for 50,000 open cars). A steady stream has no idle ticks; a
 * slow one pays one such pause per GC_AFTER_PARTS parts.
 */
const GC_AFTER_PARTS = 20_000;
let partsSinceGc = 0;

function collectAfterIntake(): void {
  partsSinceGc = 0;
  Bun.gc(true);
}

export default function run(task: JoinTask): JoinTaskResult {
  const outputs: JoinOutput[] = [];
  const progress: PartitionProgress[] = [];
  switch (task.op) {
    case "process":
      for (const item of task.items) {
        progress.push(joinStep(stateOf(item.partition), item.partition, unpack(item), item.safeTime, options, outputs));
        partsSinceGc += recordCount(item);
      }
      break;
    case "restore": {
      const shard = stateOf(task.states.partition).shard;
      unpackStates(task.states, (carId, bytes) => shard.restore(carId, decodeCarState(bytes)));
      break;
    }
    case "drop":
      partitions.delete(task.partition);
      break;
    case "stats":
      break;
  }
  const idle = task.op !== "process" || task.items.every((i) => recordCount(i) === 0);
  if (idle && partsSinceGc >= GC_AFTER_PARTS) collectAfterIntake();
  return { outputs, progress, openCars: openCars(), heapUsedBytes: process.memoryUsage().heapUsed };
}
