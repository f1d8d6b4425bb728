// The last dead letters the engine produced, with their reasons, for the status page.
export interface RecentDeadLetter {
  /** Unix milliseconds when the engine routed the record to the dead-letter topic. */
  at: number;
  topic: string;
  partition: number;
  offset: string;
  reason: string;
}

/** A fixed-size ring: pushing is O(1) and memory stays bounded however many records go bad. */
export class RecentDeadLetters {
  private readonly ring: RecentDeadLetter[] = [];
  private next = 0;

  constructor(readonly capacity = 50) {}

  push(entry: RecentDeadLetter): void {
    // A long reason (a whole JSON parse error with the input echoed) must not bloat the page.
    const kept = { ...entry, reason: entry.reason.length > 300 ? `${entry.reason.slice(0, 300)}…` : entry.reason };
    if (this.ring.length < this.capacity) this.ring.push(kept);
    else this.ring[this.next] = kept;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Newest first. */
  list(): RecentDeadLetter[] {
    const n = this.ring.length;
    const out: RecentDeadLetter[] = [];
    for (let i = 1; i <= n; i++) out.push(this.ring[(this.next - i + n * 2) % n]!);
    return out;
  }
}
