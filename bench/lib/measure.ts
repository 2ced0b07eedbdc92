/**
 * Run one command and measure what it cost: wall time, CPU time (user + system) and peak memory.
 *
 * CPU time and the largest single-process peak RSS come from /usr/bin/time, i.e. from wait4(): they
 * include every descendant the command waited for (pgBackRest's local processes; pgbunker's workers
 * are threads of its one process, so they are inside its own figures anyway).
 *
 * Peak RSS of a multi-process tool is more than its largest process: while the command runs, the
 * RSS of every process in its tree is summed every SAMPLE_MS and the largest sum kept. The reported
 * peak is the larger of the two, so a single-process tool gets the kernel's exact high-water mark
 * and a forking tool the sum over its processes (shared library pages counted once per process).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SAMPLE_MS = 50;

export interface Cost {
  /** Seconds. */
  wall: number;
  /** CPU seconds, user and system, of the command and its descendants. */
  user: number;
  sys: number;
  /** Bytes: max(largest process high-water mark, largest sampled sum over the process tree). */
  rssPeak: number;
  /** Bytes: the largest single process's high-water mark (wait4, /usr/bin/time's "Maximum resident set size"). */
  rssMaxProcess?: number;
  /** Bytes: the largest sum of RSS over the process tree, sampled every SAMPLE_MS (0 if it ended before the first sample). */
  rssTreeSum?: number;
}

export interface RunOptions {
  /** Run as this uid/gid (through setpriv, which execs: the command keeps the pid). */
  as?: { uid: number; gid: number };
  env?: Record<string, string>;
  cwd?: string;
  /** Exit codes besides 0 that are measured rather than thrown (a verify that reports problems). */
  okCodes?: number[];
}

/** Parse the "%U %S %M" line /usr/bin/time wrote (seconds, seconds, KiB). */
export function parseTimeOutput(text: string): { user: number; sys: number; maxRss: number } {
  // /usr/bin/time prefixes "Command exited with non-zero status N" when the command fails.
  const line = text.trim().split("\n").filter((l) => /^[\d.]+ [\d.]+ \d+$/.test(l.trim())).at(-1);
  if (!line) throw new Error(`unexpected /usr/bin/time output: ${JSON.stringify(text)}`);
  const [user, sys, kib] = line.trim().split(" ").map(Number) as [number, number, number];
  return { user, sys, maxRss: kib * 1024 };
}

/** Pids of a process and all its descendants now (children of every thread, as Linux lists them). */
export function processTree(root: number): number[] {
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited
    }
    for (const tid of tasks) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ")) if (c.trim()) stack.push(Number(c));
      } catch {}
    }
  }
  return out;
}

/** Resident set size of a process in bytes (0 once it is gone). */
export function processRss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export class CommandFailed extends Error {
  constructor(readonly cmd: string[], readonly code: number, readonly output: string) {
    super(`${cmd.join(" ")} exited with ${code}:\n${output.slice(-4000)}`);
  }
}

/** Run `cmd`, wait for it, and return its cost; throws CommandFailed (with its output) on a non-zero exit. */
export async function measure(cmd: string[], opts: RunOptions = {}): Promise<Cost & { output: string; code: number }> {
  const tmp = mkdtempSync(join(tmpdir(), "pgbunker-benchrun-time-"));
  const timeFile = join(tmp, "time");
  const asUser = opts.as ? ["setpriv", `--reuid=${opts.as.uid}`, `--regid=${opts.as.gid}`, "--init-groups", "--"] : [];
  const full = ["/usr/bin/time", "-f", "%U %S %M", "-o", timeFile, ...asUser, ...cmd];
  try {
    const start = performance.now();
    const proc = Bun.spawn(full, { cwd: opts.cwd ?? "/tmp", env: opts.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    let treePeak = 0;
    const sample = () => {
      let sum = 0;
      // The tree below /usr/bin/time: the command and whatever it forked.
      for (const pid of processTree(proc.pid)) if (pid !== proc.pid) sum += processRss(pid);
      if (sum > treePeak) treePeak = sum;
    };
    const timer = setInterval(sample, SAMPLE_MS);
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearInterval(timer);
    const wall = (performance.now() - start) / 1000;
    const output = stdout + stderr;
    if (code !== 0 && !opts.okCodes?.includes(code)) throw new CommandFailed(cmd, code, output);
    const t = parseTimeOutput(readFileSync(timeFile, "utf8"));
    return { wall, user: t.user, sys: t.sys, rssPeak: Math.max(t.maxRss, treePeak), rssMaxProcess: t.maxRss, rssTreeSum: treePeak, output, code };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * CPU seconds PostgreSQL has used so far: every live process of the postmaster's tree, each with
 * what it collected from its children that exited (cutime/cstime: backends reaped by the
 * postmaster, archive_command shells reaped by the archiver). The difference across a measurement
 * is the server's share of it (pg_basebackup's walsender reads and sends the files).
 */
export function serverCpuSeconds(postmasterPid: number): number {
  const hz = 100; // USER_HZ: 100 on every Linux build that matters here
  let ticks = 0;
  for (const pid of processTree(postmasterPid)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // After the command name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {}
  }
  return ticks / hz;
}

/** 1-minute load average now. */
export function loadAverage(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}
