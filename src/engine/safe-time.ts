// A partition's safe time: the event time below which no part of its cars can still arrive
// (late records aside), whichever lane or partition it comes through. Pure: the task feeds it
// the announcements it reads; nothing here reads a clock or Kafka.
//
// The hop (SPEC §9) has two stages. Stage 1 of partition q releases q's own input records in
// timestamp order (src/ingest/merge.ts) and, at once, either keeps a part (its car is q's) or
// writes it to the repartition topic-partition of its car's partition p. Stage 2 of p joins
// its parts in event-time order once they are below p's safe time (src/join/safe-time.ts).
//
// Rules.
//  1. Announcement. Every transaction of q that moved q's announced watermark A_q writes, after
//     everything else it re-keys, a marker carrying A_q to every partition of every
//     repartition topic (p = q included). Stage 1 releases in timestamp order, so every record
//     q keeps or re-keys later has a timestamp >= A_q = max(largest released − IDLE_GRACE_MS,
//     the idle advance), late records aside (merge.ts: producers may append out of timestamp
//     order by up to the grace). A marker comes after the records it covers in the same
//     topic-partition, and read_committed readers see it only with them.
//  2. Safe time of p = the smallest marker heard, over every (role, source partition): the
//     latest marker read from each of the 4 × N repartition topic-partitions p reads, per
//     source. It covers p's own input too: p's markers to itself bound what p keeps.
//     -Infinity until every (role, source) has announced once. It never goes back (a source
//     that restarts announces lower watermarks again; the highest heard still holds, since a
//     restarted source re-keys again only records it had not re-keyed before, and those lie
//     at or above its last committed announcement).
//  3. Floor and own input. After a restart the safe time starts at the one committed with the
//     offsets (src/engine/lane-position.ts): the parts below it were joined before. It never
//     passes the task's own announced watermark: a restarted task reads again the parts of its
//     own input that were waiting when it stopped, while the markers it wrote before the
//     restart (still in the repartition topics after the committed positions) may already be
//     read again; its watermark, rebuilt from the records it releases, stays below the parts
//     it has not released yet.
//  4. No deadlock: stage 1 never waits for the safe time except by rule 5, so every W_q
//     moves on its own input, and every safe time follows the slowest W_q one transaction
//     plus one fetch behind.
//  5. Alignment (Flink's watermark alignment). A source whose watermark is more than
//     maxDriftMs ahead of the safe time it hears stops releasing records stamped past
//     safe time + maxDriftMs, so parts waiting for a slow partition cannot grow without
//     bound. The source with the lowest watermark is never held (its W_q is not ahead of
//     what it hears once its own markers are read), so some source always moves.
//  6. Bounded stage 2. Rule 5 bounds the waiting parts by event time, which a dense backlog
//     fills with hundreds of thousands of parts (a 100,000-car backlog held ~1.2 GB RSS). So a
//     partition with maxWaitingParts parts waiting also stops releasing, unless its own
//     announced watermark is not above its safe time: then its safe time waits for it (its
//     parts within the grace below its watermark leave only once it releases more), and
//     holding it could hold everyone. The source with the lowest announced watermark is that
//     one once its markers are read, so some source always moves.
export class SafeTime {
  /** heard[role][source]: the highest marker read from that repartition topic-partition, per source. */
  private readonly heard: number[][];
  private value: number;

  constructor(
    roles: number,
    private readonly partitions: number,
    floor = Number.NEGATIVE_INFINITY,
  ) {
    this.heard = Array.from({ length: roles }, () => new Array<number>(partitions).fill(Number.NEGATIVE_INFINITY));
    this.value = floor;
  }

  /** Rule 2: a marker read from role `role`'s repartition topic, written by `source`. */
  hear(role: number, source: number, watermark: number): void {
    if (source < 0 || source >= this.partitions) return;
    const row = this.heard[role]!;
    if (watermark > row[source]!) row[source] = watermark;
  }

  /** The smallest marker heard over every (role, source); -Infinity until all have announced. */
  announced(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const row of this.heard) for (const w of row) if (w < min) min = w;
    return min;
  }

  /** Rules 2 and 3: moves the safe time up to what was heard and the task's own stage-1 watermark, never back. */
  advance(ownWatermark: number): number {
    const a = Math.min(this.announced(), ownWatermark);
    if (a > this.value) this.value = a;
    return this.value;
  }

  /** The (role, source) whose marker holds the safe time back, and its value (-Infinity: never heard). */
  laggard(): { role: number; source: number; watermark: number } | undefined {
    let best: { role: number; source: number; watermark: number } | undefined;
    this.heard.forEach((row, role) =>
      row.forEach((watermark, source) => {
        if (best === undefined || watermark < best.watermark) best = { role, source, watermark };
      }),
    );
    return best;
  }

  get current(): number {
    return this.value;
  }

  /** Rule 6: whether stage 1 stops releasing because `waiting` parts wait for the safe time already. */
  stageTwoFull(waiting: number, maxWaiting: number, ownAnnounced: number): boolean {
    return waiting >= maxWaiting && ownAnnounced > this.value;
  }

  /** Rule 5: the latest timestamp stage 1 may release now, given its own watermark. */
  releaseBound(ownWatermark: number, maxDriftMs: number): number {
    return ownWatermark > this.value ? this.value + maxDriftMs : Number.POSITIVE_INFINITY;
  }
}
