/** The pure parts of bench/run.ts: options, /usr/bin/time parsing, medians, ratios, targets, report. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { archiveScript, dataPlan } from "../../../bench/lib/env.ts";
import { measure, parseTimeOutput, processTree } from "../../../bench/lib/measure.ts";
import { DEFAULTS, parseOptions, parseSize } from "../../../bench/lib/options.ts";
import { allRatios, BEGIN, checkTargets, END, median, ratios, renderReport, spliceReport, summarize, type Sample, type ScenarioInfo } from "../../../bench/lib/report.ts";
import { changeAFewFiles, floorCommand, rotate } from "../../../bench/lib/scenarios.ts";

const MB = 1024 * 1024;

describe("options", () => {
  test("sizes in powers of 1024", () => {
    expect(parseSize("3GB")).toBe(3 * 1024 ** 3);
    expect(parseSize("3GiB")).toBe(3 * 1024 ** 3);
    expect(parseSize("512m")).toBe(512 * MB);
    expect(parseSize("1.5G")).toBe(1.5 * 1024 ** 3);
    expect(parseSize("4096")).toBe(4096);
    expect(() => parseSize("3 apples")).toThrow(/invalid size '3 apples'/);
    expect(() => parseSize("0")).toThrow(/greater than zero/);
  });

  test("defaults, every option, and clear errors", () => {
    expect(parseOptions([])).toEqual(DEFAULTS);
    expect(parseOptions(["--help"])).toBe("help");
    const o = parseOptions(["--size=1GB", "--reps=5", "--segments=7", "--pgbench-tx=10", "--only=full,push", "--full=lz4-pm1,lz4-pm2", "--dir=/tmp/x", "--keep", "--out=/tmp/r.md", "--profile", "--no-compare", "--binary=/opt/pgbunker"]);
    expect(o).toEqual({ size: 1024 ** 3, reps: 5, segments: 7, pgbenchTx: 10, only: ["full", "push"], fullVariants: ["full-lz4-pm1", "full-lz4-pm2"], dir: "/tmp/x", keep: true, out: "/tmp/r.md", profile: true, compare: false, binary: "/opt/pgbunker" });
    expect(() => parseOptions(["--reps=0"])).toThrow(/--reps '0'/);
    expect(() => parseOptions(["--only=full,nope"])).toThrow(/unknown scenario group 'nope'/);
    expect(() => parseOptions(["--full=lz4-pm3"])).toThrow(/unknown full backup variant 'lz4-pm3'/);
    expect(() => parseOptions(["--bogus"])).toThrow(/unknown option --bogus/);
    expect(() => parseOptions(["--size"])).toThrow(/needs a value/);
    expect(() => parseOptions(["stray"])).toThrow(/unexpected argument 'stray'/);
  });

  test("data plan: half pgbench, half bench_orders", () => {
    const p = dataPlan(3 * 1024 ** 3);
    expect(p.scale).toBe(98);
    expect(p.orderRows).toBeGreaterThan(10_000_000);
    expect(dataPlan(1)).toEqual({ scale: 1, orderRows: 1000 });
  });
});

describe("measuring", () => {
  test("/usr/bin/time output, also after a failure notice", () => {
    expect(parseTimeOutput("1.25 0.50 20480\n")).toEqual({ user: 1.25, sys: 0.5, maxRss: 20480 * 1024 });
    expect(parseTimeOutput("Command exited with non-zero status 3\n0.00 0.01 1000\n")).toEqual({ user: 0, sys: 0.01, maxRss: 1000 * 1024 });
    expect(() => parseTimeOutput("garbage")).toThrow(/unexpected/);
  });

  test("measure: CPU and memory of a command and its children", async () => {
    // A shell whose child holds ~48MiB in a variable (and burns CPU filling it).
    const c = await measure(["sh", "-c", "sh -c 'x=$(head -c 50000000 /dev/zero | tr \"\\\\000\" a); sleep 0.2'"]);
    expect(c.wall).toBeGreaterThan(0);
    expect(c.user + c.sys).toBeGreaterThan(0);
    expect(c.rssPeak).toBeGreaterThan(32 * MB);
    await expect(measure(["sh", "-c", "echo boom >&2; exit 3"])).rejects.toThrow(/exited with 3:\nboom/);
  });

  test("processTree lists the children of a process", async () => {
    const p = Bun.spawn(["sh", "-c", "sleep 5 & sleep 5 & wait"]);
    await Bun.sleep(200);
    expect(processTree(p.pid).length).toBeGreaterThanOrEqual(3);
    p.kill();
  });
});

const scenarios: ScenarioInfo[] = [
  { id: "full-lz4-pm2", title: "full lz4/2", bytes: 1000 * MB },
  { id: "restore", title: "restore", bytes: 1000 * MB },
  { id: "archive-push", title: "push", bytes: 10 * 16 * MB, items: 10 },
];

function sample(scenario: string, tool: Sample["tool"], rep: number, wall: number, rss = 100 * MB): Sample {
  return { scenario, tool, rep, cost: { wall, user: wall / 2, sys: wall / 4, rssPeak: rss }, repoBytes: 400 * MB, load: 5 + rep, serverCpu: 0.5 };
}

const samples: Sample[] = [
  sample("full-lz4-pm2", "pgbunker", 1, 4), sample("full-lz4-pm2", "pgbackrest", 1, 10),
  sample("full-lz4-pm2", "pgbackrest", 2, 12), sample("full-lz4-pm2", "pgbunker", 2, 6),
  sample("full-lz4-pm2", "pgbunker", 3, 5), sample("full-lz4-pm2", "pgbackrest", 3, 11),
  sample("archive-push", "pgbunker", 1, 2, 50 * MB), sample("archive-push", "pgbackrest", 1, 1.6, 20 * MB),
];
// The same run with pgBackRest 2.59.1, pg_basebackup server-lz4 and a restore beside its dd floor.
const samples15: Sample[] = [
  ...samples,
  sample("full-lz4-pm2", "pgbackrest-2.59.1", 1, 15), sample("full-lz4-pm2", "pg_basebackup server-lz4", 1, 7),
  sample("restore", "pgbunker", 1, 3.3), sample("restore", "pgbackrest-2.59.1", 1, 4.5), sample("restore", "dd floor", 1, 3),
  sample("archive-push", "pgbackrest-2.59.1", 1, 2.4),
];

describe("report", () => {
  test("median", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  test("summaries, ratios and targets from medians", () => {
    const sums = summarize(samples, scenarios);
    const full = sums.find((s) => s.scenario === "full-lz4-pm2" && s.tool === "pgbunker")!;
    expect(full).toMatchObject({ reps: 3, wall: 5, mbps: 200, cpu: 3.75, rssPeak: 100 * MB, repoBytes: 400 * MB });
    expect(full.spread).toBeCloseTo(0.4);
    const push = sums.find((s) => s.scenario === "archive-push" && s.tool === "pgbunker")!;
    expect(push.perItem).toBeCloseTo(0.2);
    const rs = ratios(sums);
    expect(rs.find((r) => r.scenario === "full-lz4-pm2")).toMatchObject({ versus: "pgbackrest", wall: 5 / 11, speedup: 11 / 5, rss: 1, repo: 1 });
    const targets = checkTargets(sums, rs);
    // full ≥ 2.5x (2.2x), vs server-lz4 / restore / floor / incr not measured, RSS, push ≤ 0.8x (1.25x)
    expect(targets.map((t) => t.met)).toEqual([false, undefined, undefined, undefined, undefined, true, false]);
    expect(targets[0]!.target).toBe("full backup lz4, process-max 2: throughput ≥ 2.5x pgbackrest");
    expect(targets[6]!.measured).toBe("200 ms vs 160 ms (1.25x)");
  });

  test("ratios against every tool; the issue 15 targets against 2.59.1, pg_basebackup and the floor", () => {
    const sums = summarize(samples15, scenarios);
    const rs = allRatios(sums);
    expect(rs.filter((r) => r.scenario === "full-lz4-pm2").map((r) => [r.versus, r.speedup])).toEqual([
      ["pgbackrest", 11 / 5], ["pgbackrest-2.59.1", 3], ["pg_basebackup server-lz4", 7 / 5],
    ]);
    expect(rs.find((r) => r.scenario === "restore" && r.versus === "dd floor")!.wall).toBeCloseTo(1.1);
    const targets = checkTargets(sums, rs);
    expect(targets.map((t) => [t.target, t.measured, t.met])).toEqual([
      ["full backup lz4, process-max 2: throughput ≥ 2.5x pgbackrest-2.59.1", "3.00x", true],
      ["full backup lz4, process-max 2: throughput ≥ 1.5x pg_basebackup server-lz4", "1.40x", false],
      ["restore: throughput ≥ 1.5x pgbackrest-2.59.1", "1.36x", false],
      ["restore: wall time within 10 % of the disk's floor (dd of the same bytes)", "1.10x the floor's time", true],
      ["incremental after pgbench: throughput ≥ 1x pgbackrest-2.59.1", "not measured", undefined],
      ["peak RSS of a full backup < 200 MiB", "100 MiB (largest of the full backups)", true],
      ["archive-push: per-segment latency ≤ 0.8x pgbackrest-2.59.1's", "200 ms vs 240 ms (0.83x)", false],
    ]);
    const text = renderReport({ scenarios, samples: samples15, command: "c", machine: [], cluster: [], notes: [] });
    expect(text).toContain("| restore | dd floor | **0.91** | 1.10 |");
    // server CPU is in both: (0.75 * 5 + 0.5) / (0.75 * 7 + 0.5)
    expect(rs.find((r) => r.versus === "pg_basebackup server-lz4")!.cpuWithServer).toBeCloseTo(4.25 / 5.75);
    expect(text).toContain("| full lz4/2 | pg_basebackup server-lz4 | 1 | 7.00 |");
  });

  test("archive_command pushes with every tool, the measured one first", () => {
    const script = archiveScript("/w", 3, { pgbunker: "B", pgbackrest: "R", "pgbackrest-2.59.1": "N" });
    expect(script).toContain(`pgbackrest-2.59.1) N "$1" && B "$1" && R "$1" ;;`);
    expect(script).toContain(`pgbunker) B "$1" && R "$1" && N "$1" ;;`);
    expect(script).toContain(`*) B "$1" && R "$1" && N "$1" ;;`);
  });

  test("dd floor: reads one file while writing and fsyncing as many bytes as asked", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pgb-bench-floor-"));
    try {
      writeFileSync(join(dir, "src"), new Uint8Array(3 * MB + 5));
      const r = Bun.spawnSync(floorCommand(join(dir, "src"), join(dir, "dst"), 2 * MB + 7));
      expect(r.exitCode).toBe(0);
      expect(statSync(join(dir, "dst")).size).toBe(2 * MB + 7);
      expect(Bun.spawnSync(floorCommand(join(dir, "missing"), join(dir, "dst2"), 10)).exitCode).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("rendered report, spliced into hand-written text", () => {
    const text = renderReport({ scenarios, samples, command: "sudo bun bench/run.ts", machine: ["CPU: test"], cluster: ["tiny"], notes: ["a note"] });
    expect(text).toContain("| full backup lz4, process-max 2: throughput ≥ 2.5x pgbackrest | 2.20x | **no** |");
    expect(text).toContain("| full lz4/2 | pgbackrest | **2.20** | 0.45 | 0.45 | 0.49 | 1.00 | 1.00 |");
    expect(text).toContain("| push | pgbunker | 1 | 2.00 | 0% | 80.0 | 200.0 |");
    expect(text).toContain("- a note");
    const first = spliceReport("# Results\n\nintro\n", text);
    expect(first.startsWith("# Results\n\nintro\n\n" + BEGIN)).toBe(true);
    const again = spliceReport(first.replace("intro", "intro kept") + "\nafterword\n", "NEW");
    expect(again).toBe(`# Results\n\nintro kept\n\n${BEGIN}\nNEW\n${END}\n\nafterword\n`);
  });

  test("rotate: who goes first changes every time", () => {
    expect(rotate(["a", "b", "c"], 1)).toEqual(["b", "c", "a"]);
    expect(rotate(["a", "b"], 2)).toEqual(["a", "b"]);
    expect(rotate([], 3)).toEqual([]);
  });
});

test("changeAFewFiles: zeroes one page of every 97th file of base/ and removes the next", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgb-bench-change-"));
  try {
    const base = join(dir, "base/1");
    require("node:fs").mkdirSync(base, { recursive: true });
    for (let i = 0; i < 200; i++) writeFileSync(join(base, String(1000 + i)), new Uint8Array(16384).fill(7));
    expect(changeAFewFiles(dir)).toBe(6);
    const left = readdirSync(base).sort();
    expect(left.length).toBe(197);
    expect(left).not.toContain("1001");
    const zeroed = require("node:fs").readFileSync(join(base, "1000")) as Buffer;
    expect(statSync(join(base, "1000")).size).toBe(16384);
    expect(zeroed.subarray(0, 8192).every((b) => b === 0)).toBe(true);
    expect(zeroed.subarray(8192).every((b) => b === 7)).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("profile", () => {
  test("perf report rows and components", async () => {
    const { parsePerfReport, component, summarizeProfile } = await import("../../../bench/lib/profile.ts");
    const rows = parsePerfReport(`# Samples: 3K of event 'cpu-clock'
    26.02%          1486  Worker        liblz4.so.1.9.4               [.] LZ4_compress_fast_continue
     3.91%           223  Worker        [kernel.kallsyms]             [k] _copy_to_iter
     1.00%            57  Worker        pgbunker                      [.] 0x0000000001f7a279
     0.50%            28  pgbunker      pgbunker                      [.] 0x0000000001b41888
     0.40%            23  Worker        [kernel.kallsyms]             [k] clear_page_erms
     0.30%            17  local         libcrypto.so.3                [.] 0x000000000028efcf
`);
    expect(rows.length).toBe(6);
    expect(rows[0]).toEqual({ samples: 1486, comm: "Worker", dso: "liblz4.so.1.9.4", sym: "LZ4_compress_fast_continue" });
    const isSha1 = (dso: string, a: number) => dso === "pgbunker" && a >= 0x1f7a11a && a <= 0x1f7a39a;
    expect(rows.map((r) => component(r, isSha1))).toEqual([
      "lz4 compression (liblz4)", "kernel: copying file data (read/write)", "SHA-1 (BoringSSL in Bun, SHA-NI)",
      "JavaScript runtime (JavaScriptCore, Bun)", "kernel: memory (page faults, allocation)", "SHA-1 (OpenSSL libcrypto)",
    ]);
    const s = summarizeProfile(rows, isSha1);
    expect(s.total).toBe(1834);
    expect(s.byThread[0]).toEqual(["Worker", 1789]);
  });
});
