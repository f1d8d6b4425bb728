// kafkajs's log, routed through the project's logger. kafkajs logs at ERROR many conditions it
// then retries itself (CONCURRENT_TRANSACTIONS while a transaction's partitions are added, a
// coordinator moving, a leader election, a connection dropped by a broker restart): those are
// debug lines here, counted by condition and summarised in one info line at most once per
// interval. What kafkajs does not recover from is one warn or error line that says so.
import { createRequire } from "node:module";
import { logLevel as KafkaLevel, type logCreator, type LogEntry } from "kafkajs";
import { currentLogger, type Logger, type LogLevel } from "./log.ts";

export interface KafkaProtocolError {
  type: string;
  code: number;
  retriable: boolean;
  message: string;
}

/** kafkajs's own table of Kafka protocol errors and whether it retries each (protocol/error.js). */
const PROTOCOL_ERRORS: readonly KafkaProtocolError[] = (createRequire(import.meta.url)("kafkajs/src/protocol/error.js") as { errorCodes: KafkaProtocolError[] })
  .errorCodes;

/**
 * Conditions kafkajs reports at WARN/ERROR and then handles itself, with the protocol error
 * they come from where there is one: its message says what it does (re-join, restart, refresh).
 * Some are flagged non-retriable in the protocol table (REBALANCE_IN_PROGRESS,
 * UNKNOWN_MEMBER_ID) yet kafkajs's consumer handles them by re-joining.
 */
const HANDLED: ReadonlyArray<[prefix: string, condition: string]> = [
  ["The group is rebalancing, re-joining", "REBALANCE_IN_PROGRESS"],
  ["The coordinator is not aware of this member, re-joining the group", "UNKNOWN_MEMBER_ID"],
  ["Restarting the consumer in", "CONSUMER_RESTART"],
  ["Consumer is not aware of all assigned partitions, refreshing metadata", "METADATA_REFRESH"],
  ["Failed to connect to broker, reconnecting", "CONNECTION"],
];

/**
 * Advice kafkajs gives at WARN about a choice the project made knowingly: producers retry 8
 * times (createKafka) and a producer whose retries run out throws to its caller (the engine
 * aborts the transaction and rebuilds; the generator fails), so nothing is silently doubled.
 */
const ADVICE: readonly string[] = ["Limiting retries for the idempotent producer may invalidate EoS guarantees"];

/** Transport conditions: kafkajs reconnects and retries the request. */
const CONNECTION =
  /Connection error|Connection timeout|Closed connection|Not connected|ECONNREFUSED|ECONNRESET|EPIPE|socket|Request .* timed out|KafkaJSConnection|KafkaJSRequestTimeoutError/i;

export type KafkaLogVerdict =
  /** Retried or handled by kafkajs: debug, and counted under `condition` when `count`. */
  | { kind: "retried"; condition: string; count: boolean }
  /** Not recovered by kafkajs: one line at this level. */
  | { kind: "failure"; level: LogLevel; text: string }
  /** kafkajs's INFO and DEBUG chatter: debug. */
  | { kind: "chatter" };

/**
 * Judges one kafkajs log entry. Pure. Each protocol error response is logged first by the
 * Connection namespace (`Response ApiName(...)`, once per response) and then, sometimes, by the
 * layer that retries it: only the first is counted, so counts are error responses by type.
 */
export function judgeKafkaLog(entry: { namespace: string; level: KafkaLevel; message: string; error?: unknown }): KafkaLogVerdict {
  if (entry.level !== KafkaLevel.ERROR && entry.level !== KafkaLevel.WARN) return { kind: "chatter" };
  const error = entry.error === undefined ? "" : String(entry.error);
  const text = error && !entry.message.includes(error) ? `${entry.message}: ${error}` : entry.message;
  const atConnection = entry.namespace === "Connection";
  const level: LogLevel = entry.level === KafkaLevel.ERROR ? "error" : "warn";

  if (ADVICE.includes(entry.message)) return { kind: "chatter" };
  if (entry.message.startsWith("Crash: ")) {
    // kafkajs restarts a consumer whose crash was retries running out or a retriable cause.
    const restarts =
      /KafkaJSNumberOfRetriesExceeded/.test(entry.message) || protocolErrorIn(entry.message)?.retriable === true || CONNECTION.test(entry.message);
    return restarts
      ? { kind: "failure", level: "warn", text: `consumer crashed, kafkajs restarts it: ${entry.message.slice(7)}` }
      : { kind: "failure", level: "error", text: `consumer crashed and kafkajs does not restart it: ${entry.message.slice(7)}` };
  }
  for (const [prefix, condition] of HANDLED) if (entry.message.startsWith(prefix)) return { kind: "retried", condition, count: true };

  const protocol = protocolErrorIn(text);
  if (protocol) {
    // The layer that sent the request retries it or throws it to its caller, who reports it.
    if (atConnection && entry.message.startsWith("Response "))
      return protocol.retriable ? { kind: "retried", condition: protocol.type, count: true } : { kind: "chatter" };
    if (protocol.retriable) return { kind: "retried", condition: protocol.type, count: false };
    return { kind: "failure", level, text: `${entry.namespace.toLowerCase()}: ${text} (${protocol.type}, not retried)` };
  }
  if (CONNECTION.test(text)) return { kind: "retried", condition: "CONNECTION", count: atConnection };
  return { kind: "failure", level, text: `${entry.namespace.toLowerCase()}: ${text}` };
}

function protocolErrorIn(text: string): KafkaProtocolError | undefined {
  return PROTOCOL_ERRORS.find((e) => text.includes(e.message));
}

/**
 * Retried kafkajs conditions by name, for /metrics and a summary line at most once per
 * interval (the first one interval after the start: a short healthy run shows none).
 */
export class KafkaLogStats {
  private readonly total = new Map<string, number>();
  private sinceSummary = new Map<string, number>();
  private lastSummaryAt: number;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.lastSummaryAt = now();
  }

  /** Counts one occurrence; `report` gets the summary line when it is due, even if nothing more happens. */
  count(condition: string, report?: (line: string) => void): void {
    this.total.set(condition, (this.total.get(condition) ?? 0) + 1);
    this.sinceSummary.set(condition, (this.sinceSummary.get(condition) ?? 0) + 1);
    if (!report || this.timer !== undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.lastSummaryAt = this.now();
        const line = this.takeSummary();
        if (line) report(line);
      },
      Math.max(0, this.lastSummaryAt + this.intervalMs - this.now()),
    );
    // Never what keeps a program alive.
    this.timer.unref?.();
  }

  /** Every condition counted since the process started. */
  counts(): Map<string, number> {
    return new Map(this.total);
  }

  /** The counts since the last call, as one line; undefined when there were none. */
  takeSummary(): string | undefined {
    if (this.sinceSummary.size === 0) return undefined;
    const parts = [...this.sinceSummary].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ×${n}`);
    this.sinceSummary = new Map();
    return `retried transient conditions (kafkajs handles them; LOG_LEVEL=debug shows each): ${parts.join(", ")}`;
  }
}

const processStats = new KafkaLogStats();

/** The process's counts: every Kafka client created without stats of its own adds to them. */
export function kafkaLogStats(): KafkaLogStats {
  return processStats;
}

export interface KafkaLogOptions {
  logger?: Logger;
  stats?: KafkaLogStats;
}

/** kafkajs's level to ask for: what the logger can show, never kafkajs's per-request DEBUG. */
export function kafkaLevelFor(logger: Logger): KafkaLevel {
  return logger.enabled("debug") ? KafkaLevel.INFO : KafkaLevel.WARN;
}

/** A kafkajs logCreator writing through `logger` (default: the process's logger at the time of each line). */
export function kafkaLogCreator(opts: KafkaLogOptions = {}): logCreator {
  const stats = opts.stats ?? processStats;
  return () => (entry: LogEntry) => {
    const logger = (opts.logger ?? currentLogger()).child("kafka");
    const { message, error, ...rest } = entry.log as LogEntry["log"] & { error?: unknown };
    // kafkajs's root logger writes without a namespace.
    const verdict = judgeKafkaLog({ namespace: entry.namespace || "kafkajs", level: entry.level, message, error });
    if (verdict.kind === "failure") {
      logger.log(verdict.level, verdict.text, definedOnly({ client: rest.clientId, broker: rest.broker, groupId: rest.groupId }));
      return;
    }
    if (verdict.kind === "chatter") {
      logger.debug(`${entry.namespace}: ${message}`, error === undefined ? undefined : { error });
      return;
    }
    logger.debug(`${entry.namespace}: ${message} (${verdict.condition}, retried)`, error === undefined ? undefined : { error });
    if (verdict.count) stats.count(verdict.condition, (line) => logger.info(line));
  };
}

function definedOnly(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}
