// The ceiling for this client and broker: consume the four inputs and write every record
// unchanged to one output topic, committing offsets in per-partition transactions every
// 50 ms with the engine's own sink. No decoding, no join, no pricing.
import type { KafkaMessage } from "kafkajs";
import type { KafkaSettings } from "../src/config.ts";
import { topicsOf } from "../src/config.ts";
import { INPUT_ROLES } from "../src/domain.ts";
import { coPartitionedAssigner } from "../src/ingest/assigner.ts";
import { createKafka } from "../src/kafka.ts";
import { PartitionSink, type OutRecord } from "../src/sink/transactions.ts";

/** Seconds to pipe `expectedRecords` records through. */
export async function runPassthrough(kafka: KafkaSettings, expectedRecords: number, progress: (line: string) => void): Promise<number> {
  const topics = topicsOf(kafka);
  const client = createKafka(kafka, "bench-passthrough");
  const groupId = `${kafka.topicPrefix}passthrough-${Date.now()}`;
  const out = `${topics.completed}`;
  const sinks = new Map<number, PartitionSink>();
  const pending = new Map<number, { records: OutRecord[]; offsets: Map<string, string> }>();
  const consumer = client.consumer({
    groupId,
    readUncommitted: false,
    partitionAssigners: [coPartitionedAssigner],
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 1 << 20,
  });
  await consumer.connect();
  for (const role of INPUT_ROLES) await consumer.subscribe({ topic: topics[role], fromBeginning: true });
  const started = Date.now();
  let committed = 0;
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch }) => {
      const p = pending.get(batch.partition) ?? { records: [] as OutRecord[], offsets: new Map<string, string>() };
      pending.set(batch.partition, p);
      for (const m of batch.messages as KafkaMessage[]) p.records.push({ topic: out, key: m.key?.toString() ?? null, value: m.value });
      p.offsets.set(batch.topic, (BigInt(batch.lastOffset()) + 1n).toString());
    },
  });
  while (committed < expectedRecords) {
    await Bun.sleep(50);
    await Promise.all(
      [...pending].map(async ([partition, p]) => {
        if (p.records.length === 0 && p.offsets.size === 0) return;
        let sink = sinks.get(partition);
        if (!sink) {
          sink = new PartitionSink(client, `${groupId}-p${partition}`, groupId);
          await sink.open();
          sinks.set(partition, sink);
        }
        const records = p.records;
        const offsets = [...p.offsets].map(([topic, offset]) => ({ topic, partition, offset }));
        p.records = [];
        p.offsets = new Map();
        await sink.commit(records, offsets);
        committed += records.length;
      }),
    );
    progress(`passthrough: ${committed}/${expectedRecords} records`);
  }
  const seconds = (Date.now() - started) / 1000;
  await consumer.disconnect();
  for (const s of sinks.values()) await s.close();
  return seconds;
}
