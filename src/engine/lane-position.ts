// What a task commits per lane (topic-partition), so that its next owner resumes exactly:
// the offset Kafka keeps, and in the offset's metadata string (as Kafka Streams keeps a task's
// stream time there) the position records were handed over up to and the safe time.
//
// Why the offset alone is not enough. A part waits in stage 2 until the safe time passes it
// (src/join/safe-time.ts) while later records of the same lane go on: re-keyed to another
// partition, dead-lettered, or joined (an earlier timestamp). The committed offset must stay at
// the first part still waiting, or a crash would lose it; yet the records after it must not be
// re-keyed or dead-lettered twice, nor joined twice. So a record read again at an offset below
// `handedOver` was handed over before, and by rule 2 of the safe time exactly those below
// `safeTime` were joined:
//  - below handedOver, timestamp < safeTime: done (joined, re-keyed or dead-lettered) → skipped;
//  - below handedOver, timestamp >= safeTime: only a part that was waiting is kept again
//    (the join worker decides, it decodes); a re-keyed or dead-lettered one is skipped;
//  - at or above handedOver: new.
// Offsets committed without metadata (older versions) mean: everything below was done.
//
// The same position is also written to the changelog (key `o/<topic>`), in the same
// transaction, and read from there first. A new owner reads the group's committed offsets
// right after fencing the previous owner, but kafkajs's OffsetFetch (v4) cannot ask for
// stable offsets (KIP-447's require_stable): the coordinator may still answer the offsets
// from before the previous owner's last transaction, whose records are already visible —
// and the new owner then re-keyed parts that transaction had re-keyed (seen in the
// two-instance test). The changelog is read up to its last stable offset, which the fence
// has moved past that transaction.

export interface LanePosition {
  /** The offset Kafka commits: the first record not done (or the next one to read). */
  offset: string;
  /** Records below this offset were handed over before. */
  handedOver: string;
  /** Parts below this event time were joined. */
  safeTime: number;
}

export function encodePosition(handedOver: string, safeTime: number): string {
  return JSON.stringify({ handedOver, safeTime: Number.isFinite(safeTime) ? safeTime : null });
}

/** The changelog value of a lane's position: the offset and the metadata. */
export function encodeStoredPosition(offset: string, metadata: string): string {
  return JSON.stringify({ offset, metadata });
}

/** Reads a changelog position; undefined when it is not one. */
export function decodeStoredPosition(value: Uint8Array): LanePosition | undefined {
  try {
    const v = JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("utf8")) as { offset?: unknown; metadata?: unknown };
    if (typeof v.offset !== "string" || !/^\d+$/.test(v.offset) || typeof v.metadata !== "string") return undefined;
    return decodePosition(v.offset, v.metadata);
  } catch {
    return undefined;
  }
}

/** Reads a committed offset and its metadata; metadata that is absent or not ours means nothing is being replayed. */
export function decodePosition(offset: string, metadata: string | null | undefined): LanePosition {
  const plain: LanePosition = { offset, handedOver: offset, safeTime: Number.NEGATIVE_INFINITY };
  if (!metadata) return plain;
  try {
    const m = JSON.parse(metadata) as { handedOver?: unknown; safeTime?: unknown };
    if (typeof m.handedOver !== "string" || !/^\d+$/.test(m.handedOver)) return plain;
    const safeTime = typeof m.safeTime === "number" ? m.safeTime : Number.NEGATIVE_INFINITY;
    return { offset, handedOver: BigInt(m.handedOver) > BigInt(offset) ? m.handedOver : offset, safeTime };
  } catch {
    return plain;
  }
}
