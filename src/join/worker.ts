// A join worker thread: owns the keyed state (a JoinShard per input partition) of the shards
// the pool's load balancer routes to it. Tasks run one at a time, in the order posted.
import { workerData } from "piscina";
import { JoinShard, type CarState, type JoinEffect } from "./shard.ts";
import { decodeCarState, encodeCarState } from "../state/codec.ts";
import type { JoinOutput, JoinTask, JoinTaskResult } from "./protocol.ts";

const options = workerData as { joinTimeoutMs: number; dedupRetentionMs: number };
const shards = new Map<number, JoinShard>();

function shardFor(partition: number): JoinShard {
  let s = shards.get(partition);
  if (!s) {
    s = new JoinShard({ joinTimeoutMs: options.joinTimeoutMs, dedupRetentionMs: options.dedupRetentionMs });
    shards.set(partition, s);
  }
  return s;
}

function openCars(): number {
  let n = 0;
  for (const s of shards.values()) n += s.openCars();
  return n;
}

export default function run(task: JoinTask): JoinTaskResult {
  const outputs: JoinOutput[] = [];
  switch (task.op) {
    case "process":
      for (const { partition, parts, watermark } of task.items) {
        const shard = shardFor(partition);
        // Only a car's last state in this task goes to the changelog: encode it once.
        const states = new Map<string, CarState | null>();
        const collect = (effects: JoinEffect[]) => {
          for (const e of effects) {
            if (e.type === "emit") outputs.push({ type: "emit", partition, car: e.car });
            else if (e.type === "deadLetter") outputs.push({ type: "deadLetter", partition, source: e.source, reason: e.reason, part: e.part });
            else states.set(e.carId, e.state);
          }
        };
        for (const p of parts) collect(shard.onPart(p.part, p.kind, p.timestamp, p.source));
        collect(shard.onWatermark(watermark));
        for (const [carId, state] of states) outputs.push({ type: "state", partition, carId, value: state === null ? null : encodeCarState(state) });
      }
      break;
    case "restore": {
      const shard = shardFor(task.partition);
      for (const [carId, bytes] of task.entries) shard.restore(carId, decodeCarState(bytes));
      break;
    }
    case "drop":
      shards.delete(task.partition);
      break;
    case "stats":
      break;
  }
  return { outputs, openCars: openCars() };
}
