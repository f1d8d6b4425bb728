// One partition's share of a tick in a join worker, pure (no thread, no I/O): decode each
// record, join it, close windows up to the watermark, and write each touched carId's last
// state once. A carId that had no live changelog entry when the step began and ends deleted
// in it writes nothing (README, Exactly once: "Join state written per car").
// The module itself, not ingest's index: this runs in the join workers, which must not load
// the consumer (kafkajs) that the index also exports.
import { decodePart } from "../ingest/decode.ts";
import type { InputRole } from "../domain.ts";
import type { UnpackedRecord } from "./batch.ts";
import { encodeCarState } from "./codec.ts";
import type { JoinOutput } from "./protocol.ts";
import type { CarState, JoinEffect, JoinShard } from "./shard.ts";

export interface StepOptions {
  maxPartBytes: number;
  /** Input topic names by role: what a dead letter's source names. */
  topics: Record<InputRole, string>;
}

/** Appends the step's outputs to `outputs`; returns nothing else. */
export function joinStep(
  shard: JoinShard,
  partition: number,
  records: Iterable<UnpackedRecord>,
  watermark: number,
  options: StepOptions,
  outputs: JoinOutput[],
): void {
  const states = new Map<string, CarState | null>();
  // carIds the shard held at their first touch in this step. The shard holds a carId exactly
  // while its changelog entry is live (every change writes it; a restored one was read from
  // it), so these are the carIds "written before".
  const written = new Set<string>();
  const collect = (effects: JoinEffect[]) => {
    for (const e of effects) {
      if (e.type === "emit") outputs.push({ type: "emit", partition, car: e.car });
      else if (e.type === "deadLetter") outputs.push({ type: "deadLetter", partition, source: e.source, reason: e.reason });
      else states.set(e.carId, e.state);
    }
  };
  for (const r of records) {
    const source = { topic: options.topics[r.role], partition, offset: r.offset };
    const decoded = decodePart(r.role, r.key, r.value, options.maxPartBytes);
    if (decoded.ok) {
      const carId = decoded.part.carId;
      if (!states.has(carId) && shard.holds(carId)) written.add(carId);
      collect(shard.onPart(decoded.part, decoded.kind, r.timestamp, source));
    } else {
      outputs.push({ type: "deadLetter", partition, source, reason: decoded.reason });
    }
  }
  // The watermark touches only carIds the shard holds; one created in this step was touched
  // by its part first (opening a window always writes a state), so a first touch here means
  // the carId was held when the step began.
  const closing = shard.onWatermark(watermark);
  for (const e of closing) if (e.type === "state" && !states.has(e.carId)) written.add(e.carId);
  collect(closing);
  for (const [carId, state] of states) {
    if (state === null && !written.has(carId)) continue;
    outputs.push({ type: "state", partition, carId, value: state === null ? null : encodeCarState(state) });
  }
}
