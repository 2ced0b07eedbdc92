/**
 * Where a pgbunker full backup spends its CPU: one full backup (lz4, process-max 2) under
 * `perf record -e cpu-clock` (the software clock: this virtual machine has no hardware counters),
 * reported flat by shared object and by symbol into bench/profile-full-backup.txt. Native code
 * (liblz4, Bun's SHA-1, libc, the kernel's copy and page-cache work) is named; JIT-compiled
 * JavaScript shows as anonymous memory, which is the share of our own TypeScript.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asPostgres, toolCommand, toolEnv } from "./env.ts";
import { measure } from "./measure.ts";
import type { BenchRun } from "./scenarios.ts";

function perfReport(data: string, sort: string, limit: number): string {
  const r = Bun.spawnSync(["perf", "report", "-i", data, "--stdio", "--no-children", `--sort=${sort}`, "--percent-limit=0.3"], { stdout: "pipe", stderr: "pipe" });
  return r.stdout.toString().split("\n").filter((l) => l.trim() && !l.startsWith("#")).slice(0, limit).join("\n");
}

export async function profileFullBackup(run: BenchRun, outDir: string): Promise<void> {
  const { env } = run;
  const tmp = mkdtempSync(join(tmpdir(), "pgbunker-benchrun-perf-"));
  const data = join(tmp, "perf.data");
  try {
    run.log("profile: pgbunker full backup lz4, process-max 2 under perf");
    const cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-o", data, "--", "setpriv", `--reuid=${asPostgres.uid}`, `--regid=${asPostgres.gid}`, "--init-groups", "--",
      ...toolCommand(env, "pgbunker", env.conf.pgbunker, ["--type=full", "--compress-type=lz4", "--process-max=2", "backup"])];
    const cost = await measure(cmd, { env: toolEnv });
    const text = [
      `# CPU profile of one pgbunker full backup (lz4, process-max 2) of ${(run.dataBytes / 1024 ** 3).toFixed(2)} GiB`,
      `# perf record -e cpu-clock -F 999; wall ${cost.wall.toFixed(1)}s, CPU ${(cost.user + cost.sys).toFixed(1)}s (perf included)`,
      "# regenerate: sudo bun bench/run.ts --only=full --reps=1 --profile --no-compare --out=/tmp/r.md",
      "",
      "## by thread",
      perfReport(data, "comm", 20),
      "",
      "## by shared object",
      perfReport(data, "dso", 20),
      "",
      "## by symbol",
      perfReport(data, "dso,sym", 60),
      "",
    ].join("\n");
    const out = join(outDir, "profile-full-backup.txt");
    writeFileSync(out, text);
    run.log(`profile written to ${out}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
