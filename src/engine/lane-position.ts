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
