// The one logger every program writes through: a level (LOG_LEVEL) below which lines are
// dropped, and a format (LOG_FORMAT): text lines as people read them, or one JSON object per
// line for log shippers. Programs set the process's logger at start (startLogging); library
// code that has no logger handed to it (the kafkajs adapter) uses that one.
import { loadOrExit, logSpec, processSource, type ConfigSource, type LogSettings } from "./config.ts";
import { silenceTimeoutNegativeWarning } from "./warnings.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, unknown>;

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Who writes, shown in every line (text: `name: message`; json: "name"). */
  name?: string;
  /** Where a finished line goes (default: stderr, so stdout stays the program's output). */
  write?: (line: string) => void;
  now?: () => number;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class Logger {
  private readonly write: (line: string) => void;
  private readonly now: () => number;

  constructor(readonly options: LoggerOptions) {
    this.write = options.write ?? ((line) => process.stderr.write(`${line}\n`));
    this.now = options.now ?? Date.now;
  }

  get level(): LogLevel {
    return this.options.level;
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.options.level];
  }

  /** The same level, format and output under another name. */
  child(name: string): Logger {
    return new Logger({ ...this.options, name, write: this.write, now: this.now });
  }

  debug(message: string, fields?: LogFields): void {
    this.log("debug", message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.log("info", message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.log("warn", message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.log("error", message, fields);
  }

  log(level: LogLevel, message: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    this.write(formatLine(this.options.format, this.now(), level, this.options.name, message, fields));
  }
}

/** One log line. Pure, for the logger and its tests. */
export function formatLine(format: LogFormat, at: number, level: LogLevel, name: string | undefined, message: string, fields?: LogFields): string {
  const time = new Date(at).toISOString();
  if (format === "json") return JSON.stringify({ time, level, ...(name ? { name } : {}), msg: message, ...fields }, jsonSafe);
  // Info lines look as they always did; other levels say so, so a warning is never missed.
  const tag = level === "info" ? "" : `${level.toUpperCase()} `;
  const extra =
    fields && Object.keys(fields).length > 0
      ? ` ${Object.entries(fields)
          .map(([k, v]) => `${k}=${fieldText(v)}`)
          .join(" ")}`
      : "";
  return `[${time}] ${tag}${name ? `${name}: ` : ""}${message}${extra}`;
}

function fieldText(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v, jsonSafe) ?? String(v);
}

function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Error) return { name: v.name, message: v.message };
  return v;
}

let processLogger: Logger | undefined;

/** The process's logger: the one startLogging set, else info/text to stderr. */
export function currentLogger(): Logger {
  return (processLogger ??= new Logger({ level: "info", format: "text" }));
}

export function setProcessLogger(logger: Logger): void {
  processLogger = logger;
}

/**
 * For a program's first lines: reads LOG_LEVEL and LOG_FORMAT (a bad value stops it with one
 * line), makes that the process's logger, and keeps Bun's TimeoutNegativeWarning (armed by
 * kafkajs, harmless) off the output.
 */
export function startLogging(name?: string, source?: ConfigSource): Logger {
  silenceTimeoutNegativeWarning();
  // The environment only: flags belong to each program's own settings.
  const settings = loadOrExit(logSpec, { env: (source ?? processSource()).env, argv: [] });
  const logger = loggerOf(settings, name);
  setProcessLogger(logger);
  return logger;
}

export function loggerOf(settings: LogSettings, name?: string): Logger {
  return new Logger({ level: settings.level, format: settings.format, name });
}
