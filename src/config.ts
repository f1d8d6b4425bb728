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

export function str(name: string, def: string, doc: string, pattern = /^[\w.\-:/@]*$/): Setting<string> {
  return {
    name,
    doc,
    default: def,
    allowed: `text matching ${pattern}`,
    parse: (raw) => (pattern.test(raw) ? raw : undefined),
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
      const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
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

export const localBrokerSpec = {
  port: int("KAFKA_PORT", 9092, 1, 65535, "port of the local broker (127.0.0.1)"),
  controllerPort: int("KAFKA_CONTROLLER_PORT", 9093, 1, 65535, "KRaft controller port of the local broker"),
  dataDir: str("KAFKA_DATA_DIR", ".local/kafka", "where the local broker keeps its jars, logs and pid"),
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
};
export type PriceApiSettings = Settings<typeof priceApiSpec>;

export function loadPriceApiSettings(source?: ConfigSource): PriceApiSettings {
  const s = loadSettings(priceApiSpec, source);
  requireThat(s.delayMinMs <= s.delayMaxMs, `DELAY_MIN_MS=${s.delayMinMs} must be <= DELAY_MAX_MS=${s.delayMaxMs}`);
  requireThat(s.failRate + s.hangRate <= 1, `FAIL_RATE + HANG_RATE must be <= 1 (got ${s.failRate + s.hangRate})`);
  return s;
}
