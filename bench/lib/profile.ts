/**
 * Where a full backup spends its CPU: one full backup (lz4, process-max 2) by pgbunker, and one by
 * pgBackRest for comparison, under `perf record -e cpu-clock` (the software clock: this virtual
 * machine has no hardware counters). Samples are grouped into components (lz4, SHA-1, kernel file
 * copying, file system, memory, JavaScript runtime, ...) and listed by symbol, into
 * bench/profile-full-backup.txt.
 *
 * Bun's executable carries few symbols: its SHA-1 (BoringSSL, SHA-NI instructions) is recognised
 * by disassembling around the sampled address; the rest of the executable is the JavaScript
 * runtime (JavaScriptCore interpreter, GC, Bun's bindings) and shows as addresses.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asPostgres, readThroughCache, toolCommand, toolEnv, type BackupTool } from "./env.ts";
import { measure } from "./measure.ts";
import type { BenchRun } from "./scenarios.ts";

export interface ProfileRow {
  samples: number;
  comm?: string;
  dso: string;
  sym: string;
}

/** Rows of `perf report --stdio -n --sort=comm,dso,sym` ("  12.5%  1234  comm  dso  [.] sym"). */
export function parsePerfReport(text: string): ProfileRow[] {
  const rows: ProfileRow[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*[\d.]+%\s+(\d+)\s+(\S+)\s+(\S+)\s+\[[.k]\]\s+(.+?)\s*$/.exec(line);
    if (m) rows.push({ samples: Number(m[1]), comm: m[2], dso: m[3]!, sym: m[4]! });
  }
  return rows;
}

/** The component a sample belongs to (isSha1: does this executable address lie in a SHA-1 routine). */
export function component(row: ProfileRow, isSha1: (dso: string, addr: number) => boolean): string {
  const { dso, sym } = row;
  if (dso.startsWith("liblz4")) return "lz4 compression (liblz4)";
  if (dso.startsWith("libcrypto")) return "SHA-1 (OpenSSL libcrypto)";
  if (dso.startsWith(".bun-") || dso.startsWith("libpgbunker")) return "page checksums (libpgbunker)";
  if (dso.startsWith("libc.so") || dso.startsWith("ld-linux")) return "libc, dynamic loader (memcpy, malloc, ...)";
  if (dso.startsWith("[JIT]")) return "JavaScript, JIT-compiled";
  if (dso === "[kernel.kallsyms]") {
    if (/copy_(folio_from|to)_iter|copy_user|rep_movs|_copy_from_iter/.test(sym)) return "kernel: copying file data (read/write)";
    if (/fault|clear_page|do_anonymous|mm_fault|alloc_pages|folio_alloc|memcg|unmap|munmap|mmap|lruvec|zap_/.test(sym)) return "kernel: memory (page faults, allocation)";
    if (/ext4|jbd2|inode|dentry|filemap|find_get_block|recently_deleted|xas_|block|bio|blk|iomap|mpage/.test(sym)) return "kernel: file system, page cache";
    if (/sched|switch|futex|schedule|idle|irq|softirq|spin|rcu|tick/.test(sym)) return "kernel: scheduling, locks, interrupts";
    return "kernel: other (system calls)";
  }
  const addr = /^0x([0-9a-f]+)$/i.exec(sym);
  if (addr && isSha1(dso, parseInt(addr[1]!, 16))) return "SHA-1 (BoringSSL in Bun, SHA-NI)";
  return `${dso === "pgbackrest" ? "pgbackrest's own code" : "JavaScript runtime (JavaScriptCore, Bun)"}`;
}

/**
 * Bun's executable has no symbol for its SHA-1: find the routine by disassembling around the
 * hottest sampled address of the executable (perf reports file offsets) and taking the span
 * between the `ret` before its first SHA-NI instruction and the `ret` after its last.
 */
export function sha1Range(exe: string, rows: ProfileRow[]): [number, number] | undefined {
  const name = exe.split("/").pop();
  const hot = rows.filter((r) => r.dso === name && /^0x[0-9a-f]+$/i.test(r.sym)).sort((a, b) => b.samples - a.samples)[0];
  if (!hot) return undefined;
  const ph = Bun.spawnSync(["readelf", "-lW", exe]).stdout.toString();
  const m = /LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+R E/.exec(ph);
  const delta = m ? parseInt(m[2]!, 16) - parseInt(m[1]!, 16) : 0;
  const va = parseInt(hot.sym, 16) + delta;
  const asm = Bun.spawnSync(["objdump", "-d", `--start-address=0x${(va - 4096).toString(16)}`, `--stop-address=0x${(va + 4096).toString(16)}`, exe]).stdout.toString();
  const ins = asm.split("\n").map((l) => /^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(.*)$/.exec(l)).filter((x) => x !== null).map((x) => ({ at: parseInt(x![1]!, 16), text: x![2]! }));
  const sha = ins.map((x, i) => (/\bsha1(rnds4|nexte|msg1|msg2)\b/.test(x.text) ? i : -1)).filter((i) => i >= 0);
  if (!sha.length) return undefined;
  let lo = sha[0]!;
  while (lo > 0 && !/^ret/.test(ins[lo - 1]!.text)) lo--;
  let hi = sha.at(-1)!;
  while (hi < ins.length - 1 && !/^ret/.test(ins[hi]!.text)) hi++;
  const range: [number, number] = [ins[lo]!.at - delta, ins[hi]!.at - delta];
  return parseInt(hot.sym, 16) >= range[0] && parseInt(hot.sym, 16) <= range[1] ? range : undefined;
}

function perfRows(data: string): ProfileRow[] {
  const r = Bun.spawnSync(["perf", "report", "-i", data, "--stdio", "--no-children", "-n", "--sort=comm,dso,sym"], { stdout: "pipe", stderr: "pipe" });
  return parsePerfReport(r.stdout.toString());
}

export function summarizeProfile(rows: ProfileRow[], isSha1: (dso: string, addr: number) => boolean): { byComponent: [string, number][]; byThread: [string, number][]; top: ProfileRow[]; total: number } {
  const total = rows.reduce((n, r) => n + r.samples, 0);
  const add = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
  const comps = new Map<string, number>();
  const threads = new Map<string, number>();
  for (const r of rows) {
    add(comps, component(r, isSha1), r.samples);
    add(threads, r.comm ?? "?", r.samples);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { byComponent: sorted(comps), byThread: sorted(threads), top: [...rows].sort((a, b) => b.samples - a.samples).slice(0, 25), total };
}

function section(title: string, s: ReturnType<typeof summarizeProfile>, wallCpu: string): string {
  const pct = (n: number) => `${((n * 100) / s.total).toFixed(1).padStart(5)}%`;
  return [
    `## ${title}`,
    wallCpu,
    "",
    "### by component",
    ...s.byComponent.map(([k, n]) => `${pct(n)}  ${k}`),
    "",
    "### by thread",
    ...s.byThread.slice(0, 8).map(([k, n]) => `${pct(n)}  ${k}`),
    "",
    "### top symbols",
    ...s.top.map((r) => `${pct(r.samples)}  ${r.comm?.padEnd(12)} ${r.dso.padEnd(28)} ${r.sym}`),
    "",
  ].join("\n");
}

export async function profileFullBackup(run: BenchRun, outDir: string): Promise<void> {
  const { env } = run;
  const tmp = mkdtempSync(join(tmpdir(), "pgbunker-benchrun-perf-"));
  const parts = [
    `# CPU profile of one full backup (lz4, process-max 2) of ${(run.dataBytes / 1024 ** 3).toFixed(2)} GiB`,
    "# perf record -e cpu-clock -F 999 (1 sample = 1ms of CPU); generated by: npm run bench -- --profile (as root)",
    "",
  ];
  try {
    // The full backups above ran on a cached cluster; restore may have emptied the page cache since.
    // Read the cluster once so the profiles show the backup's own work, as the measurements do.
    readThroughCache(env.cluster.dataDir);
    for (const tool of env.tools as BackupTool[]) {
      const data = join(tmp, `${tool}.data`);
      run.log(`profile: ${tool} full backup lz4, process-max 2 under perf`);
      const cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-o", data, "--", "setpriv", `--reuid=${asPostgres.uid}`, `--regid=${asPostgres.gid}`, "--init-groups", "--",
        ...toolCommand(env, tool, env.conf[tool], ["--type=full", "--compress-type=lz4", "--process-max=2", "backup"])];
      const cost = await measure(cmd, { env: toolEnv });
      const rows = perfRows(data);
      const sha1 = sha1Range(env.binary, rows);
      const exe = env.binary.split("/").pop();
      const s = summarizeProfile(rows, (dso, addr) => sha1 !== undefined && dso === exe && addr >= sha1[0] && addr <= sha1[1]);
      parts.push(section(tool, s, `wall ${cost.wall.toFixed(1)}s, CPU ${(cost.user + cost.sys).toFixed(1)}s (perf included), ${s.total} samples`));
    }
    const out = join(outDir, "profile-full-backup.txt");
    writeFileSync(out, parts.join("\n"));
    run.log(`profile written to ${out}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
