// The source survives a consumer crash that kafkajs does not restart itself (a non-retriable
// error, e.g. "Failed to find group coordinator" while the broker restarts): it gives up its
// partitions and joins again with a new consumer, which reads from the committed offsets.
// Real broker; the crash is provoked by a listener that throws a non-retriable error once.
import { afterEach, expect, test } from "bun:test";
import { KafkaJSNonRetriableError } from "kafkajs";
import { createKafka } from "../src/kafka.ts";
import { repartitionTopicsOf } from "../src/config.ts";
import { Logger } from "../src/log.ts";
import { InputSource } from "../src/ingest/source.ts";
import { freshTopics } from "./support/kafka.ts";
import { until } from "./support/stack.ts";

let source: InputSource | undefined;
afterEach(async () => {
  await source?.stop();
  source = undefined;
});

test("a consumer crash kafkajs would not restart: partitions are given up, then taken again and read from the committed offsets", async () => {
  const { settings, topics } = await freshTopics("source-crash", {}, { groupId: "group" });
  // kafkajs's own account of the crash goes to this test's logger, not to the run's output.
  const kafkaLines: string[] = [];
  const kafka = createKafka(settings, "test-source-crash", { logger: new Logger({ level: "info", format: "text", write: (l) => kafkaLines.push(l) }) });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: topics.body, messages: Array.from({ length: 10 }, (_, i) => ({ key: `car-${i}`, value: `v${i}`, partition: 0 })) });
  await producer.disconnect();

  const assignments: number[][] = [];
  const delivered: string[] = [];
  const logs: string[] = [];
  let thrown = false;
  source = new InputSource(
    kafka,
    { groupId: `${settings.topicPrefix}group`, topics, repartition: repartitionTopicsOf(settings, "group"), probeIntervalMs: 50, log: (l) => logs.push(l) },
    {
      onRecords: (_role, _partition, messages) => {
        if (!thrown) {
          thrown = true;
          throw new KafkaJSNonRetriableError("the listener broke");
        }
        for (const m of messages) delivered.push(String(m.value));
      },
      onCaughtUp: () => {},
      onAssignment: (partitions) => assignments.push(partitions),
    },
  );
  await source.start();
  // Without the replacement the consumer stays down and nothing is ever delivered.
  const givenUpThenOwned = () => {
    const gaveUp = assignments.findIndex((a) => a.length === 0);
    return gaveUp >= 0 && assignments.slice(gaveUp + 1).some((a) => a.length > 0);
  };
  expect(await until(() => delivered.length >= 10 && givenUpThenOwned(), 60_000)).toBe(true);
  expect(thrown).toBe(true);
  expect(delivered.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
  expect(logs.some((l) => l.includes("consumer crashed"))).toBe(true);
  // kafkajs does not restart such a crash itself: one error line says so.
  expect(kafkaLines.filter((l) => /ERROR .*consumer crashed and kafkajs does not restart it/.test(l))).toHaveLength(1);
  // Given up at the crash (possibly before the first assignment was reported), owned again.
  expect(assignments.at(-1)!.length).toBeGreaterThan(0);
  expect(source.assignedPartitions()).toEqual(assignments.at(-1)!);
}, 90_000);
