// The engine as a child process (`bun src/cli/engine.ts`), for tests, the bench and anything
// that must SIGKILL it: start and wait for /ready, read /metrics, kill -9, SIGTERM.
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join, resolve } from "node:path";
import { scrapeMetrics, type EngineCounters } from "../engine/index.ts";
import { freePort } from "./ports.ts";

const root = resolve(import.meta.dir, "../..");

export class EngineProcess {
  private proc: ReturnType<typeof Bun.spawn> | undefined;
  /** Chosen by the OS at each start. */
  port = 0;
  starts = 0;

  constructor(
    readonly name: string,
    private readonly env: Record<string, string>,
    private readonly logDir = join(root, ".local", "test-logs"),
  ) {}

  /** The running engine's pid, if it runs. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the engine process and waits until /ready says every partition is restored. */
  async start(readyTimeoutMs = 60_000): Promise<void> {
    await this.spawn();
    await this.waitReady(readyTimeoutMs);
  }

  /** Starts the engine process without waiting for it. */
  async spawn(): Promise<void> {
    mkdirSync(this.logDir, { recursive: true });
    this.port = await freePort();
    const log = openSync(join(this.logDir, `${this.name}.log`), "a");
    this.proc = Bun.spawn([process.execPath, join(root, "src/cli/engine.ts")], {
      cwd: root,
      env: { ...process.env, ...this.env, HTTP_PORT: String(this.port) },
      stdout: log,
      stderr: log,
    });
    closeSync(log);
    this.starts++;
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(1000) })
        .then(async (r) => r.ok && ((await r.json()) as { partitions: number[] }).partitions.length > 0)
        .catch(() => false);
      if (ready) return;
      if (this.proc?.exitCode !== null && this.proc?.exitCode !== undefined)
        throw new Error(`engine ${this.name} exited with ${this.proc.exitCode} (log ${join(this.logDir, this.name)}.log)`);
      if (Date.now() > deadline) throw new Error(`engine ${this.name} not ready within ${timeoutMs} ms`);
      await Bun.sleep(100);
    }
  }

  /** /ready's body: processed and not-yet-processed partitions (undefined when it does not answer). */
  async status(): Promise<{ ready: boolean; partitions: number[]; restoring: number[] } | undefined> {
    return fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.json() as Promise<{ ready: boolean; partitions: number[]; restoring: number[] }>)
      .catch(() => undefined);
  }

  /** /health's body: ok, and the stalled partitions with their reasons. */
  async health(): Promise<{ ok: boolean; stalls: { partition: number; reason: string; forMs: number }[] } | undefined> {
    return fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.json() as Promise<{ ok: boolean; stalls: { partition: number; reason: string; forMs: number }[] }>)
      .catch(() => undefined);
  }

  async metrics(): Promise<EngineCounters | undefined> {
    return scrapeMetrics(this.url).catch(() => undefined);
  }

  /** kill -9: no shutdown hook runs. */
  async kill9(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    this.proc = undefined;
  }

  async stop(): Promise<number | undefined> {
    if (!this.proc) return undefined;
    this.proc.kill("SIGTERM");
    const code = await this.proc.exited;
    this.proc = undefined;
    return code;
  }

  exited(): boolean {
    return this.proc === undefined || this.proc.exitCode !== null;
  }
}
