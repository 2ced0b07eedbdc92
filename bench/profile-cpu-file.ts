/**
 * CPU of the backup worker's whole per-file path (posix read → sha1 → size → page-checksum → lz4
 * → sha1 → size → posix write, as backupFile runs it), in this process: set beside
 * bench/profile-cpu.ts's "backup" stage (the filters alone, from memory), the difference is what
 * the storage read and write paths cost (system calls, kernel copies, buffer copies, JavaScript).
 *
 *   bun bench/profile-cpu-file.ts FILE... [--reps=N] [--repo=DIR]
 *
 * The files are read through the page cache (read once first, so they are cached); the output
 * goes to --repo (default: a temp dir under /var/tmp, removed afterwards).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { backupFile } from "../src/command/backup/file.ts";

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const files = args.filter((a) => !a.startsWith("--"));
const reps = Number(flag("reps") ?? 3);
const repo = flag("repo") ?? mkdtempSync("/var/tmp/pgbunker-profile-file-");
const total = files.reduce((n, f) => n + statSync(f).size, 0);
for (const f of files) readFileSync(f);

const cpu: number[] = [];
try {
  for (let r = 0; r < reps + 1; r++) {
    const before = process.cpuUsage();
    for (const f of files) {
      const res = await backupFile({
        pg: { kind: "posix", base: dirname(f) }, repo: { kind: "posix", base: repo }, pgFile: basename(f), repoFile: `${basename(f)}.lz4`,
        compressType: "lz4", bufferSize: 1024 * 1024, pageChecksum: { firstBlock: 0, lsnLimit: "18446744073709551615", pageSize: 8192 },
      });
      if (res.status !== "copied" || res.pageErrors?.length) throw new Error(`unexpected result ${JSON.stringify(res)}`);
    }
    const d = process.cpuUsage(before);
    if (r > 0) cpu.push((d.user + d.system) / 1e6); // the first pass warms up (JIT, buffers)
  }
} finally {
  if (!flag("repo")) rmSync(repo, { recursive: true, force: true });
}
cpu.sort((a, b) => a - b);
const gib = total / 1024 ** 3;
console.log(`backupFile: ${(cpu[Math.floor(cpu.length / 2)]! / gib).toFixed(3)} s CPU/GiB (${cpu.map((c) => c.toFixed(3)).join(" ")} s for ${(total / 1024 ** 2).toFixed(0)} MiB)`);
