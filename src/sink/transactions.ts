// Exactly-once sink of one input partition ("task", as Kafka Streams' EOS-v1 calls it): one
// transactional producer per input partition with a transactional id derived from the group
// and the partition. Whoever processes partition p next (this process after a crash, or
// another instance after a rebalance) initialises the same id and so fences the previous
// owner: its open transaction is aborted and its later commits fail.
import type { Kafka, Message, Producer } from "kafkajs";
import { murmur2Partitioner } from "../kafka.ts";

export interface OutRecord {
  topic: string;
  /** Explicit partition (changelog records go to the input partition they belong to). */
  partition?: number;
  key: string | null;
  value: Buffer | string | null;
  /** Event time to write (a re-keyed record keeps its original); the producer's clock otherwise. */
  timestamp?: string;
  headers?: Record<string, string | Buffer>;
  /** What the record is (a car's situation, DEAD_LETTER), for metrics only; not written. */
  situation?: string;
}

export interface ConsumedOffset {
  topic: string;
  partition: number;
  /** The next offset to read, as Kafka commits it. */
  offset: string;
  /** Committed with the offset, read back by the next owner (as Kafka Streams keeps a task's stream time there). */
  metadata?: string;
}

export class FencedError extends Error {}

/** A transaction refused with CONCURRENT_TRANSACTIONS and aborted: nothing of it committed. */
class ConcurrentTransactionError extends Error {
  constructor(override readonly cause: unknown) {
    super(String((cause as Error)?.message ?? cause));
  }
}

const CONCURRENT_RETRIES = 5;
const CONCURRENT_BACKOFF_MS = 50;

/**
 * How long open() may take. Fencing is one InitProducerId round (kafkajs retries it while the
 * coordinator loads); once, right after a broker restart, it never answered and the engine
 * sat in open() for minutes with no error. Past this the caller gets an error and rebuilds.
 */
const OPEN_TIMEOUT_MS = 30_000;
/** How long one transaction may take (kafkajs retries a broken connection for up to ~50 s). */
const COMMIT_TIMEOUT_MS = 30_000;
const CLOSE_TIMEOUT_MS = 5_000;

export class PartitionSink {
  private producer: Producer | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly transactionalId: string,
    private readonly groupId: string,
  ) {}

  /**
   * Connects and initialises the transactional id: this is the fencing moment. It returns
   * only once the coordinator has finished any transaction a previous owner left (committed
   * or aborted), so the changelog and committed offsets read afterwards are final.
   */
  async open(): Promise<void> {
    const producer = this.kafka.producer({
      transactionalId: this.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60_000,
      createPartitioner: murmur2Partitioner,
    });
    const opening = (async () => {
      await producer.connect();
      // kafkajs's connect() does not send the transactional id (it initialises a plain
      // idempotent producer); only the first transaction() does. Begin and abort an empty one
      // (no EndTxn is sent for it) to run InitProducerId now.
      const tx = await producer.transaction();
      await tx.abort();
    })();
    try {
      await bounded(opening, OPEN_TIMEOUT_MS, `opening transactional id ${this.transactionalId}`);
    } catch (e) {
      // Whenever the abandoned attempt settles, its connections go; the next open() fences it.
      void opening.catch(() => {}).finally(() => producer.disconnect().catch(() => {}));
      throw e;
    }
    this.producer = producer;
  }

  /**
   * Writes the records and commits the consumed offsets in one transaction. On failure the
   * transaction is aborted (or abandoned: the next open() aborts it) and the error rethrown.
   * Its outcome is then unknown (the broker may have committed before the connection broke):
   * the caller rebuilds from what Kafka holds rather than retrying.
   */
  async commit(records: readonly OutRecord[], offsets: readonly ConsumedOffset[]): Promise<void> {
    if (records.length === 0 && offsets.length === 0) return;
    // The coordinator refuses a transaction's partitions while it still writes the markers of
    // the previous one (CONCURRENT_TRANSACTIONS; the Java producer retries it). Refused before
    // EndTxn, nothing of this one committed: abort it and send it again.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.commitOnce(records, offsets);
      } catch (e) {
        if (!(e instanceof ConcurrentTransactionError) || attempt >= CONCURRENT_RETRIES) throw e instanceof ConcurrentTransactionError ? e.cause : e;
        await Bun.sleep(CONCURRENT_BACKOFF_MS * attempt);
      }
    }
  }

  private async commitOnce(records: readonly OutRecord[], offsets: readonly ConsumedOffset[]): Promise<void> {
    const producer = this.producer;
    if (!producer) throw new Error(`sink ${this.transactionalId} is not open`);
    const tx = await producer.transaction();
    // Only an error before EndTxn leaves a known outcome once aborted. EndTxn itself may have
    // committed before its answer was lost (kafkajs retries it, and a retry can then meet
    // CONCURRENT_TRANSACTIONS): sending the records again would commit them twice.
    let ending = false;
    try {
      const writing = (async () => {
        for (const topicMessages of sendRounds(records)) await tx.sendBatch({ acks: -1, topicMessages });
        if (offsets.length > 0) {
          const topics = new Map<string, { partition: number; offset: string; metadata?: string }[]>();
          for (const o of offsets) topics.set(o.topic, [...(topics.get(o.topic) ?? []), { partition: o.partition, offset: o.offset, metadata: o.metadata }]);
          await tx.sendOffsets({ consumerGroupId: this.groupId, topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) });
        }
        ending = true;
        await tx.commit();
      })();
      // A commit that takes this long is treated as failed (outcome unknown): the caller
      // rebuilds from Kafka, and the next open() of this id fences the abandoned attempt.
      await bounded(writing, COMMIT_TIMEOUT_MS, `transaction of ${this.transactionalId}`);
    } catch (e) {
      const aborted = await bounded(tx.abort(), CLOSE_TIMEOUT_MS, "abort").then(
        () => true,
        () => false,
      );
      if (isFenced(e)) throw new FencedError(`${this.transactionalId} was fenced by a newer owner: ${(e as Error).message}`);
      if (aborted && !ending && isConcurrentTransactions(e)) throw new ConcurrentTransactionError(e);
      throw e;
    }
  }

  /** Disconnects (bounded: after a broker restart a disconnect can hang; the next open() fences whatever is left). */
  async close(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (p) await bounded(p.disconnect(), CLOSE_TIMEOUT_MS, `closing ${this.transactionalId}`).catch(() => {});
  }
}

/**
 * kafkajs writes all of a partition's messages in one record batch, and the broker refuses a
 * batch over max.message.bytes (1 MB by default). Split each topic's records into chunks of
 * at most MAX_CHUNK_BYTES and send one chunk per topic per request. (Chunks were also capped
 * at 256 messages while kafkajs grouped a send's messages in quadratic time; src/kafkajs-fix.ts
 * groups them in one pass, so a tick's records now take as few round trips as their bytes allow.)
 */
const MAX_CHUNK_BYTES = 512 * 1024;

function sendRounds(records: readonly OutRecord[]): { topic: string; messages: Message[] }[][] {
  const chunks = new Map<string, { bytes: number; messages: Message[] }[]>();
  for (const r of records) {
    const size = (r.key?.length ?? 0) + (r.value?.length ?? 0) + 64;
    const list = chunks.get(r.topic) ?? [];
    let last = list[list.length - 1];
    if (!last || (last.bytes + size > MAX_CHUNK_BYTES && last.messages.length > 0)) {
      last = { bytes: 0, messages: [] };
      list.push(last);
    }
    last.bytes += size;
    const message: Message = { key: r.key, value: r.value };
    if (r.partition !== undefined) message.partition = r.partition;
    if (r.timestamp !== undefined) message.timestamp = r.timestamp;
    if (r.headers !== undefined) message.headers = r.headers;
    last.messages.push(message);
    chunks.set(r.topic, list);
  }
  const rounds: { topic: string; messages: Message[] }[][] = [];
  for (const [topic, list] of chunks) list.forEach((c, i) => (rounds[i] ??= []).push({ topic, messages: c.messages }));
  return rounds;
}

function isConcurrentTransactions(e: unknown): boolean {
  const type = (e as { type?: string }).type ?? "";
  return type === "CONCURRENT_TRANSACTIONS" || /concurrent operation on the same transaction/i.test(String((e as Error)?.message ?? ""));
}

function isFenced(e: unknown): boolean {
  const type = (e as { type?: string }).type ?? "";
  return type === "INVALID_PRODUCER_EPOCH" || type === "PRODUCER_FENCED" || /fenced|epoch/i.test(String((e as Error).message));
}

/** Rejects when `work` has not settled within `ms`; the work itself goes on, its result unused. */
async function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
