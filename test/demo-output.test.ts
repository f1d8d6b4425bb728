// A healthy run must look healthy (issue 9): `bun run demo` and `bun run generate` print no
// ERROR line, no warning with a stack hint and no stack trace on the way to their result.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

/** Lines a user would read as something having gone wrong. */
function alarming(output: string): string[] {
  return output.split(/\r|\n/).filter((line) => /\bERROR\b|TimeoutNegativeWarning|--trace-warnings|Warning:|^\s+at \S+ \(|^\s*\d+ \| /.test(line));
}

async function run(args: string[], env: Record<string, string>, timeoutMs: number) {
  const proc = Bun.spawn([process.execPath, ...args], { cwd: root, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGTERM"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, output: `${stdout}\n${stderr}` };
}

describe("a healthy run looks healthy", () => {
  test("bun run demo: the OK verdict, no ERROR line, no warning stack", async () => {
    const r = await run(["src/cli/demo.ts"], { CARS: "500", LOG_LEVEL: "info", LOG_FORMAT: "text" }, 280_000);
    if (r.code !== 0 || alarming(r.output).length > 0) console.error(r.output);
    expect(r.output).toContain("OK: the outputs match the manifest exactly");
    expect(r.code).toBe(0);
    expect(alarming(r.output)).toEqual([]);
  }, 300_000);

  test("bun run generate: the summary, no ERROR line, no warning stack", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rccar-gen-"));
    try {
      const prefix = `t${Date.now().toString(36)}-genout-`;
      const r = await run(
        ["src/cli/generate.ts", "--cars", "300", "--malformed-rate", "0.05", "--dup-rate", "0.05", "--manifest", join(dir, "m.json")],
        { TOPIC_PREFIX: prefix, LOG_LEVEL: "info" },
        120_000,
      );
      if (r.code !== 0 || alarming(r.output).length > 0) console.error(r.output);
      expect(r.code).toBe(0);
      expect(r.output).toContain(`manifest: ${join(dir, "m.json")}`);
      expect(alarming(r.output)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  test("the check itself catches what the issue saw", () => {
    expect(alarming('[2026-01-01T00:00:00.000Z] {"level":"ERROR","logger":"kafkajs","message":"[Producer] Failed"}')).toHaveLength(1);
    expect(
      alarming("(node:1) TimeoutNegativeWarning: -17 is a negative number.\n(Use `bun --trace-warnings ...` to show where the warning was created)"),
    ).toHaveLength(2);
    expect(alarming("[2026-01-01T00:00:00.000Z] ERROR demo: failed: x")).toHaveLength(1);
    expect(alarming("[2026-01-01T00:00:00.000Z] demo: engine ready in 2.3 s\nOK: the outputs match the manifest exactly")).toEqual([]);
  });
});
