// The one place that reads process.env and command-line flags. Every setting is declared
// once with its default, its allowed values and a line of documentation; a bad value stops
// the program at start with one line naming the setting and what is allowed.

export interface Setting<T> {
  /** Environment variable name, e.g. PRICE_MAX_IN_FLIGHT. Also reachable as a flag (--price-max-in-flight). */
  name: string;
  doc: string;
  default: T;
  /** Human-readable allowed values, used in the error line. */
  allowed: string;
  parse(raw: string): T | undefined;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export type SettingsSpec = Record<string, Setting<unknown>>;
export type Settings<S extends SettingsSpec> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

export interface ConfigSource {
  env: Record<string, string | undefined>;
  argv: readonly string[];
}

export function processSource(): ConfigSource {
  return { env: process.env, argv: process.argv.slice(2) };
}

import { FAULT_TABLE_FORMAT, parseFaultTable, type FaultTable } from "./price-api/index.ts";

// ---- setting constructors -------------------------------------------------------------

export function int(name: string, def: number, min: number, max: number, doc: string): Setting<number> {
  return {
    name,
    doc,
    default: def,
    allowed: `an integer in ${min}..${max}`,
    parse: (raw) => {
      if (!/^-?\d+$/.test(raw.trim())) return undefined;
      const n = Number(raw);
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
    },
  };
}

export function num(name: string, def: number, min: number, max: number, doc: string): Setting<number> {
  return {
    name,
    doc,
    default: def,
    allowed: `a number in ${min}..${max}`,
    parse: (raw) => {
      if (raw.trim() === "") return undefined;
      const n = Number(raw);
      return Number.isFinite(n) && n >= min && n <= max ? n : undefined;
    },
  };
}

/** A money amount with at most two decimals (whole cents), e.g. 100000.00. */
export function amount(name: string, def: number, min: number, max: number, doc: string): Setting<number> {
  return {
    name,
    doc,
    default: def,
    allowed: `an amount in ${min}..${max} with at most two decimals`,
    parse: (raw) => {
      if (!/^\d+(\.\d{1,2})?$/.test(raw.trim())) return undefined;
      const n = Number(raw);
      return n >= min && n <= max ? n : undefined;
    },
  };
}

export function faultTable(name: string, doc: string): Setting<FaultTable> {
  return { name, doc, default: {}, allowed: FAULT_TABLE_FORMAT, parse: parseFaultTable };
}

export function str(name: string, def: string, doc: string, pattern = /^[\w.\-:/@]*$/): Setting<string> {
  return {
    name,
    doc,
    default: def,
    allowed: `text matching ${pattern}`,
    parse: (raw) => (pattern.test(raw) ? raw : undefined),
  };
}

export function oneOf<T extends string>(name: string, def: T, values: readonly T[], doc: string): Setting<T> {
  return {
    name,
    doc,
    default: def,
    allowed: `one of ${values.join(", ")}`,
    // Case does not matter (LOG_LEVEL=DEBUG); the value is the canonical spelling.
    parse: (raw) => values.find((v) => v.toLowerCase() === raw.trim().toLowerCase()),
  };
}

export function bool(name: string, def: boolean, doc: string): Setting<boolean> {
  return {
    name,
    doc,
    default: def,
    allowed: "true or false",
    parse: (raw) => (raw === "true" || raw === "1" ? true : raw === "false" || raw === "0" ? false : undefined),
  };
}

export function hostPorts(name: string, def: string[], doc: string): Setting<string[]> {
  return {
    name,
    doc,
    default: def,
    allowed: "a comma-separated list of host:port",
    parse: (raw) => {
      const list = raw
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const ok = list.length > 0 && list.every((hp) => /^[\w.\-]+:\d{1,5}$/.test(hp) || /^\[[\da-fA-F:]+\]:\d{1,5}$/.test(hp));
      return ok ? list : undefined;
    },
  };
}

export function url(name: string, def: string, doc: string): Setting<string> {
  return {
    name,
    doc,
    default: def,
    allowed: "an http:// or https:// URL",
    parse: (raw) => {
      try {
        const u = new URL(raw);
        return u.protocol === "http:" || u.protocol === "https:" ? raw.replace(/\/+$/, "") : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

// ---- loading ---------------------------------------------------------------------------

export function flagOf(name: string): string {
  return `--${name.toLowerCase().replace(/_/g, "-")}`;
}

/**
 * Reads every setting of `spec` from flags (highest precedence) and the environment.
 * Flags not in `spec` are refused, so a typo never silently falls back to a default.
 */
export function loadSettings<S extends SettingsSpec>(spec: S, source: ConfigSource = processSource()): Settings<S> {
  const byFlag = new Map<string, string>();
  for (const [key, setting] of Object.entries(spec)) byFlag.set(flagOf(setting.name), key);
  const fromFlags = new Map<string, string>();
  const argv = source.argv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") continue;
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (key === undefined) {
      const known = [...byFlag.keys()].join(" ");
      throw new ConfigError(`unknown argument ${arg}: allowed flags are ${known || "none"}`);
    }
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : argv[i + 1];
    if (eq < 0) {
      const setting = spec[key]!;
      // A boolean flag given alone means true.
      if (typeof setting.default === "boolean" && (value === undefined || value.startsWith("--"))) value = "true";
      else i++;
    }
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    fromFlags.set(key, value);
  }
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(spec)) {
    const raw = fromFlags.get(key) ?? source.env[setting.name];
    if (raw === undefined || raw === "") {
      out[key] = setting.default;
      continue;
    }
    const value = setting.parse(raw);
    if (value === undefined) throw new ConfigError(`${setting.name}=${JSON.stringify(raw)} is invalid: must be ${setting.allowed}`);
    out[key] = value;
  }
  return out as Settings<S>;
}

/** Loads settings for a command-line program; on a bad setting prints one line and exits 2. */
export function loadOrExit<S extends SettingsSpec>(spec: S, source: ConfigSource = processSource()): Settings<S> {
  try {
    return loadSettings(spec, source);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`configuration error: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
}

/** Checks a relation between settings that a single setting cannot express. */
export function requireThat(ok: boolean, message: string): void {
  if (!ok) throw new ConfigError(message);
}

// ---- the settings of each program ------------------------------------------------------

/** Every program's logging (src/log.ts); read from the environment only, beside each program's own flags. */
export const logSpec = {
  level: oneOf("LOG_LEVEL", "info", ["debug", "info", "warn", "error"] as const, "lines below this level are dropped (debug shows retried Kafka conditions)"),
  format: oneOf("LOG_FORMAT", "text", ["text", "json"] as const, "text lines, or one JSON object per line for log shippers"),
};
export type LogSettings = Settings<typeof logSpec>;

export const kafkaSpec = {
  brokers: hostPorts("KAFKA_BROKERS", ["127.0.0.1:9092"], "Kafka bootstrap servers"),
  topicPrefix: str("TOPIC_PREFIX", "", "prefix added to every topic name (several runs can share a broker)"),
  inputPartitions: int("INPUT_PARTITIONS", 4, 1, 1024, "partitions of each input topic when the project creates them"),
  outputPartitions: int("OUTPUT_PARTITIONS", 4, 1, 1024, "partitions of each output topic when the project creates them"),
  topicBody: str("TOPIC_BODY", "rccar-body", "input topic of bodies"),
  topicEngine: str("TOPIC_ENGINE", "rccar-engine", "input topic of engines"),
  topicRemoteControl: str("TOPIC_REMOTE_CONTROL", "rccar-remote-control", "input topic of remote controls"),
  topicWheel: str("TOPIC_WHEEL", "rccar-wheel", "input topic of wheels"),
  topicCompleted: str("TOPIC_COMPLETED", "rccar-completed", "output topic of priced cars"),
  topicIncomplete: str("TOPIC_INCOMPLETE", "rccar-incomplete", "output topic of every other car"),
  topicDlq: str("TOPIC_DLQ", "rccar-dlq", "dead-letter topic"),
  topicChangelog: str("TOPIC_CHANGELOG", "rccar-assembler-changelog", "compacted changelog of engine state"),
};
export type KafkaSettings = Settings<typeof kafkaSpec>;

/** True when the user pointed at a cluster of their own: then the project starts no broker. */
export function kafkaBrokersGiven(source: ConfigSource = processSource()): boolean {
  return (source.env.KAFKA_BROKERS ?? "").trim() !== "";
}

export interface Topics {
  body: string;
  engine: string;
  remoteControl: string;
  wheel: string;
  completed: string;
  incomplete: string;
  dlq: string;
  changelog: string;
}

export function topicsOf(k: KafkaSettings): Topics {
  const p = k.topicPrefix;
  return {
    body: p + k.topicBody,
    engine: p + k.topicEngine,
    remoteControl: p + k.topicRemoteControl,
    wheel: p + k.topicWheel,
    completed: p + k.topicCompleted,
    incomplete: p + k.topicIncomplete,
    dlq: p + k.topicDlq,
    changelog: p + k.topicChangelog,
  };
}

/**
 * The repartition topic of each input topic (SPEC §9), named from the consumer group as Kafka
 * Streams names its internal topics (`<application.id>-<name>-repartition`), with TOPIC_PREFIX
 * in front like every other topic.
 */
export function repartitionTopicsOf(k: KafkaSettings, groupId: string): Record<"body" | "engine" | "remoteControl" | "wheel", string> {
  const name = (topic: string) => `${k.topicPrefix}${groupId}-${topic}-repartition`;
  return { body: name(k.topicBody), engine: name(k.topicEngine), remoteControl: name(k.topicRemoteControl), wheel: name(k.topicWheel) };
}

/** Apache Kafka releases the local broker can run, newest first (each has its pom in src/local/). */
export const KAFKA_VERSIONS = ["4.4.0", "3.9.1"] as const;
export type KafkaVersion = (typeof KAFKA_VERSIONS)[number];

export const localBrokerSpec = {
  version: oneOf<KafkaVersion>("KAFKA_VERSION", KAFKA_VERSIONS[0], KAFKA_VERSIONS, "Apache Kafka release of the local broker"),
  port: int("KAFKA_PORT", 9092, 1, 65535, "port of the local broker (127.0.0.1)"),
  controllerPort: int("KAFKA_CONTROLLER_PORT", 9093, 1, 65535, "KRaft controller port of the local broker"),
  dataDir: str("KAFKA_DATA_DIR", "", "where the local broker keeps its jars, logs and pid (default .local/kafka-<KAFKA_VERSION>)"),
  heap: str("KAFKA_HEAP", "1g", "JVM heap of the local broker", /^\d+[mg]$/),
};
export type LocalBrokerSettings = Settings<typeof localBrokerSpec>;

export const priceApiSpec = {
  port: int("PORT", 8080, 0, 65535, "port of the mock price API"),
  delayMinMs: int("DELAY_MIN_MS", 0, 0, 600000, "shortest delay before a price is answered"),
  delayMaxMs: int("DELAY_MAX_MS", 800, 0, 600000, "longest delay before a price is answered"),
  failRate: num("FAIL_RATE", 0, 0, 1, "fraction of requests answered HTTP 503"),
  hangRate: num("HANG_RATE", 0, 0, 1, "fraction of requests never answered"),
  maxConcurrency: int("MAX_CONCURRENCY", 5, 1, 100000, "requests admitted at once; more get 429"),
  faults: faultTable("FAULTS", "per-SKU unusable answers, e.g. SKU-1=negative,SKU-2=html (tests of SPEC §5)"),
};
export type PriceApiSettings = Settings<typeof priceApiSpec>;

export function loadPriceApiSettings(source?: ConfigSource): PriceApiSettings {
  const s = loadSettings(priceApiSpec, source);
  requireThat(s.delayMinMs <= s.delayMaxMs, `DELAY_MIN_MS=${s.delayMinMs} must be <= DELAY_MAX_MS=${s.delayMaxMs}`);
  requireThat(s.failRate + s.hangRate <= 1, `FAIL_RATE + HANG_RATE must be <= 1 (got ${s.failRate + s.hangRate})`);
  return s;
}

/** The engine's MAX_CLOCK_SKEW_MS default (SPEC §3); also the broker-side guard of the input topics the project creates. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000;

export const engineSpec = {
  groupId: str("GROUP_ID", "rccar-assembler", "consumer group of the engine instances"),
  instanceId: str("INSTANCE_ID", "", "this instance's name in logs and client ids (default: host-pid)"),
  joinTimeoutMs: int("JOIN_TIMEOUT_MS", 5000, 1, 3_600_000, "how long a car's window stays open after its first part (event time)"),
  dedupRetentionMs: int("DEDUP_RETENTION_MS", 60000, 0, 86_400_000, "how long an emitted car's partIds are remembered to absorb redeliveries (event time)"),
  idleGraceMs: int("IDLE_GRACE_MS", 500, 0, 60_000, "a caught-up partition's watermark trails the last fetch by this much (producer-to-log latency allowance)"),
  maxPartBytes: int("MAX_PART_BYTES", 65536, 64, 10_485_760, "largest accepted part value; larger ones are dead-lettered"),
  workers: int("WORKERS", 2, 1, 64, "join worker threads"),
  shards: int("SHARDS", 16, 1, 4096, "fixed number of carId hash shards spread over the workers"),
  sessionTimeoutMs: int("SESSION_TIMEOUT_MS", 6000, 1000, 300_000, "consumer group session: a killed instance's partitions move after this long"),
  commitIntervalMs: int("COMMIT_INTERVAL_MS", 50, 5, 10_000, "how often processed input, outputs and state commit in one Kafka transaction"),
  maxWatermarkDriftMs: int(
    "MAX_WATERMARK_DRIFT_MS",
    10_000,
    100,
    86_400_000,
    "how far (event time) a partition may read ahead of the slowest one while parts wait for the repartition hop",
  ),
  maxBufferedRecords: int("MAX_BUFFERED_RECORDS", 5000, 100, 10_000_000, "records buffered per input topic-partition before its fetching pauses"),
  maxWaitingParts: int(
    "MAX_WAITING_PARTS",
    20_000,
    10,
    10_000_000,
    "parts of one input partition waiting for its safe time before it stops handing over more (unless the safe time waits for it)",
  ),
  maxClockSkewMs: int(
    "MAX_CLOCK_SKEW_MS",
    DEFAULT_MAX_CLOCK_SKEW_MS,
    0,
    86_400_000,
    "a record stamped further ahead of the engine's clock when read is a FUTURE_TIMESTAMP dead letter",
  ),
  stallTimeoutMs: int("STALL_TIMEOUT_MS", 30000, 100, 3_600_000, "/health is not ok while a partition has input waiting and made no progress for this long"),
  priceApiUrl: url("PRICE_API_URL", "http://127.0.0.1:8080", "base URL of the price API"),
  priceMaxInFlight: int("PRICE_MAX_IN_FLIGHT", 5, 1, 1000, "price requests open at once"),
  priceRatePerS: num("PRICE_RATE_PER_S", 1000, 0.1, 1_000_000, "token bucket: price requests per second"),
  priceBurst: int("PRICE_BURST", 20, 1, 100_000, "token bucket: burst size"),
  priceRequestTimeoutMs: int("PRICE_REQUEST_TIMEOUT_MS", 2000, 10, 600_000, "a price request that takes longer is aborted and retried"),
  priceDeadlineMs: int("PRICE_DEADLINE_MS", 30000, 100, 3_600_000, "a car not priced by then ends FAILED_GET_PRICE"),
  priceCacheTtlMs: int("PRICE_CACHE_TTL_MS", 0, 0, 86_400_000, "reuse a price this long (0 = off: every car gets a price requested after it began waiting)"),
  priceRetryBaseMs: int("PRICE_RETRY_BASE_MS", 100, 1, 60_000, "first retry backoff (exponential, with jitter)"),
  priceRetryMaxMs: int("PRICE_RETRY_MAX_MS", 5000, 1, 600_000, "largest retry backoff"),
  // At most 1e12: seven parts at the maximum stay exact integers of cents (< 2^53).
  priceMaxAmount: amount("PRICE_MAX_AMOUNT", 100_000, 0.01, 1_000_000_000_000, "a price above this is not a price: the car ends FAILED_GET_PRICE"),
  priceMaxWaitingCars: int(
    "PRICE_MAX_WAITING_CARS",
    10000,
    1,
    10_000_000,
    "the most cars waiting for prices; consumption pauses when the next cars would not fit (backpressure)",
  ),
  httpPort: int("HTTP_PORT", 8090, 0, 65535, "port of /metrics, /health and /ready"),
};
export type EngineSettings = Settings<typeof engineSpec>;

export function loadEngineSettings(source?: ConfigSource): { engine: EngineSettings; kafka: KafkaSettings } {
  const src = source ?? processSource();
  // Flags belong to the engine; the kafka block is read from the environment only.
  const engine = loadSettings(engineSpec, src);
  const kafka = loadSettings(kafkaSpec, { env: src.env, argv: [] });
  requireThat(
    engine.priceRetryBaseMs <= engine.priceRetryMaxMs,
    `PRICE_RETRY_BASE_MS=${engine.priceRetryBaseMs} must be <= PRICE_RETRY_MAX_MS=${engine.priceRetryMaxMs}`,
  );
  requireThat(engine.shards >= engine.workers, `SHARDS=${engine.shards} must be >= WORKERS=${engine.workers}`);
  return { engine, kafka };
}

// ---- generator (bun run generate) --------------------------------------------------------

/**
 * How the generator keys valid parts (SPEC §2, §9): by carId (the direct path), by the part's own
 * id (as the original Flink pipeline's producers do), with no key, or a per-record mix of the three.
 */
export const KEY_BY = ["carId", "partId", "none", "mixed"] as const;
export type KeyBy = (typeof KEY_BY)[number];

export const generatorSpec = {
  cars: int("CARS", 1000, 0, 50_000_000, "cars to generate"),
  seed: int("SEED", 1, 0, 4_294_967_295, "seed of the generator's randomness: same seed and options, same records"),
  skus: int("SKUS", 20, 1, 1_000_000, "catalog SKUs per part kind"),
  distinctSkus: bool("DISTINCT_SKUS", false, "give every part a SKU of its own (no price sharing)"),
  missingBody: num("MISSING_BODY", 0, 0, 1, "probability that a car has no body"),
  missingEngine: num("MISSING_ENGINE", 0, 0, 1, "probability that a car has no engine"),
  missingRemote: num("MISSING_REMOTE", 0, 0, 1, "probability that a car has no remote control"),
  missingWheels: num("MISSING_WHEELS", 0, 0, 1, "probability that a car lacks 1-4 wheels"),
  lateRate: num("LATE_RATE", 0, 0, 1, "fraction of cars with one part sent after the window closed"),
  dupRate: num("DUP_RATE", 0, 0, 1, "fraction of cars with one part delivered twice"),
  conflictRate: num("CONFLICT_RATE", 0, 0, 1, "fraction of cars with a second part for a filled slot"),
  malformedRate: num("MALFORMED_RATE", 0, 0, 1, "fraction of cars with one malformed record"),
  keyBy: oneOf<KeyBy>(
    "KEY_BY",
    "carId",
    KEY_BY,
    "record keys: carId, partId, none (no key), or mixed (each record picks one); malformed records are keyed the same way",
  ),
  futureStamped: int(
    "FUTURE_STAMPED",
    0,
    0,
    50_000_000,
    "valid parts stamped FUTURE_AHEAD_MS ahead of the wall clock (a producer with a wrong clock), one per car, on random cars",
  ),
  futureAheadMs: int("FUTURE_AHEAD_MS", 86_400_000, 1, 315_360_000_000, "how far ahead of the wall clock FUTURE_STAMPED parts are stamped"),
  badTimestamp: int(
    "BAD_TIMESTAMP",
    0,
    0,
    50_000_000,
    "valid parts with a negative timestamp (-1, Kafka's NO_TIMESTAMP, and -1000), one per car, on random cars",
  ),
  extraFieldRate: num("EXTRA_FIELD_RATE", 0.05, 0, 1, "fraction of parts with an unknown extra field (must pass through)"),
  interleave: int("INTERLEAVE", 32, 1, 1_000_000, "cars in progress at once"),
  rate: num("RATE", 0, 0, 10_000_000, "cars per second (0 = as fast as possible)"),
  batchSize: int("BATCH_SIZE", 1000, 1, 100_000, "records per produce request"),
  manifest: str("MANIFEST", "manifest.json", "where the manifest of expected outputs is written"),
  // The next four are the engine's settings of the same names: both sides must agree.
  maxClockSkewMs: int(
    "MAX_CLOCK_SKEW_MS",
    DEFAULT_MAX_CLOCK_SKEW_MS,
    0,
    86_400_000,
    "records stamped further ahead of the engine's clock are FUTURE_TIMESTAMP dead letters",
  ),
  joinTimeoutMs: int("JOIN_TIMEOUT_MS", 5000, 1000, 3_600_000, "how long a car's window stays open after its first part (event time)"),
  dedupRetentionMs: int("DEDUP_RETENTION_MS", 60000, 0, 86_400_000, "how long an emitted car's partIds absorb redeliveries (event time)"),
  maxPartBytes: int("MAX_PART_BYTES", 65536, 256, 900_000, "largest valid part value; OVERSIZED records are just above it"),
};
export type GeneratorSettings = Settings<typeof generatorSpec>;

/** A future-stamped part must still be future when a live engine reads it: this much later than it was sent. */
export const FUTURE_READ_ALLOWANCE_MS = 60_000;

/** Relations between generator settings that a single setting cannot express. */
export function checkGeneratorSettings(s: Pick<GeneratorSettings, "cars" | "futureStamped" | "badTimestamp" | "futureAheadMs" | "maxClockSkewMs">): void {
  requireThat(
    s.futureStamped + s.badTimestamp <= s.cars,
    `FUTURE_STAMPED=${s.futureStamped} + BAD_TIMESTAMP=${s.badTimestamp} must be <= CARS=${s.cars} (one such part per car)`,
  );
  if (s.futureStamped > 0) {
    requireThat(
      s.futureAheadMs >= s.maxClockSkewMs + FUTURE_READ_ALLOWANCE_MS,
      `FUTURE_AHEAD_MS=${s.futureAheadMs} must be >= MAX_CLOCK_SKEW_MS + ${FUTURE_READ_ALLOWANCE_MS} = ${s.maxClockSkewMs + FUTURE_READ_ALLOWANCE_MS}, or a live engine may accept the part`,
    );
  }
}

// ---- verifier (bun run verify) ----------------------------------------------------------

export const verifierSpec = {
  manifest: str("MANIFEST", "manifest.json", "the generator's manifest of expected outputs"),
  quietMs: int("QUIET_MS", 5000, 0, 3_600_000, "stop reading once caught up and nothing new came for this long"),
  timeoutMs: int("TIMEOUT_MS", 120_000, 1000, 86_400_000, "stop reading after this long in any case"),
  allowFailedPrice: bool("ALLOW_FAILED_PRICE", false, "an expected COMPLETED car may instead be FAILED_GET_PRICE (chaos runs with a failing price API)"),
};
export type VerifierSettings = Settings<typeof verifierSpec>;

// ---- demo (bun run demo) -----------------------------------------------------------------

export const demoSpec = {
  cars: int("CARS", 5000, 1, 10_000_000, "cars the demo generates"),
  seed: int("SEED", 42, 0, 4_294_967_295, "generator seed"),
  rate: num("RATE", 0, 0, 10_000_000, "cars per second (0 = as fast as possible)"),
};

// ---- bench (bun run bench) ---------------------------------------------------------------

export const benchSpec = {
  parts: str("BENCH_PARTS", "micro,e2e,latency,pricing,memory,restore", "which benchmarks to run", /^[a-z0-9,]+$/),
  cars: int("BENCH_CARS", 100_000, 100, 10_000_000, "cars preloaded for the end-to-end throughput run"),
  workers: str("BENCH_WORKERS", "1,2,4", "worker counts of the end-to-end runs", /^\d+(,\d+)*$/),
  keyBy: str(
    "BENCH_KEY_BY",
    "carId,partId",
    "keyings of the end-to-end runs, each on its own backlog of the same cars (carId is the baseline the others are divided by)",
    /^(carId|partId|none|mixed)(,(carId|partId|none|mixed))*$/,
  ),
  latencyRates: str(
    "BENCH_LATENCY_RATES",
    "1000,500,250,2000",
    "cars per second of the latency runs (the first is judged against the target; all give the knee)",
    /^\d+(,\d+)*$/,
  ),
  latencySeconds: int("BENCH_LATENCY_SECONDS", 30, 5, 3600, "length of each latency run"),
  latencyIdleGraces: str(
    "BENCH_LATENCY_IDLE_GRACES",
    "100",
    "IDLE_GRACE_MS values of extra latency runs at the first rate (every part waits that long for the safe time; empty: none)",
    /^(\d+(,\d+)*)?$/,
  ),
  pricingSeconds: int("BENCH_PRICING_SECONDS", 30, 5, 3600, "length of each pricing run"),
  openCars: int("BENCH_OPEN_CARS", 100_000, 1000, 10_000_000, "open cars for the memory run"),
  restoreOpenCars: int("BENCH_RESTORE_OPEN_CARS", 100_000, 100, 10_000_000, "open cars in the changelog of the restore run"),
  restoreWaitingCars: int("BENCH_RESTORE_WAITING_CARS", 10_000, 0, 1_000_000, "cars waiting for prices in the changelog of the restore run"),
};
