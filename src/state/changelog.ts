// The engine's state in Kafka: a compacted changelog topic, partitioned like the inputs. Key
// `j/<carId>` holds a car's join state (open window, recently emitted partIds); key
// `p/<carId>/<firstPartAt>` holds a car waiting for prices; `o/<topic>` a lane's committed
// position (src/engine/lane-position.ts); `h/<role index>/<source partition>` the highest
// origin offset a repartition lane took from that source. A null value deletes the entry.
// Entries are written in the same transaction as the outputs and input offsets they go with.
import { createRequire } from "node:module";
import type { Kafka } from "kafkajs";
import { CommittedFilter, readBatches, type AbortedTransaction, type Inflate } from "./record-batches.ts";

export type ChangelogKey =
  | { kind: "join"; carId: string }
  | { kind: "price"; carId: string; firstPartAt: number }
  | { kind: "position"; topic: string }
  | { kind: "hopSeen"; role: number; source: number };

export function joinKey(carId: string): string {
  return `j/${carId}`;
}

export function priceKey(carId: string, firstPartAt: number): string {
  return `p/${carId}/${firstPartAt}`;
}

/** A lane's position, kept in the changelog as well as with the group's offsets (lane-position.ts says why). */
export function positionKey(topic: string): string {
  return `o/${topic}`;
}

/** The highest origin offset partition `source` re-keyed to this partition's role lane (task.ts: duplicate guard). */
export function hopSeenKey(role: number, source: number): string {
  return `h/${role}/${source}`;
}

export function parseKey(key: string): ChangelogKey | undefined {
  if (key.startsWith("h/")) {
    const [role, source] = key.slice(2).split("/").map(Number);
    if (Number.isInteger(role) && Number.isInteger(source)) return { kind: "hopSeen", role: role!, source: source! };
  }
  if (key.startsWith("j/")) return { kind: "join", carId: key.slice(2) };
  if (key.startsWith("o/")) return { kind: "position", topic: key.slice(2) };
  if (key.startsWith("p/")) {
    const slash = key.lastIndexOf("/");
    const firstPartAt = Number(key.slice(slash + 1));
    if (slash > 2 && Number.isFinite(firstPartAt)) return { kind: "price", carId: key.slice(2, slash), firstPartAt };
  }
  return undefined;
}

export interface RestoredPartition {
  partition: number;
  /**
   * The latest committed value of every live key (tombstoned keys are absent). Values are
   * views into the fetched responses: they hold those buffers until dropped.
   */
  entries: Map<string, Buffer>;
  /** Committed records read (every version of every key, tombstones included). */
  records: number;
}

export interface RestoreOptions {
  /** Give up (throw) when the end is not reached by then. */
  timeoutMs?: number;
  /** Bytes asked for per fetch of one partition (tests make it small to cut transactions across fetches). */
  fetchBytes?: number;
}

/**
 * Reads the given changelog partitions from the beginning to their end and returns the
 * latest committed value per key. The caller has already opened the partition's
 * transactional producer, which aborted any transaction a dead predecessor left open, so the
 * last stable offset is the end of the log.
 *
 * Kafka Streams restores with a consumer assigned to the partitions (no group). kafkajs has
 * no assign(), and a consumer group costs a join/sync round (plus the broker's
 * group.initial.rebalance.delay.ms, 3 s by default, for a new group) and fetches at most
 * 1 MiB per partition. So this sends Fetch requests (v11, read_committed, no fetch session)
 * straight to each partition's leader through kafkajs's own connections, one loop per
 * partition, and reads the raw record batches itself (record-batches.ts): aborted
 * transactions and control records are skipped as the Java consumer skips them, and the
 * position always moves past whole batches (also empty or aborted ones). A partition is done
 * when its position reaches the last stable offset of the latest response.
 */
export async function restorePartitions(
  kafka: Kafka,
  topic: string,
  partitions: readonly number[],
  options: RestoreOptions = {},
): Promise<RestoredPartition[]> {
  if (partitions.length === 0) return [];
  const cluster = clusterOf(kafka);
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const fetchBytes = options.fetchBytes ?? FETCH_BYTES;
  await cluster.connect();
  try {
    await cluster.addTargetTopic(topic);
    return await Promise.all(partitions.map((p) => restorePartition(cluster, topic, p, fetchBytes, deadline)));
  } finally {
    await cluster.disconnect().catch(() => {});
  }
}

/** Bytes asked for per partition and per response: few round trips, and well under the broker's fetch.max.bytes (55 MiB). */
const FETCH_BYTES = 16 * 1024 * 1024;
const RETRY_MS = 100;

async function restorePartition(cluster: Cluster, topic: string, partition: number, fetchBytes: number, deadline: number): Promise<RestoredPartition> {
  const restored: RestoredPartition = { partition, entries: new Map(), records: 0 };
  const { entries } = restored;
  const visit = {
    record(_offset: number, key: Buffer | null, value: Buffer | null) {
      if (key === null) return;
      restored.records++;
      const k = key.toString("utf8");
      if (value === null) entries.delete(k);
      else entries.set(k, value);
    },
  };
  let position = 0;
  for (;;) {
    let response: FetchedPartition;
    try {
      response = await fetchPartition(cluster, topic, partition, position, fetchBytes);
      // A leader that moved, a partition not yet loaded: retriable; anything else is not.
      if (response.errorCode !== 0 && response.errorCode !== OFFSET_OUT_OF_RANGE) throw protocolError(response.errorCode);
    } catch (e) {
      if (!isRetriable(e) || Date.now() + RETRY_MS > deadline)
        throw new Error(`restoring ${topic} partition ${partition} at offset ${position}: ${(e as Error).message}`);
      await Bun.sleep(RETRY_MS);
      await cluster.refreshMetadata().catch(() => {});
      continue;
    }
    if (response.errorCode === OFFSET_OUT_OF_RANGE) {
      // The log's start moved on (records deleted by retention): begin at its start. (Past
      // the end cannot happen: reading starts at 0 and stops at the end.)
      const start = await logStart(cluster, topic, partition);
      if (start <= position) throw new Error(`restoring ${topic} partition ${partition}: offset ${position} out of range (log start ${start})`);
      position = start;
      continue;
    }
    position = await readBatches(response.records, position, new CommittedFilter(response.aborted), visit, inflate);
    if (position >= response.lastStableOffset) return restored;
    if (Date.now() > deadline)
      throw new Error(`restoring ${topic} partition ${partition} did not reach the end (offset ${response.lastStableOffset}, at ${position}) in time`);
  }
}

async function logStart(cluster: Cluster, topic: string, partition: number): Promise<number> {
  const [offsets] = await cluster.fetchTopicsOffset([{ topic, partitions: [{ partition }], fromBeginning: true }]);
  return Number(offsets?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
}

// ---- Fetch v11 through kafkajs's connections ----------------------------------------------

interface FetchedPartition {
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  aborted: AbortedTransaction[];
  records: Buffer;
}

/** The parts of kafkajs's (untyped, internal) Cluster and Broker this module uses. */
interface Cluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(b: { nodeId: string }): Promise<Broker>;
  fetchTopicsOffset(
    topics: Array<{ topic: string; partitions: Array<{ partition: number }>; fromBeginning: boolean }>,
  ): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
}
interface Broker {
  versions: Record<number, { minVersion: number; maxVersion: number }>;
  connectionPool: { send(request: unknown): Promise<unknown> };
}

const require = createRequire(import.meta.url);
const fetchRequestV11 = require("kafkajs/src/protocol/requests/fetch/v11/request.js") as (r: unknown) => unknown;
const { createErrorFromCode } = require("kafkajs/src/protocol/error.js") as { createErrorFromCode(code: number): Error & { retriable: boolean } };
const { lookupCodecByAttributes } = require("kafkajs/src/protocol/message/compression/index.js") as {
  lookupCodecByAttributes(attributes: number): { decompress(b: Buffer): Promise<Buffer> } | null;
};

const FETCH_API = 1;
const FETCH_VERSION = 11;
const READ_COMMITTED = 1;
const OFFSET_OUT_OF_RANGE = 1;

/**
 * The Kafka client's own cluster (same brokers, TLS, SASL, retries): kafkajs builds one per
 * consumer, producer and admin from a private factory on the client.
 */
function clusterOf(kafka: Kafka): Cluster {
  const factory = Object.getOwnPropertySymbols(kafka).find((s) => s.description === "private:Kafka:createCluster");
  const create = factory && (kafka as unknown as Record<symbol, unknown>)[factory];
  if (typeof create !== "function") throw new Error("changelog restore: this kafkajs version has no cluster factory on the client (expected kafkajs 2.x)");
  return create({ metadataMaxAge: 300_000, allowAutoTopicCreation: false, isolationLevel: READ_COMMITTED }) as Cluster;
}

async function fetchPartition(cluster: Cluster, topic: string, partition: number, offset: number, fetchBytes: number): Promise<FetchedPartition> {
  const leader = cluster.findLeaderForPartitions(topic, [partition]);
  const nodeId = Object.keys(leader)[0];
  if (nodeId === undefined) throw Object.assign(new Error(`no leader known for ${topic} partition ${partition}`), { retriable: true });
  const broker = await cluster.findBroker({ nodeId });
  const supported = broker.versions[FETCH_API];
  if (!supported || supported.minVersion > FETCH_VERSION || supported.maxVersion < FETCH_VERSION) {
    throw new Error(`changelog restore needs Fetch v${FETCH_VERSION}; broker ${nodeId} supports v${supported?.minVersion}-v${supported?.maxVersion}`);
  }
  const request = fetchRequestV11({
    replicaId: -1,
    isolationLevel: READ_COMMITTED,
    // Only partitions with data below their last stable offset are fetched: never wait.
    maxWaitTime: 0,
    minBytes: 1,
    maxBytes: fetchBytes,
    topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: fetchBytes }] }],
  });
  const raw = (await broker.connectionPool.send({ request, response: rawResponse, requestTimeout: 30_000 })) as Buffer;
  return parseFetchResponse(raw, topic, partition);
}

/** kafkajs hands the response body to decode() then parse(); both keep the bytes as they are. */
const rawResponse = {
  decode: async (payload: Buffer) => payload,
  parse: async (payload: Buffer) => payload,
};

/**
 * Fetch response v11: throttle_time_ms error_code session_id [topic [partition error_code
 * high_watermark last_stable_offset log_start_offset [producer_id first_offset]
 * preferred_read_replica records]].
 */
function parseFetchResponse(b: Buffer, topic: string, partition: number): FetchedPartition {
  let at = 4;
  const errorCode = b.readInt16BE(at);
  at += 2 + 4;
  if (errorCode !== 0) throw protocolError(errorCode);
  const topics = b.readInt32BE(at);
  at += 4;
  for (let t = 0; t < topics; t++) {
    const nameLength = b.readInt16BE(at);
    const name = b.toString("utf8", at + 2, at + 2 + nameLength);
    at += 2 + nameLength;
    const count = b.readInt32BE(at);
    at += 4;
    for (let p = 0; p < count; p++) {
      const id = b.readInt32BE(at);
      const errorCode = b.readInt16BE(at + 4);
      const highWatermark = Number(b.readBigInt64BE(at + 6));
      const lastStableOffset = Number(b.readBigInt64BE(at + 14));
      const logStartOffset = Number(b.readBigInt64BE(at + 22));
      at += 30;
      const abortedCount = b.readInt32BE(at);
      at += 4;
      const aborted: AbortedTransaction[] = [];
      for (let a = 0; a < abortedCount; a++, at += 16) aborted.push({ producerId: b.readBigInt64BE(at), firstOffset: Number(b.readBigInt64BE(at + 8)) });
      at += 4; // preferred read replica
      const size = b.readInt32BE(at);
      at += 4;
      const records = size < 0 ? Buffer.alloc(0) : b.subarray(at, at + size);
      at += Math.max(0, size);
      if (name === topic && id === partition) return { errorCode, highWatermark, lastStableOffset, logStartOffset, aborted, records };
    }
  }
  throw Object.assign(new Error(`fetch response without ${topic} partition ${partition}`), { retriable: true });
}

const inflate: Inflate = async (attributes, records) => {
  const codec = lookupCodecByAttributes(attributes);
  if (!codec) throw new Error(`changelog: record batch compressed with codec ${attributes & 7}, which kafkajs has no codec registered for`);
  return codec.decompress(records);
};

function protocolError(code: number): Error & { retriable: boolean } {
  return createErrorFromCode(code);
}

function isRetriable(e: unknown): boolean {
  const err = e as { retriable?: boolean; name?: string };
  return (
    err?.retriable === true ||
    err?.name === "KafkaJSConnectionError" ||
    err?.name === "KafkaJSRequestTimeoutError" ||
    err?.name === "KafkaJSConnectionClosedError"
  );
}
