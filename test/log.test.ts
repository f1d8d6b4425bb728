// The logger, the judgement of kafkajs's log lines, and the silenced Bun warning.
import { describe, expect, test } from "bun:test";
import { logLevel as KafkaLevel } from "kafkajs";
import { loadSettings, logSpec } from "../src/config.ts";
import { judgeKafkaLog, kafkaLogCreator, KafkaLogStats } from "../src/kafka-log.ts";
import { formatLine, Logger, type LogLevel } from "../src/log.ts";
import { testKafkaSettings } from "./support/kafka.ts";

const AT = Date.parse("2026-01-02T03:04:05.678Z");

function captured(level: LogLevel, format: "text" | "json" = "text", name?: string) {
  const lines: string[] = [];
  return { lines, logger: new Logger({ level, format, name, write: (l) => lines.push(l), now: () => AT }) };
}

describe("logger", () => {
  test("text lines look as before; other levels than info say so; fields follow", () => {
    expect(formatLine("text", AT, "info", undefined, "engine: partitions 0,1 restored")).toBe("[2026-01-02T03:04:05.678Z] engine: partitions 0,1 restored");
    expect(formatLine("text", AT, "warn", "kafka", "consumer crashed", { groupId: "g 1", retries: 3 })).toBe(
      '[2026-01-02T03:04:05.678Z] WARN kafka: consumer crashed groupId="g 1" retries=3',
    );
    expect(formatLine("text", AT, "debug", "demo", "x")).toBe("[2026-01-02T03:04:05.678Z] DEBUG demo: x");
  });

  test("json: one object per line with time, level, name, msg and the fields", () => {
    const line = formatLine("json", AT, "error", "kafka", 'a "quoted"\nmessage', { n: 1n, e: new Error("boom") });
    expect(line.includes("\n")).toBe(false);
    expect(JSON.parse(line)).toEqual({
      time: "2026-01-02T03:04:05.678Z",
      level: "error",
      name: "kafka",
      msg: 'a "quoted"\nmessage',
      n: "1",
      e: { name: "Error", message: "boom" },
    });
  });

  test("lines below the level are dropped; a child keeps level, format and output", () => {
    const { lines, logger } = captured("warn", "json", "demo");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.child("kafka").error("e");
    expect(lines.map((l) => JSON.parse(l)).map((o) => `${o.level} ${o.name} ${o.msg}`)).toEqual(["warn demo w", "error kafka e"]);
  });

  test("LOG_LEVEL and LOG_FORMAT: defaults, allowed values, a bad value names the setting", () => {
    expect(loadSettings(logSpec, { env: {}, argv: [] })).toEqual({ level: "info", format: "text" });
    expect(loadSettings(logSpec, { env: { LOG_LEVEL: "DEBUG", LOG_FORMAT: "json" }, argv: [] })).toEqual({ level: "debug", format: "json" });
    expect(() => loadSettings(logSpec, { env: { LOG_LEVEL: "verbose" }, argv: [] })).toThrow(/^LOG_LEVEL="verbose" is invalid/);
    expect(() => loadSettings(logSpec, { env: { LOG_FORMAT: "xml" }, argv: [] })).toThrow(/^LOG_FORMAT="xml" is invalid/);
  });

  test("a bad LOG_LEVEL stops a program with one line", () => {
    const r = Bun.spawnSync([process.execPath, "src/cli/price-api.ts"], {
      env: { ...process.env, PORT: "0", LOG_LEVEL: "chatty" },
      stderr: "pipe",
      stdout: "pipe",
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString().trim().split("\n")).toEqual(['configuration error: LOG_LEVEL="chatty" is invalid: must be one of debug, info, warn, error']);
  });
});

const CONCURRENT = "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing";

describe("kafkajs's log lines", () => {
  test.each([
    // What a healthy demo printed as ERROR: kafkajs retries CONCURRENT_TRANSACTIONS itself.
    [
      "Connection",
      KafkaLevel.ERROR,
      "Response AddPartitionsToTxn(key: 24, version: 1)",
      CONCURRENT,
      { kind: "retried", condition: "CONCURRENT_TRANSACTIONS", count: true },
    ],
    [
      "Producer",
      KafkaLevel.ERROR,
      `Failed to send messages: ${CONCURRENT}`,
      undefined,
      { kind: "retried", condition: "CONCURRENT_TRANSACTIONS", count: false },
    ],
    [
      "Connection",
      KafkaLevel.ERROR,
      "Response FindCoordinator(key: 10, version: 2)",
      "The coordinator is loading and hence can't process requests for this group",
      { kind: "retried", condition: "GROUP_LOAD_IN_PROGRESS", count: true },
    ],
    [
      "Connection",
      KafkaLevel.ERROR,
      "Response Metadata(key: 3, version: 6)",
      "There is no leader for this topic-partition as we are in the middle of a leadership election",
      { kind: "retried", condition: "LEADER_NOT_AVAILABLE", count: true },
    ],
    [
      "Connection",
      KafkaLevel.ERROR,
      "Response OffsetCommit(key: 8, version: 5)",
      "This is not the correct coordinator for this group",
      { kind: "retried", condition: "NOT_COORDINATOR_FOR_GROUP", count: true },
    ],
    // A broker restart: connections drop and are re-made.
    [
      "Connection",
      KafkaLevel.ERROR,
      "Connection error: connect ECONNREFUSED 127.0.0.1:9092",
      undefined,
      { kind: "retried", condition: "CONNECTION", count: true },
    ],
    ["BrokerPool", KafkaLevel.ERROR, "Failed to connect to broker, reconnecting", undefined, { kind: "retried", condition: "CONNECTION", count: true }],
    [
      "Runner",
      KafkaLevel.WARN,
      "The group is rebalancing, re-joining",
      "The group is rebalancing, so a rejoin is needed",
      { kind: "retried", condition: "REBALANCE_IN_PROGRESS", count: true },
    ],
    ["Consumer", KafkaLevel.ERROR, "Restarting the consumer in 300ms", undefined, { kind: "retried", condition: "CONSUMER_RESTART", count: true }],
    // A non-retriable error response: the caller gets it thrown and reports it; not counted.
    [
      "Connection",
      KafkaLevel.ERROR,
      "Response EndTxn(key: 26, version: 1)",
      "The producer attempted a transactional operation in an invalid state",
      { kind: "chatter" },
    ],
    ["Consumer", KafkaLevel.INFO, "Starting", undefined, { kind: "chatter" }],
    ["Producer", KafkaLevel.WARN, "Limiting retries for the idempotent producer may invalidate EoS guarantees", undefined, { kind: "chatter" }],
  ] as const)("%s %s %s → %o", (namespace, level, message, error, verdict) => {
    expect(judgeKafkaLog({ namespace, level, message, error })).toEqual(verdict);
  });

  test("what kafkajs does not recover from is one warn or error line saying what happens", () => {
    expect(
      judgeKafkaLog({
        namespace: "Consumer",
        level: KafkaLevel.ERROR,
        message: "Crash: KafkaJSNumberOfRetriesExceeded: Connection error: connect ECONNREFUSED",
      }),
    ).toEqual({
      kind: "failure",
      level: "warn",
      text: "consumer crashed, kafkajs restarts it: KafkaJSNumberOfRetriesExceeded: Connection error: connect ECONNREFUSED",
    });
    expect(
      judgeKafkaLog({ namespace: "Consumer", level: KafkaLevel.ERROR, message: "Crash: KafkaJSNonRetriableError: Failed to find group coordinator" }),
    ).toEqual({
      kind: "failure",
      level: "error",
      text: "consumer crashed and kafkajs does not restart it: KafkaJSNonRetriableError: Failed to find group coordinator",
    });
    const epoch =
      "Producer attempted an operation with an old epoch. Either there is a newer producer with the same transactionalId, or the producer's transaction has been expired by the broker";
    expect(judgeKafkaLog({ namespace: "Producer", level: KafkaLevel.ERROR, message: epoch })).toEqual({
      kind: "failure",
      level: "error",
      text: `producer: ${epoch} (INVALID_PRODUCER_EPOCH, not retried)`,
    });
    expect(
      judgeKafkaLog({ namespace: "Admin", level: KafkaLevel.WARN, message: "Could not create topics", error: "Topic with this name already exists" }),
    ).toMatchObject({ kind: "failure", level: "warn" });
  });

  test("retried conditions are counted, and summarised in one info line at most once per interval", async () => {
    const { lines, logger } = captured("info");
    const stats = new KafkaLogStats(400);
    const log = kafkaLogCreator({ logger, stats })(KafkaLevel.WARN);
    const entry = (namespace: string, message: string, error?: string) => ({
      namespace,
      level: KafkaLevel.ERROR,
      label: "ERROR",
      log: { timestamp: "", logger: "kafkajs", message, ...(error ? { error } : {}) },
    });
    for (let i = 0; i < 3; i++) {
      log(entry("Connection", "Response AddPartitionsToTxn(key: 24, version: 1)", CONCURRENT));
      log(entry("Producer", `Failed to send messages: ${CONCURRENT}`));
    }
    log(entry("Connection", "Connection error: read ECONNRESET"));
    expect(lines).toEqual([]); // all at debug, below info
    expect(stats.counts()).toEqual(
      new Map([
        ["CONCURRENT_TRANSACTIONS", 3],
        ["CONNECTION", 1],
      ]),
    );
    await Bun.sleep(500);
    expect(lines).toEqual([
      "[2026-01-02T03:04:05.678Z] kafka: retried transient conditions (kafkajs handles them; LOG_LEVEL=debug shows each): CONCURRENT_TRANSACTIONS ×3, CONNECTION ×1",
    ]);
    log(entry("Connection", "Response AddPartitionsToTxn(key: 24, version: 1)", CONCURRENT));
    await Bun.sleep(100);
    expect(lines.length).toBe(1); // not yet: the interval since the last summary is not over
    await Bun.sleep(400);
    expect(lines.length).toBe(2);
    expect(lines[1]).toEndWith("CONCURRENT_TRANSACTIONS ×1");
    expect(stats.counts().get("CONCURRENT_TRANSACTIONS")).toBe(4);
    // A failure is one line at its level, with who said it.
    log({
      ...entry("Consumer", "Crash: KafkaJSNonRetriableError: Failed to find group coordinator"),
      log: { ...entry("", "").log, message: "Crash: KafkaJSNonRetriableError: Failed to find group coordinator", groupId: "g" },
    });
    expect(lines[2]).toBe(
      "[2026-01-02T03:04:05.678Z] ERROR kafka: consumer crashed and kafkajs does not restart it: KafkaJSNonRetriableError: Failed to find group coordinator groupId=g",
    );
  });

  test("with LOG_LEVEL=debug each retried condition is a debug line", () => {
    const { lines, logger } = captured("debug");
    const log = kafkaLogCreator({ logger, stats: new KafkaLogStats() })(KafkaLevel.INFO);
    log({
      namespace: "Connection",
      level: KafkaLevel.ERROR,
      label: "ERROR",
      log: { timestamp: "", logger: "kafkajs", message: "Response AddPartitionsToTxn(key: 24, version: 1)", error: CONCURRENT } as never,
    });
    expect(lines).toEqual([
      `[2026-01-02T03:04:05.678Z] DEBUG kafka: Connection: Response AddPartitionsToTxn(key: 24, version: 1) (CONCURRENT_TRANSACTIONS, retried) error="${CONCURRENT}"`,
    ]);
  });
});

describe("Bun's TimeoutNegativeWarning", () => {
  const brokers = testKafkaSettings("warn").brokers.join(",");
  const script = (useProjectClient: boolean) => `
    ${useProjectClient ? `import { createKafka } from "./src/kafka.ts"; const kafka = createKafka({ brokers: ${JSON.stringify(brokers.split(","))} }, "warn-probe");` : `import { Kafka, logLevel } from "kafkajs"; const kafka = new Kafka({ clientId: "warn-probe", brokers: ${JSON.stringify(brokers.split(","))}, logLevel: logLevel.NOTHING });`}
    const admin = kafka.admin();
    await admin.connect();
    await admin.listTopics();
    await admin.disconnect();
    process.emitWarning("another warning", "DeprecationWarning");
    await Bun.sleep(50);
  `;
  const run = (useProjectClient: boolean) => {
    const r = Bun.spawnSync([process.execPath, "--eval", script(useProjectClient)], {
      cwd: `${import.meta.dir}/..`,
      env: { ...process.env, LOG_LEVEL: "info" },
      stderr: "pipe",
      stdout: "pipe",
    });
    return { code: r.exitCode, stderr: r.stderr.toString() };
  };

  test("kafkajs alone makes Bun print it (this is what is silenced)", () => {
    const r = run(false);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("TimeoutNegativeWarning");
  }, 30_000);

  test("a client from createKafka prints no TimeoutNegativeWarning, and other warnings still print", () => {
    const r = run(true);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("TimeoutNegativeWarning");
    expect(r.stderr).toContain("DeprecationWarning: another warning");
  }, 30_000);
});
