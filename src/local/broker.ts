// The local single-node Kafka broker (KRaft) the project downloads with Maven and runs on
// 127.0.0.1. Idempotent: start twice = one broker; stop kills only the pid it started.
// KAFKA_VERSION picks the line (4.x by default, 3.9 too); each has its own pom, jars and data.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { connect } from "node:net";
import type { KafkaSettings, KafkaVersion, LocalBrokerSettings } from "../config.ts";
import { createKafka, ensureTopics } from "../kafka.ts";

export interface BrokerStatus {
  running: boolean;
  pid?: number;
  port: number;
  dataDir: string;
}

export type Log = (line: string) => void;

const projectRoot = resolve(import.meta.dir, "../..");

export class BrokerSetupError extends Error {}

/** What differs between the lines: 4.x logs through log4j 2, 3.x through log4j 1 (reload4j). */
interface KafkaLine {
  pom: string;
  logConfigName: string;
  logConfig: string[];
  logConfigFlag: (file: string) => string;
}

const LOG_PATTERN = "[%d] %p %m (%c)%n";

function lineOf(version: KafkaVersion): KafkaLine {
  const pom = join(import.meta.dir, `kafka-broker-${version}.pom.xml`);
  if (version.startsWith("3.")) {
    return {
      pom,
      logConfigName: "log4j.properties",
      logConfig: [
        "log4j.rootLogger=WARN, stdout",
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
        `log4j.appender.stdout.layout.ConversionPattern=${LOG_PATTERN}`,
        "log4j.logger.kafka.server.BrokerServer=INFO",
      ],
      logConfigFlag: (file) => `-Dlog4j.configuration=file:${file}`,
    };
  }
  return {
    pom,
    logConfigName: "log4j2.properties",
    logConfig: [
      "status=warn",
      "appender.stdout.type=Console",
      "appender.stdout.name=STDOUT",
      "appender.stdout.layout.type=PatternLayout",
      `appender.stdout.layout.pattern=${LOG_PATTERN}`,
      "rootLogger.level=WARN",
      "rootLogger.appenderRef.stdout.ref=STDOUT",
      "logger.broker.name=kafka.server.BrokerServer",
      "logger.broker.level=INFO",
    ],
    logConfigFlag: (file) => `-Dlog4j2.configurationFile=${file}`,
  };
}

function paths(s: LocalBrokerSettings) {
  // Storage formats differ between lines (a 4.x log cannot be opened by 3.9): one dir per release.
  const dir = resolve(projectRoot, s.dataDir || `.local/kafka-${s.version}`);
  return {
    dir,
    libs: join(dir, "libs"),
    libsDone: join(dir, "libs", ".complete"),
    logs: join(dir, "data"),
    formattedBy: join(dir, "data-formatted-by"),
    config: join(dir, "server.properties"),
    logConfig: join(dir, lineOf(s.version).logConfigName),
    pid: join(dir, "broker.pid"),
    out: join(dir, "broker.log"),
  };
}

function requireCommand(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { stdio: "ignore" });
  if (r.error || r.status !== 0) throw new BrokerSetupError(`kafka:start needs ${what} on PATH ('${cmd}' was not found or failed)`);
}

/** Downloads the broker jars once (Maven's own cache makes a second project checkout cheap too). */
export function fetchBrokerJars(s: LocalBrokerSettings, log: Log): string {
  const p = paths(s);
  const pomPath = lineOf(s.version).pom;
  const pom = readFileSync(pomPath, "utf8");
  // The marker holds the pom it was made from: another KAFKA_VERSION or a bumped pom refetches.
  if (existsSync(p.libsDone) && readFileSync(p.libsDone, "utf8") === pom) return p.libs;
  requireCommand("mvn", ["--version"], "Apache Maven (apt-get install maven)");
  log(`fetching Apache Kafka ${s.version} from Maven Central into ${p.libs} ...`);
  rmSync(p.libs, { recursive: true, force: true });
  const r = spawnSync("mvn", ["-q", "-B", "-f", pomPath, "dependency:copy-dependencies", `-DoutputDirectory=${p.libs}`, "-DincludeScope=runtime"], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new BrokerSetupError(`mvn could not fetch the broker: ${(r.stdout + r.stderr).trim().split("\n").slice(-3).join(" | ")}`);
  writeFileSync(p.libsDone, pom);
  return p.libs;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Our pid file may be stale and the pid reused by another program: check it is our broker. */
function isOurBroker(pid: number, s: LocalBrokerSettings): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes("kafka.Kafka") && cmdline.includes(paths(s).config);
  } catch {
    return true; // no /proc: trust the pid file
  }
}

function readPid(s: LocalBrokerSettings): number | undefined {
  const file = paths(s).pid;
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function brokerStatus(s: LocalBrokerSettings): BrokerStatus {
  const pid = readPid(s);
  const running = pid !== undefined && isOurBroker(pid, s);
  return { running, pid: running ? pid : undefined, port: s.port, dataDir: paths(s).dir };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

function writeConfig(s: LocalBrokerSettings): void {
  const p = paths(s);
  writeFileSync(
    p.config,
    [
      "process.roles=broker,controller",
      "node.id=1",
      `controller.quorum.voters=1@127.0.0.1:${s.controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${s.port},CONTROLLER://127.0.0.1:${s.controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${s.port}`,
      "controller.listener.names=CONTROLLER",
      "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
      "inter.broker.listener.name=PLAINTEXT",
      `log.dirs=${p.logs}`,
      // One node: every internal topic must live with replication 1, or transactions never start.
      "offsets.topic.replication.factor=1",
      "offsets.topic.num.partitions=8",
      "transaction.state.log.replication.factor=1",
      "transaction.state.log.min.isr=1",
      "transaction.state.log.num.partitions=8",
      "min.insync.replicas=1",
      "group.initial.rebalance.delay.ms=0",
      "auto.create.topics.enable=false",
      "num.partitions=4",
      // Fast recovery of a killed engine: a dead member's partitions move after 10 s, not 45.
      "group.min.session.timeout.ms=1000",
      "log.cleaner.backoff.ms=5000",
      "",
    ].join("\n"),
  );
  writeFileSync(p.logConfig, [...lineOf(s.version).logConfig, ""].join("\n"));
}

function java(s: LocalBrokerSettings, args: string[], heap?: string): string[] {
  const p = paths(s);
  const logFlag = lineOf(s.version).logConfigFlag(p.logConfig);
  return ["java", ...(heap ? [`-Xms${heap}`, `-Xmx${heap}`] : []), logFlag, "-cp", `${p.libs}/*`, ...args];
}

/** One release's storage in another's hands fails late and obscurely (3.9 cannot read 4.x's): refuse it up front. */
function refuseOtherReleasesData(s: LocalBrokerSettings): void {
  const p = paths(s);
  if (!existsSync(join(p.logs, "meta.properties"))) return;
  // Data from before KAFKA_VERSION existed was always 3.9.1's.
  const formattedBy = existsSync(p.formattedBy) ? readFileSync(p.formattedBy, "utf8").trim() : "3.9.1";
  if (formattedBy !== s.version) {
    throw new BrokerSetupError(
      `${p.logs} holds data of Kafka ${formattedBy}, not KAFKA_VERSION=${s.version}: set KAFKA_DATA_DIR to another directory (or delete that one)`,
    );
  }
}

function formatStorage(s: LocalBrokerSettings, log: Log): void {
  const p = paths(s);
  if (existsSync(join(p.logs, "meta.properties"))) return;
  log(`formatting KRaft storage in ${p.logs}`);
  const [javaCmd, ...uuidArgs] = java(s, ["kafka.tools.StorageTool", "random-uuid"]);
  const id = spawnSync(javaCmd!, uuidArgs, { encoding: "utf8" });
  const clusterId = id.stdout.trim().split("\n").pop() ?? "";
  if (id.status !== 0 || clusterId === "") throw new BrokerSetupError(`could not make a cluster id: ${id.stderr.trim()}`);
  const [cmd, ...args] = java(s, ["kafka.tools.StorageTool", "format", "-t", clusterId, "-c", p.config]);
  const r = spawnSync(cmd!, args, { encoding: "utf8" });
  if (r.status !== 0) throw new BrokerSetupError(`formatting storage failed: ${(r.stdout + r.stderr).trim()}`);
  writeFileSync(p.formattedBy, s.version);
}

/** Waits until the broker answers metadata, and warms the group and transaction coordinators. */
export async function waitForBroker(k: KafkaSettings, timeoutMs: number, log: Log): Promise<void> {
  const kafka = createKafka(k, "rccar-broker-check", { quiet: true });
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.listTopics();
      await admin.disconnect();
      return;
    } catch (e) {
      lastError = (e as Error).message;
      await admin.disconnect().catch(() => {});
      await Bun.sleep(250);
    }
  }
  throw new BrokerSetupError(`broker at ${k.brokers.join(",")} did not answer within ${timeoutMs} ms: ${lastError}`);
}

/**
 * A fresh broker creates __consumer_offsets and __transaction_state lazily, and kafkajs does not
 * retry a transaction's sendOffsets on NOT_COORDINATOR: the first engine commit would fail. One
 * small transaction with sendOffsets here, retried until it passes, creates both.
 */
export async function warmCoordinators(k: KafkaSettings, timeoutMs: number): Promise<void> {
  const kafka = createKafka(k, "rccar-warmup", { quiet: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const producer = kafka.producer({ transactionalId: "rccar-warmup", idempotent: true, maxInFlightRequests: 1 });
    try {
      await producer.connect();
      const tx = await producer.transaction();
      await tx.sendOffsets({ consumerGroupId: "rccar-warmup", topics: [] });
      await tx.commit();
      await producer.disconnect();
      return;
    } catch (e) {
      await producer.disconnect().catch(() => {});
      if (Date.now() > deadline) throw new BrokerSetupError(`coordinators not ready: ${(e as Error).message}`);
      await Bun.sleep(500);
    }
  }
}

export interface StartResult {
  started: boolean;
  pid?: number;
  ms: number;
}

/** Starts the local broker unless ours already runs; creates the topics of SPEC §2. */
export async function startBroker(s: LocalBrokerSettings, k: KafkaSettings, log: Log): Promise<StartResult> {
  const t0 = Date.now();
  const p = paths(s);
  const status = brokerStatus(s);
  if (status.running) {
    log(`broker already running (pid ${status.pid}) on 127.0.0.1:${s.port}`);
    await waitForBroker(k, 60_000, log);
    await ensureTopicsOn(k);
    return { started: false, pid: status.pid, ms: Date.now() - t0 };
  }
  if (await portOpen(s.port)) {
    throw new BrokerSetupError(`port ${s.port} is taken by another process: stop it, set KAFKA_PORT, or set KAFKA_BROKERS to use it`);
  }
  requireCommand("java", ["-version"], "a Java runtime, 17 or newer (apt-get install openjdk-17-jre-headless)");
  refuseOtherReleasesData(s);
  mkdirSync(p.dir, { recursive: true });
  fetchBrokerJars(s, log);
  writeConfig(s);
  formatStorage(s, log);
  const out = openSync(p.out, "a");
  const [cmd, ...args] = java(s, ["kafka.Kafka", p.config], s.heap);
  const child = spawn(cmd!, args, { detached: true, stdio: ["ignore", out, out] });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new BrokerSetupError("could not spawn java");
  writeFileSync(p.pid, String(child.pid));
  log(`Kafka ${s.version} broker starting (pid ${child.pid}) on 127.0.0.1:${s.port}, log ${p.out}`);
  try {
    await waitForBroker(k, 90_000, log);
  } catch (e) {
    const tail = existsSync(p.out) ? readFileSync(p.out, "utf8").trim().split("\n").slice(-5).join("\n") : "";
    throw new BrokerSetupError(`${(e as Error).message}\n${tail}`);
  }
  await warmCoordinators(k, 60_000);
  await ensureTopicsOn(k);
  return { started: true, pid: child.pid, ms: Date.now() - t0 };
}

async function ensureTopicsOn(k: KafkaSettings): Promise<void> {
  const admin = createKafka(k, "rccar-topics").admin();
  await admin.connect();
  try {
    await ensureTopics(admin, k);
  } finally {
    await admin.disconnect();
  }
}

/** Stops the broker this project started (by its pid), waiting for a clean shutdown first. */
export async function stopBroker(s: LocalBrokerSettings, log: Log, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<boolean> {
  const status = brokerStatus(s);
  const p = paths(s);
  if (!status.running || status.pid === undefined) {
    rmSync(p.pid, { force: true });
    log("no broker of this project is running");
    return false;
  }
  process.kill(status.pid, signal);
  const deadline = Date.now() + 30_000;
  while (pidAlive(status.pid) && Date.now() < deadline) await Bun.sleep(100);
  if (pidAlive(status.pid)) process.kill(status.pid, "SIGKILL");
  while (pidAlive(status.pid)) await Bun.sleep(50);
  rmSync(p.pid, { force: true });
  log(`broker (pid ${status.pid}) stopped`);
  return true;
}

/** The java command line of one of Kafka's console tools, for looking at topics by hand. */
export function toolCommand(s: LocalBrokerSettings, mainClass: string, args: string[]): string[] {
  return java(s, [mainClass, ...args]);
}
