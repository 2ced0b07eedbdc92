/**
 * Turn measured samples into the RESULTS.md tables: medians per (scenario, tool), the ratios of
 * pgbunker to every other tool measured in the same run, and the targets of issue 15. Pure:
 * unit-tested.
 */
import type { Cost } from "./measure.ts";

/**
 * Every tool a sample can come from, in the order the tables list them. "pgbackrest" is the one
 * on PATH (2.45); "dd floor" is no tool but the disk: the bytes a restore reads and writes, moved
 * by dd with no work on them (scenarios.ts ddFloor).
 */
export const TOOLS = [
  "pgbunker",
  "pgbackrest",
  "pgbackrest-2.59.1",
  "pg_basebackup",
  "pg_basebackup server-lz4",
  "pg_basebackup client-lz4",
  "dd floor",
] as const;
export type Tool = (typeof TOOLS)[number];
export const FLOOR: Tool = "dd floor";

export interface Sample {
  scenario: string;
  tool: Tool;
  rep: number;
  cost: Cost;
  /** Bytes the result occupies in the repository (backups; pushed WAL). */
  repoBytes?: number;
  /** CPU seconds PostgreSQL spent during the run (matters for pg_basebackup). */
  serverCpu?: number;
  /** 1-minute load average when the run started. */
  load: number;
}

export interface ScenarioInfo {
  id: string;
  title: string;
  /** Bytes the throughput is computed from (cluster size; WAL bytes for archive-push). */
  bytes: number;
  /** For per-item latency (archive-push): how many items one run handles. */
  items?: number;
}

export interface Summary {
  scenario: string;
  tool: Tool;
  reps: number;
  wall: number;
  mbps: number;
  cpu: number;
  rssPeak: number;
  repoBytes?: number;
  serverCpu?: number;
  /** Seconds per item (archive-push: per segment). */
  perItem?: number;
  /** Spread of wall times: (max - min) / median. */
  spread: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const MB = 1024 * 1024;

export function summarize(samples: readonly Sample[], scenarios: readonly ScenarioInfo[]): Summary[] {
  const out: Summary[] = [];
  for (const sc of scenarios) {
    for (const tool of TOOLS) {
      const mine = samples.filter((s) => s.scenario === sc.id && s.tool === tool);
      if (!mine.length) continue;
      const walls = mine.map((s) => s.cost.wall);
      const wall = median(walls);
      const repo = mine.filter((s) => s.repoBytes !== undefined).map((s) => s.repoBytes!);
      const server = mine.filter((s) => s.serverCpu !== undefined).map((s) => s.serverCpu!);
      out.push({
        scenario: sc.id,
        tool,
        reps: mine.length,
        wall,
        mbps: sc.bytes / MB / wall,
        cpu: median(mine.map((s) => s.cost.user + s.cost.sys)),
        rssPeak: median(mine.map((s) => s.cost.rssPeak)),
        repoBytes: repo.length ? median(repo) : undefined,
        serverCpu: server.length ? median(server) : undefined,
        perItem: sc.items ? wall / sc.items : undefined,
        spread: (Math.max(...walls) - Math.min(...walls)) / wall,
      });
    }
  }
  return out;
}

export interface Ratio {
  scenario: string;
  /** The tool pgbunker is compared with. */
  versus: Tool;
  /** pgbunker / versus of the medians: below 1 is better for time, CPU, memory and size. */
  wall: number;
  cpu: number;
  rss: number;
  repo?: number;
  /**
   * (tool CPU + PostgreSQL's CPU) of pgbunker / of versus, where both were measured: the fair CPU
   * comparison with pg_basebackup, whose compression (server-lz4) runs in the walsender.
   */
  cpuWithServer?: number;
  /** pgbunker throughput / versus throughput (= 1 / wall): above 1 is faster. */
  speedup: number;
}

/** pgbunker against one other tool, per scenario both ran (default: pgBackRest on PATH). */
export function ratios(summaries: readonly Summary[], versus: Tool = "pgbackrest"): Ratio[] {
  const out: Ratio[] = [];
  const ids = [...new Set(summaries.map((s) => s.scenario))];
  for (const id of ids) {
    const a = summaries.find((s) => s.scenario === id && s.tool === "pgbunker");
    const b = summaries.find((s) => s.scenario === id && s.tool === versus);
    if (!a || !b) continue;
    out.push({
      scenario: id,
      versus,
      wall: a.wall / b.wall,
      cpu: a.cpu / b.cpu,
      rss: a.rssPeak / b.rssPeak,
      cpuWithServer: a.serverCpu !== undefined && b.serverCpu !== undefined && b.cpu + b.serverCpu > 0 ? (a.cpu + a.serverCpu) / (b.cpu + b.serverCpu) : undefined,
      repo: a.repoBytes !== undefined && b.repoBytes !== undefined && b.repoBytes > 0 ? a.repoBytes / b.repoBytes : undefined,
      speedup: b.wall / a.wall,
    });
  }
  return out;
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | undefined;
}

/** pgbunker against every other tool of the run, scenario by scenario, in TOOLS order. */
export function allRatios(summaries: readonly Summary[]): Ratio[] {
  const rs = TOOLS.filter((t) => t !== "pgbunker").flatMap((t) => ratios(summaries, t));
  const order = [...new Set(summaries.map((s) => s.scenario))];
  return rs.sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario));
}

/**
 * The targets of issue 15, checked against this run (undefined: not measured in this run). `rs`
 * holds the ratios against every tool (allRatios). pgBackRest targets are against 2.59.1, the
 * newest release, when it ran, else against the pgBackRest on PATH.
 */
export function checkTargets(summaries: readonly Summary[], rs: readonly Ratio[]): TargetCheck[] {
  const r = (id: string, versus: Tool) => rs.find((x) => x.scenario === id && x.versus === versus);
  const x = (v: number) => `${v.toFixed(2)}x`;
  const newest: Tool = rs.some((q) => q.versus === "pgbackrest-2.59.1") ? "pgbackrest-2.59.1" : "pgbackrest";
  const out: TargetCheck[] = [];
  const speedup = (id: string, what: string, versus: Tool, min: number) => {
    const q = r(id, versus);
    out.push({ target: `${what}: throughput ≥ ${min}x ${versus}`, measured: q ? x(q.speedup) : "not measured", met: q ? q.speedup >= min : undefined });
  };
  speedup("full-lz4-pm2", "full backup lz4, process-max 2", newest, 2.5);
  speedup("full-lz4-pm2", "full backup lz4, process-max 2", "pg_basebackup server-lz4", 1.5);
  speedup("restore", "restore", newest, 1.5);
  const floor = r("restore", FLOOR);
  out.push({
    target: "restore: wall time within 10 % of the disk's floor (dd of the same bytes)",
    measured: floor ? `${floor.wall.toFixed(2)}x the floor's time` : "not measured",
    met: floor ? floor.wall <= 1.1 : undefined,
  });
  speedup("incr", "incremental after pgbench", newest, 1);
  const fulls = summaries.filter((s) => s.tool === "pgbunker" && s.scenario.startsWith("full-"));
  const worst = Math.max(...fulls.map((s) => s.rssPeak));
  out.push({
    target: "peak RSS of a full backup < 200 MiB",
    measured: fulls.length ? `${(worst / MB).toFixed(0)} MiB (largest of the full backups)` : "not measured",
    met: fulls.length ? worst < 200 * MB : undefined,
  });
  const push = r("archive-push", newest);
  const pa = summaries.find((s) => s.scenario === "archive-push" && s.tool === "pgbunker");
  const pb = summaries.find((s) => s.scenario === "archive-push" && s.tool === newest);
  out.push({
    target: `archive-push: per-segment latency ≤ 0.8x ${newest}'s`,
    measured: push && pa && pb ? `${(pa.perItem! * 1000).toFixed(0)} ms vs ${(pb.perItem! * 1000).toFixed(0)} ms (${push.wall.toFixed(2)}x)` : "not measured",
    met: push ? push.wall <= 0.8 : undefined,
  });
  return out;
}

const mib = (n: number | undefined) => (n === undefined ? "" : (n / MB).toFixed(n < 10 * MB ? 1 : 0));
const f2 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "" : n.toFixed(2));
const f1 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "" : n.toFixed(1));

export interface ReportInput {
  scenarios: ScenarioInfo[];
  samples: Sample[];
  command: string;
  machine: string[];
  cluster: string[];
  notes: string[];
}

export function renderReport(input: ReportInput): string {
  const sums = summarize(input.samples, input.scenarios);
  const rs = allRatios(sums);
  const title = (id: string) => input.scenarios.find((s) => s.id === id)?.title ?? id;
  const lines: string[] = [];
  lines.push("### Command", "", "```sh", input.command, "```", "");
  lines.push("### Machine", "", ...input.machine.map((m) => `- ${m}`), "");
  lines.push("### Cluster", "", ...input.cluster.map((m) => `- ${m}`), "");

  lines.push("### Targets", "", "| target | measured | met |", "|---|---|---|");
  for (const t of checkTargets(sums, rs)) lines.push(`| ${t.target} | ${t.measured} | ${t.met === undefined ? "–" : t.met ? "yes" : "**no**"} |`);
  lines.push("");

  lines.push("### pgbunker / each tool (ratios of the medians)", "");
  lines.push("| measurement | versus | speed-up (throughput ×) | wall | CPU | CPU + server CPU | peak RSS | repo size |", "|---|---|---:|---:|---:|---:|---:|---:|");
  for (const r of rs) lines.push(`| ${title(r.scenario)} | ${r.versus} | **${f2(r.speedup)}** | ${f2(r.wall)} | ${f2(r.cpu)} | ${f2(r.cpuWithServer)} | ${f2(r.rss)} | ${f2(r.repo)} |`);
  lines.push("", "wall, CPU, peak RSS, repo size: pgbunker / the other tool (below 1: pgbunker uses less); CPU + server CPU adds PostgreSQL's CPU during the run to each side (pg_basebackup's server-lz4 compresses in the walsender). Against the dd floor, wall is how far pgbunker's restore is from the disk's own time (1.00 = at the floor).");
  lines.push("");

  lines.push("### Medians", "");
  lines.push(
    "| measurement | tool | runs | wall s | spread | MB/s | per item ms | CPU s | server CPU s | peak RSS MiB | repo MiB |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const s of sums) {
    lines.push(
      `| ${title(s.scenario)} | ${s.tool} | ${s.reps} | ${f2(s.wall)} | ${(s.spread * 100).toFixed(0)}% | ${f1(s.mbps)} | ${s.perItem === undefined ? "" : (s.perItem * 1000).toFixed(1)} | ${f2(s.cpu)} | ${f2(s.serverCpu)} | ${mib(s.rssPeak)} | ${mib(s.repoBytes)} |`,
    );
  }
  lines.push("");
  lines.push("MB/s = data directory size (archive-push: WAL bytes) / wall time, in MiB/s. spread = (max - min) / median of the wall times.", "");
  if (input.notes.length) lines.push("### Notes", "", ...input.notes.map((n) => `- ${n}`), "");

  const loads = input.samples.map((s) => s.load);
  lines.push("<details><summary>All runs (in execution order)</summary>", "");
  lines.push(`Load average (1 min) at the start of the runs: min ${f1(Math.min(...loads))}, median ${f1(median(loads))}, max ${f1(Math.max(...loads))}.`, "");
  lines.push("| # | measurement | tool | rep | wall s | user s | sys s | peak RSS MiB | repo MiB | load |", "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
  input.samples.forEach((s, i) =>
    lines.push(`| ${i + 1} | ${s.scenario} | ${s.tool} | ${s.rep} | ${f2(s.cost.wall)} | ${f2(s.cost.user)} | ${f2(s.cost.sys)} | ${mib(s.cost.rssPeak)} | ${mib(s.repoBytes)} | ${f1(s.load)} |`),
  );
  lines.push("", "</details>", "");
  return lines.join("\n");
}

export const BEGIN = "<!-- bench:begin (generated by bench/run.ts; edit outside this block) -->";
export const END = "<!-- bench:end -->";

/**
 * Replace the generated block of an existing report (or append one), keeping hand-written text
 * around it. `markers`: another generator's block (bench/s3.ts has its own).
 */
export function spliceReport(existing: string, generated: string, markers = { begin: BEGIN, end: END }): string {
  const { begin, end } = markers;
  const block = `${begin}\n${generated.trimEnd()}\n${end}`;
  const a = existing.indexOf(begin);
  const b = existing.indexOf(end);
  if (a >= 0 && b > a) return existing.slice(0, a) + block + existing.slice(b + end.length);
  return (existing.trim() ? existing.trimEnd() + "\n\n" : "") + block + "\n";
}
