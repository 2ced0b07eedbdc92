/**
 * bench/run.ts end to end at a tiny size, so the benchmark does not rot: a cluster is generated,
 * archived, backed up (one unmeasured full, then a measured incremental), restored (then delta
 * restored), WAL pushed, and the report written. pgbunker only (--no-compare) and the quick groups: the timed comparison itself
 * is for `sudo bun bench/run.ts`, never for the test suite.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../harness/cluster.ts";
import { ensureBuilt } from "../harness/pgbunker.ts";

test("bench/run.ts runs end to end and writes its report", () => {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), "pgb-bench-smoke-"));
  try {
    const out = join(dir, "RESULTS.md");
    const args = ["--size=16MB", "--reps=1", "--segments=1", "--pgbench-tx=20", "--no-compare", "--only=incr,restore,push", `--out=${out}`];
    const r = Bun.spawnSync([process.execPath, join(ROOT, "bench/run.ts"), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect({ code: r.exitCode, stderr: r.stderr.toString().slice(-2000) }).toEqual({ code: 0, stderr: "" });
    const report = readFileSync(out, "utf8");
    expect(report).toContain(`npm run bench -- ${args.join(" ")}`);
    expect(report).toMatch(/\| incremental backup lz4, process-max 2, after pgbench -c 2 -t 20 \| pgbunker \| 1 \| [\d.]+ \|/);
    expect(report).toMatch(/\| restore \(lz4 full backup\), process-max 2 \| pgbunker \| 1 \| [\d.]+ \|/);
    expect(report).toMatch(/\| delta restore, a few files changed, process-max 2 \| pgbunker \| 1 \| [\d.]+ \|/);
    expect(report).toMatch(/\| archive-push of 1 segments \(one process each, lz4\) \| pgbunker \| 1 \| [\d.]+ \|/);
    expect(report).toMatch(/peak RSS of a full backup < 200 MiB \| not measured/);
    // The work directory (cluster, repositories) is gone.
    expect(r.stdout.toString()).not.toContain("work directory kept");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
