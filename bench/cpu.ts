// CPU time of processes on this machine, from /proc (Linux): which process a run's cores went
// to (the broker, the engine, the bench's own generator and watcher). Figures are % of one
// core, so on two cores the total is at most 200 %.
import { readFileSync } from "node:fs";

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

/** utime + stime of a process (all its threads) in seconds, or undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

export class CpuMeter {
  private readonly start = new Map<string, number>();
  private startedAt = 0;

  constructor(private readonly pids: Record<string, number | undefined>) {}

  begin(): void {
    this.startedAt = performance.now();
    for (const [name, pid] of Object.entries(this.pids)) {
      const s = pid === undefined ? undefined : cpuSeconds(pid);
      if (s !== undefined) this.start.set(name, s);
    }
  }

  /** % of one core per process since begin(). */
  end(): Record<string, number> {
    const wall = (performance.now() - this.startedAt) / 1000;
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const s0 = this.start.get(name);
      const s1 = pid === undefined ? undefined : cpuSeconds(pid);
      if (s0 !== undefined && s1 !== undefined && wall > 0) out[name] = Math.round(((s1 - s0) / wall) * 100);
    }
    return out;
  }
}
