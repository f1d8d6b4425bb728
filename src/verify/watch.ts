// Watches the car output topics as a live read_committed consumer and notes when each car
// became visible: latency = visible − the event time the car could leave the join (its last
// part when complete, its window's end when not).
import type { Consumer } from "kafkajs";
import type { KafkaSettings, Topics } from "../config.ts";
import type { Car } from "../domain.ts";
import type { Manifest } from "../generate/index.ts";
import { createKafka } from "../kafka.ts";

export interface LatencySummary {
  cars: number;
  p50: number;
  p99: number;
  max: number;
}

export class OutputWatcher {
  private readonly visibleAt = new Map<string, number>();
  private consumer: Consumer | undefined;

  constructor(
    private readonly kafka: KafkaSettings,
    private readonly topics: Topics,
  ) {}

  /** Resolves once the consumer has joined its group (so nothing it should see is missed). */
  async start(): Promise<void> {
    const consumer = createKafka(this.kafka, "rccar-watch").consumer({
      groupId: `rccar-watch-${crypto.randomUUID()}`,
      readUncommitted: false,
      maxWaitTimeInMs: 50,
    });
    this.consumer = consumer;
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topics.completed, this.topics.incomplete], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        for (const m of batch.messages) {
          const car = JSON.parse(m.value!.toString()) as Car;
          const key = `${car.carId}/${car.firstPartAt}`;
          if (!this.visibleAt.has(key)) this.visibleAt.set(key, now);
        }
      },
    });
    while (!joined) await Bun.sleep(20);
  }

  seen(): number {
    return this.visibleAt.size;
  }

  /** Latency of the manifest's cars, split into complete (priced) and incomplete ones; only cars that could leave the join at or after `since`. */
  latencies(manifest: Manifest, since = Number.NEGATIVE_INFINITY): { completed: LatencySummary; incomplete: LatencySummary } {
    const completed: number[] = [];
    const incomplete: number[] = [];
    for (const c of manifest.cars) {
      if (c.emittedAt < since) continue;
      const at = this.visibleAt.get(`${c.carId}/${c.firstPartAt}`);
      if (at === undefined) continue;
      (c.situation === "COMPLETED" ? completed : incomplete).push(at - c.emittedAt);
    }
    return { completed: summarize(completed), incomplete: summarize(incomplete) };
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

export function summarize(values: number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
  return { cars: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN };
}
