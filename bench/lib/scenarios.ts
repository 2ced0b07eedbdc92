/**
 * The measurements, run on one cluster in one go. Within every repetition the tools take turns in
 * a rotating order, so drift of a shared machine (other jobs, page cache, thermal) hits all of
 * them alike; the report takes medians.
 *
 *   full     full backups: lz4 at process-max 1 and 2, gz and none at process-max 2
 *            (pg_basebackup plain beside "none", -Ft -z beside "gz", -Ft --compress=server-lz4
 *            and client-lz4 beside lz4/2); the last lz4/2 is kept
 *   incr     after each pgbench run, an incremental backup (lz4, process-max 2)
 *   restore  restore of the kept full backup, then a few files changed and a delta restore;
 *            beside them the disk's floor (ddFloor)
 *   push     archive-push of N real WAL segments, one process per segment as archive_command runs it
 */
import { closeSync, existsSync, openSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { archiveFirst, asPostgres, freshDir, pgTool, postmasterPid, readThroughCache, STANZA, toolCommand, toolEnv, treeBytes, WAL_SEGMENT, type BackupTool, type BenchEnv } from "./env.ts";
import { CommandFailed, loadAverage, measure, serverCpuSeconds, type Cost } from "./measure.ts";
import type { BenchOptions } from "./options.ts";
import { FLOOR, type Sample, type ScenarioInfo, type Tool } from "./report.ts";

export interface BenchRun {
  env: BenchEnv;
  opts: BenchOptions;
  samples: Sample[];
  scenarios: ScenarioInfo[];
  notes: string[];
  /** Data directory size at the start (bytes): the basis of every MB/s. */
  dataBytes: number;
  log: (msg: string) => void;
}

interface FullVariant {
  id: string;
  title: string;
  compress: "lz4" | "gz" | "none";
  processMax: number;
  /** pg_basebackup runs comparable with this variant (the tool name tells them apart in the tables). */
  basebackups?: { tool: Tool; args: string[]; title: string }[];
}

/**
 * Measured in this order within a repetition; lz4/2 comes last so its backup is the one kept.
 * pg_basebackup's lz4 runs beside lz4/2: server-lz4 compresses in the walsender (the server's
 * CPU, column "server CPU s"), client-lz4 in pg_basebackup itself; neither checks pages or
 * computes per-file checksums, so they are a lower bound on the work, not the same work.
 */
export const FULL_VARIANTS: FullVariant[] = [
  { id: "full-gz-pm2", title: "full backup gz, process-max 2", compress: "gz", processMax: 2, basebackups: [{ tool: "pg_basebackup", args: ["-Ft", "-z"], title: "pg_basebackup -Ft -z" }] },
  { id: "full-none-pm2", title: "full backup none, process-max 2", compress: "none", processMax: 2, basebackups: [{ tool: "pg_basebackup", args: ["-Fp"], title: "pg_basebackup plain" }] },
  { id: "full-lz4-pm1", title: "full backup lz4, process-max 1", compress: "lz4", processMax: 1 },
  {
    id: "full-lz4-pm2",
    title: "full backup lz4, process-max 2",
    compress: "lz4",
    processMax: 2,
    basebackups: [
      { tool: "pg_basebackup server-lz4", args: ["-Ft", "--compress=server-lz4"], title: "pg_basebackup -Ft --compress=server-lz4" },
      { tool: "pg_basebackup client-lz4", args: ["-Ft", "--compress=client-lz4"], title: "pg_basebackup -Ft --compress=client-lz4" },
    ],
  },
];

/** Rotate a list by n (who goes first changes every time). */
export function rotate<T>(list: readonly T[], n: number): T[] {
  if (!list.length) return [];
  const k = ((n % list.length) + list.length) % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

const LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;

function labels(repo: string): string[] {
  try {
    return readdirSync(join(repo, "backup", STANZA)).filter((n) => LABEL.test(n)).sort();
  } catch {
    return [];
  }
}

function record(run: BenchRun, scenario: string, tool: Tool, rep: number, cost: Cost, load: number, extra: Partial<Sample> = {}): void {
  const s: Sample = { scenario, tool, rep, cost: { wall: cost.wall, user: cost.user, sys: cost.sys, rssPeak: cost.rssPeak }, load, ...extra };
  run.samples.push(s);
  run.log(`  ${scenario} ${tool} #${rep}: ${cost.wall.toFixed(2)}s, cpu ${(cost.user + cost.sys).toFixed(2)}s, rss ${(cost.rssPeak / 1048576).toFixed(0)}MiB${extra.repoBytes !== undefined ? `, repo ${(extra.repoBytes / 1048576).toFixed(0)}MiB` : ""} (load ${load.toFixed(1)})`);
}

async function timed(run: BenchRun, tool: Tool, cmd: string[]): Promise<{ cost: Cost; load: number; serverCpu: number }> {
  archiveFirst(run.env, tool);
  const pm = postmasterPid(run.env.cluster);
  const load = loadAverage();
  const cpu0 = serverCpuSeconds(pm);
  const cost = await measure(cmd, { as: asPostgres, env: toolEnv });
  return { cost, load, serverCpu: serverCpuSeconds(pm) - cpu0 };
}

/** One backup by one tool; returns the new label. */
async function backup(run: BenchRun, tool: BackupTool, scenario: string, rep: number, args: string[]): Promise<string> {
  const { env } = run;
  const before = new Set(labels(env.repo[tool]));
  const t = await timed(run, tool, toolCommand(env, tool, env.conf[tool], [...args, "backup"]));
  const label = labels(env.repo[tool]).find((l) => !before.has(l));
  if (!label) throw new Error(`${tool} backup reported success but no new backup is in ${env.repo[tool]}`);
  record(run, scenario, tool, rep, t.cost, t.load, { repoBytes: treeBytes(join(env.repo[tool], "backup", STANZA, label)), serverCpu: t.serverCpu });
  return label;
}

async function expire(run: BenchRun, tool: BackupTool, label: string): Promise<void> {
  await measure(toolCommand(run.env, tool, run.env.conf[tool], [`--set=${label}`, "expire"]), { as: asPostgres, env: toolEnv });
}

function scenario(run: BenchRun, id: string, title: string, bytes = run.dataBytes, items?: number): void {
  if (!run.scenarios.some((s) => s.id === id)) run.scenarios.push({ id, title, bytes, items });
}

/** Full backups; leaves the last lz4/2 backup of each tool as the base for incr and restore. */
export async function runFull(run: BenchRun): Promise<void> {
  const { env, opts } = run;
  const last: Partial<Record<BackupTool, string>> = {};
  // lz4/2 always runs: its backup is the one incr and restore start from.
  const variants = FULL_VARIANTS.filter((v) => v.id === "full-lz4-pm2" || opts.fullVariants.includes(v.id));
  const bbs = (v: FullVariant) => (opts.compare ? v.basebackups ?? [] : []);
  // The title names pg_basebackup's arguments where its tool name does not ("pg_basebackup").
  const plain = (v: FullVariant) => bbs(v).filter((b) => b.tool === "pg_basebackup");
  for (const v of variants) scenario(run, v.id, v.title + (plain(v).length ? ` (pg_basebackup: ${plain(v).map((b) => b.title).join("; ")})` : ""));
  for (let rep = 1; rep <= opts.reps; rep++) {
    for (const [vi, v] of variants.entries()) {
      run.log(`${v.title} (rep ${rep}/${opts.reps})`);
      const tools: Tool[] = [...env.tools, ...bbs(v).map((b) => b.tool)];
      for (const tool of rotate(tools, rep + vi)) {
        const bb = bbs(v).find((b) => b.tool === tool);
        if (bb) {
          await basebackup(run, v.id, bb, rep);
          continue;
        }
        if (!isBackupTool(run, tool)) continue;
        const label = await backup(run, tool, v.id, rep, ["--type=full", `--compress-type=${v.compress}`, `--process-max=${v.processMax}`]);
        // Keep one full backup per tool at a time (disk space); expiring is not measured.
        if (last[tool]) await expire(run, tool, last[tool]!);
        last[tool] = label;
      }
    }
  }
}

function isBackupTool(run: BenchRun, tool: Tool): tool is BackupTool {
  return (run.env.tools as readonly Tool[]).includes(tool);
}

async function basebackup(run: BenchRun, scenarioId: string, bb: { tool: Tool; args: string[] }, rep: number): Promise<void> {
  const { cluster } = run.env;
  const out = freshDir(join(run.env.dir, "basebackup"));
  const t = await timed(run, bb.tool, pgTool(cluster, "pg_basebackup", ["-D", out, "-c", "fast", ...bb.args]));
  record(run, scenarioId, bb.tool, rep, t.cost, t.load, { repoBytes: treeBytes(out), serverCpu: t.serverCpu });
  rmSync(out, { recursive: true, force: true });
}

/** incr and restore need a full lz4 backup of each tool: take one (not measured) when the full group did not run. */
export async function ensureFull(run: BenchRun): Promise<void> {
  for (const tool of run.env.tools) {
    if (labels(run.env.repo[tool]).some((l) => !l.includes("_"))) continue;
    run.log(`${tool}: full backup for the later groups (not measured)`);
    await measure(toolCommand(run.env, tool, run.env.conf[tool], ["--type=full", "--compress-type=lz4", "--process-max=2", "backup"]), { as: asPostgres, env: toolEnv });
  }
}

/** pgbench writes, then each tool takes an incremental backup of the same changes. */
export async function runIncr(run: BenchRun): Promise<void> {
  const { env, opts } = run;
  scenario(run, "incr", `incremental backup lz4, process-max 2, after pgbench -c 2 -t ${opts.pgbenchTx}`);
  for (let rep = 1; rep <= opts.reps; rep++) {
    run.log(`incremental backup (rep ${rep}/${opts.reps})`);
    await measure(pgTool(env.cluster, "pgbench", ["-n", "-c", "2", "-j", "2", "-t", String(opts.pgbenchTx)]), { as: asPostgres, env: toolEnv });
    for (const tool of rotate(env.tools, rep)) await backup(run, tool, "incr", rep, ["--type=incr", "--process-max=2"]);
  }
}

/**
 * "A few changes" for the delta restore: in base/, every 97th file (by name) loses its first page
 * (zeroed, same size: only a checksum finds it) and the file after it is removed.
 */
export function changeAFewFiles(dataDir: string): number {
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dataDir, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) files.push(r);
    }
  };
  walk("base");
  files.sort();
  let changed = 0;
  for (let i = 0; i + 1 < files.length; i += 97) {
    const path = join(dataDir, files[i]!);
    const size = statSync(path).size;
    if (size > 0) {
      const fd = openSync(path, "r+");
      writeSync(fd, new Uint8Array(Math.min(size, 8192)), 0, Math.min(size, 8192), 0);
      closeSync(fd);
    } else truncateSync(path, 8192);
    unlinkSync(join(dataDir, files[i + 1]!));
    changed += 2;
  }
  return changed;
}

/**
 * Empty the page cache (as root), so a restore reads the repository and a delta restore reads the
 * data directory from disk, as they do in practice: a repository is not in the restoring host's
 * cache, nor is the data directory of a failed cluster. Without it the tools would start unequal:
 * pgBackRest writes through the page cache and finds its files cached, pgbunker writes large files
 * with O_DIRECT and reads them from disk. Returns false where the cache cannot be dropped.
 */
export function dropPageCache(): boolean {
  try {
    Bun.spawnSync(["sync"]);
    writeFileSync("/proc/sys/vm/drop_caches", "3\n");
    return true;
  } catch {
    return false;
  }
}

/**
 * Drop the page cache the same way before every measured restore, whatever ran before it. On this
 * VM, memory the guest frees may be handed back to the host, and the next touch of it costs a
 * host fault: after a restore that wrote through the page cache (pgBackRest), a delta restore
 * reads into pages the host still backs; after one that wrote with O_DIRECT (pgbunker), into pages
 * it may not. Measured: the same pgbunker delta restore took 4.3-4.9 s right after its restore and
 * 2.7 s when repeated (system CPU 4.2-5.0 s vs 1.1 s). So the cluster's files are read through
 * the page cache once (backing that much memory for both tools alike), then the cache is dropped.
 */
export function resetPageCache(warmDir: string): boolean {
  if (!dropPageCache()) return false;
  readThroughCache(warmDir);
  return dropPageCache();
}

/** Whether this pgbunker build has a restore command yet. */
function notImplemented(e: unknown): boolean {
  return e instanceof CommandFailed && /not implemented/i.test(e.output);
}

/** The newest full backup of a tool (the one a restore restores). */
function lastFull(env: BenchEnv, tool: BackupTool): string | undefined {
  return labels(env.repo[tool]).filter((l) => !l.includes("_")).at(-1);
}

/**
 * The disk's floor of a restore: the same number of bytes read and written, by dd, with no
 * decompression and no checksums. One dd reads a file the size of pgbunker's backup set (what a
 * restore reads from the repository) while another writes as many bytes as the data directory
 * holds and fsyncs them (what a restore writes), both at once, as a restore overlaps its reads
 * and writes; from a cold page cache as the restores start. Both files are in the work
 * directory, on the file system of the repositories and the restore targets.
 */
export function floorCommand(src: string, dst: string, writeBytes: number): string[] {
  const script = `dd if="$1" of=/dev/null bs=1M status=none & r=$!
dd if=/dev/zero of="$2" bs=1M count=$3 iflag=count_bytes conv=fsync status=none; w=$?
wait $r && exit $w`;
  return ["sh", "-c", script, "sh", src, dst, String(writeBytes)];
}

async function ddFloor(run: BenchRun, rep: number, readBytes: number, writeBytes: number): Promise<void> {
  const { env } = run;
  const src = join(env.dir, "floor-read");
  const dst = join(freshDir(join(env.dir, "floor")), "written");
  // The file to read, written once (not measured); its content does not matter to dd.
  if (!existsSync(src) || statSync(src).size !== readBytes) {
    await measure(["dd", "if=/dev/zero", `of=${src}`, "bs=1M", `count=${readBytes}`, "iflag=count_bytes", "conv=fsync", "status=none"], { as: asPostgres, env: toolEnv });
  }
  resetPageCache(env.cluster.dataDir);
  const t = await timed(run, FLOOR, floorCommand(src, dst, writeBytes));
  record(run, "restore", FLOOR, rep, t.cost, t.load, { repoBytes: readBytes });
  rmSync(join(env.dir, "floor"), { recursive: true, force: true });
}

export async function runRestore(run: BenchRun): Promise<void> {
  const { env, opts } = run;
  scenario(run, "restore", "restore (lz4 full backup), process-max 2");
  scenario(run, "delta-restore", "delta restore, a few files changed, process-max 2");
  let tools: Tool[] = [...env.tools, FLOOR];
  const pgbunkerSet = lastFull(env, "pgbunker");
  const floorRead = pgbunkerSet ? treeBytes(join(env.repo.pgbunker, "backup", STANZA, pgbunkerSet)) : 0;
  for (let rep = 1; rep <= opts.reps; rep++) {
    run.log(`restore and delta restore (rep ${rep}/${opts.reps})`);
    for (const tool of rotate(tools, rep)) {
      if (tool === FLOOR) {
        await ddFloor(run, rep, floorRead, run.dataBytes);
        if (rep === 1) {
          run.notes.push(
            `The restore's "dd floor" row is the disk alone: ${(floorRead / 1048576).toFixed(0)} MiB read (the size of pgbunker's backup set) while ${(run.dataBytes / 1048576).toFixed(0)} MiB are written and fsynced (the data directory), by two dd at once (bs=1M, page cache, no compression, no checksums), from the same cold page cache as the restores; its "repo MiB" is the bytes read.`,
          );
        }
        continue;
      }
      if (!isBackupTool(run, tool)) continue;
      const set = lastFull(env, tool);
      if (!set) throw new Error(`restore needs a full backup of ${tool}: run the full group first`);
      const target = freshDir(join(env.dir, `restore-${tool}`));
      const args = [`--set=${set}`, `--pg1-path=${target}`, "--process-max=2"];
      const cold = resetPageCache(env.cluster.dataDir);
      if (rep === 1 && tool === env.tools[0]) {
        run.notes.push(cold
          ? "Restore and delta restore start with an empty page cache (before each: sync; drop_caches; the source cluster read once through the cache; drop_caches again, so the VM's memory is in the same state whichever tool ran before): the repository and the data directory are read from disk, as on a real restore."
          : "The page cache could not be dropped (not root?): restores read whatever is cached, which favours the tool that writes through the page cache.");
      }
      let t;
      try {
        t = await timed(run, tool, toolCommand(env, tool, env.conf[tool], [...args, "restore"]));
      } catch (e) {
        if (!notImplemented(e)) throw e;
        run.notes.push(`${tool} restore is not implemented in this build: restore and delta restore measured for the other tools only.`);
        tools = tools.filter((x) => x !== tool);
        continue;
      }
      record(run, "restore", tool, rep, t.cost, t.load);
      const changed = changeAFewFiles(target);
      if (cold) resetPageCache(env.cluster.dataDir);
      const d = await timed(run, tool, toolCommand(env, tool, env.conf[tool], [...args, "--delta", "restore"]));
      record(run, "delta-restore", tool, rep, d.cost, d.load);
      if (rep === 1) run.log(`  (delta restore after ${changed} files of base/ changed or removed)`);
      rmSync(target, { recursive: true, force: true });
    }
  }
}

/** Remove every pushed segment (keeping archive.info) so each run pushes into an empty archive. */
function clearArchive(repo: string): void {
  const root = join(repo, "archive", STANZA);
  for (const id of readdirSync(root)) {
    if (!/^\d+-\d+$/.test(id)) continue;
    for (const d of readdirSync(join(root, id))) if (/^[0-9A-F]{16}$/.test(d)) rmSync(join(root, id, d), { recursive: true, force: true });
  }
}

export async function runPush(run: BenchRun): Promise<void> {
  const { env, opts } = run;
  const segs = env.segments;
  if (!segs.length) throw new Error("no WAL segments were staged for archive-push");
  if (segs.length < opts.segments) run.notes.push(`archive-push: only ${segs.length} segments were written while loading (asked for ${opts.segments}); a larger --size gives more.`);
  scenario(run, "archive-push", `archive-push of ${segs.length} segments (one process each, lz4)`, segs.length * WAL_SEGMENT, segs.length);
  for (let rep = 1; rep <= opts.reps; rep++) {
    run.log(`archive-push of ${segs.length} segments (rep ${rep}/${opts.reps})`);
    for (const tool of rotate(env.tools, rep)) {
      clearArchive(env.pushRepo[tool]);
      const push = toolCommand(env, tool, env.pushConf[tool], ["archive-push"]).map((a) => `'${a}'`).join(" ");
      const loop = ["sh", "-c", `for f in "$@"; do ${push} "$f" || exit 1; done`, "sh", ...segs];
      const t = await timed(run, tool, loop);
      record(run, "archive-push", tool, rep, t.cost, t.load, { repoBytes: treeBytes(join(env.pushRepo[tool], "archive", STANZA), (r) => r.endsWith("archive.info") || r.endsWith("archive.info.copy")) });
    }
  }
}
