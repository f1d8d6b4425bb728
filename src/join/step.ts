// One partition's share of a tick in a join worker, pure (no thread, no I/O):
//  1. decode each record; one that is not a valid part is a dead letter (unless it is read
//     again after a restart: its dead letter was committed then);
//  2. a valid part from a direct lane that does not belong here — its key is not its carId, or
//     its carId belongs to another partition — is handed back to be re-keyed (SPEC §9);
//  3. every other part waits in the partition's SafeTimeBuffer, which lets out, in event-time
//     order, the parts below the safe time; those are joined;
//  4. windows close up to the safe time, and each touched carId's last state is written once.
//     A carId that had no live changelog entry when the step began and ends deleted in it
//     writes nothing (README, Exactly once: "Join state written per car").
// The module itself, not ingest's index: this runs in the join workers, which must not load
// the consumer (kafkajs) that the index also exports.
import { decodePart, keyIsCarId } from "../ingest/decode.ts";
import type { InputRole } from "../domain.ts";
import { INPUT_ROLES, ROLE_INDEX } from "../domain.ts";
import type { UnpackedRecord } from "./batch.ts";
import { slotOf } from "./car.ts";
import { encodeCarState } from "./codec.ts";
import type { JoinOutput, PartitionProgress } from "./protocol.ts";
import { partitionOfKey, partitionOf } from "./route.ts";
import type { PendingPart, SafeTimeBuffer } from "./safe-time.ts";
import type { CarState, JoinEffect, JoinShard } from "./shard.ts";

export interface StepOptions {
  maxPartBytes: number;
  /** Input topic names by role: what a dead letter's source names. */
  topics: Record<InputRole, string>;
  /** Partitions of the input topics. */
  partitions: number;
}

/** A partition's state in one worker: its cars and the parts waiting for the safe time. */
export interface PartitionState {
  shard: JoinShard;
  buffer: SafeTimeBuffer;
}

/** Appends the step's outputs to `outputs`; returns what still waits. */
export function joinStep(
  state: PartitionState,
  partition: number,
  records: Iterable<UnpackedRecord>,
  safeTime: number,
  options: StepOptions,
  outputs: JoinOutput[],
): PartitionProgress {
  const { shard, buffer } = state;
  const taken: PartitionProgress["taken"] = [];
  for (const r of records) {
    const decoded = decodePart(r.role, r.value, options.maxPartBytes);
    if (!decoded.ok) {
      if (!r.replay) outputs.push(deadLetter(partition, r, options, decoded.reason));
      continue;
    }
    const carId = decoded.part.carId;
    if (r.route === "direct") {
      const home = keyIsCarId(r.key, carId) && partitionOfKey(r.key!, options.partitions) === partition;
      if (!home) {
        if (!r.replay) outputs.push({ type: "rekey", partition, lane: r.lane, offset: String(r.offset), carId, to: partitionOf(carId, options.partitions) });
        continue;
      }
    }
    taken.push({ timestamp: r.timestamp, carId, slot: slotOf(decoded.kind, decoded.part) });
    buffer.add({
      part: decoded.part,
      kind: decoded.kind,
      timestamp: r.timestamp,
      roleIndex: ROLE_INDEX[r.role],
      originPartition: r.originPartition,
      originOffset: r.originOffset,
      lane: r.lane,
      laneOffset: r.offset,
      key: r.key,
      value: r.value!,
    });
  }

  const states = new Map<string, CarState | null>();
  // carIds the shard held at their first touch in this step. The shard holds a carId exactly
  // while its changelog entry is live (every change writes it; a restored one was read from
  // it), so these are the carIds "written before".
  const written = new Set<string>();
  // `from`: the part whose effects these are (a conflict's dead letter carries its bytes).
  const collect = (effects: JoinEffect[], from?: PendingPart) => {
    for (const e of effects) {
      if (e.type === "emit") outputs.push({ type: "emit", partition, car: e.car });
      else if (e.type === "deadLetter")
        outputs.push({ type: "deadLetter", partition, source: e.source, reason: e.reason, key: copy(from!.key), value: copy(from!.value) });
      else states.set(e.carId, e.state);
    }
  };
  for (const p of buffer.releaseBefore(safeTime)) {
    const carId = p.part.carId;
    if (!states.has(carId) && shard.holds(carId)) written.add(carId);
    const source = { topic: options.topics[INPUT_ROLES[p.roleIndex]!], partition: p.originPartition, offset: String(p.originOffset) };
    collect(shard.onPart(p.part, p.kind, p.timestamp, source), p);
  }
  // The watermark touches only carIds the shard holds; one created in this step was touched
  // by its part first (opening a window always writes a state), so a first touch here means
  // the carId was held when the step began.
  const closing = shard.onWatermark(safeTime);
  for (const e of closing) if (e.type === "state" && !states.has(e.carId)) written.add(e.carId);
  collect(closing);
  for (const [carId, state] of states) {
    if (state === null && !written.has(carId)) continue;
    outputs.push({ type: "state", partition, carId, value: state === null ? null : encodeCarState(state) });
  }
  // The join budget's view (src/engine/join-budget.ts): the open slots of every car that has
  // parts waiting now and took a part or changed this step; the others' are unchanged.
  const touched: PartitionProgress["touched"] = [];
  const reported = new Set<string>();
  const report = (carId: string) => {
    if (reported.has(carId) || !buffer.holdsPartOf(carId)) return;
    reported.add(carId);
    touched.push({ carId, slots: shard.openSlots(carId) });
  };
  for (const t of taken) report(t.carId);
  for (const carId of states.keys()) report(carId);
  return { partition, lowestPending: buffer.lowestPending(), pending: buffer.size, taken, touched };
}

function deadLetter(partition: number, r: UnpackedRecord, options: StepOptions, reason: string): JoinOutput {
  const source = { topic: options.topics[r.role], partition: r.originPartition, offset: String(r.originOffset) };
  return { type: "deadLetter", partition, source, reason, key: copy(r.key), value: copy(r.value) };
}

/** Dead letters leave by structured clone, which would copy a view's whole batch buffer: copy just the bytes. */
function copy(bytes: Uint8Array | null): Uint8Array | null {
  return bytes === null ? null : bytes.slice();
}
