/**
 * pgbunker restore: rebuild a data directory from a backup of the repository (made by pgbunker or
 * by pgBackRest), then leave recovery settings so PostgreSQL replays WAL through archive-get.
 *
 * Steps:
 *  1. Read the repository: backup.info, the backup set (--set, latest, or by --target), its manifest.
 *  2. Plan: where the data directory, tablespaces and links go; which databases are zeroed.
 *  3. Check the destination: PostgreSQL not running there; empty, or --delta/--force on a data directory.
 *  4. Mark the restore in progress (backup.manifest in the data directory), drop pg_control.
 *  5. --delta/--force: remove what the backup does not have.
 *  6. Create directories and links.
 *  7. Restore the files in process-max workers, largest first; pg_control under a temp name.
 *  8. Write the recovery settings (postgresql.auto.conf + signal file, or recovery.conf).
 *  9. fsync every directory; remove the marker; put pg_control in place last, so an interrupted
 *     restore can never be started by mistake.
 */
import { err } from "../../common/error.ts";
import { log, logDetail, logInfo, logWarn } from "../../common/log.ts";
import { formatBytes, Progress } from "../../common/progress.ts";
import { formatTimestamp } from "../../common/time.ts";
import type { Config } from "../../config/parse.ts";
import { pgVersion } from "../../postgres/version.ts";
import type { Storage } from "../../storage/storage.ts";
import { WorkerPool, type Job } from "../../worker/pool.ts";
import { storagePg, storageRepo, storageSpec } from "../storage.ts";
import { RESTORE_FILES_JOB, RESTORE_SYNC_JOB, type RestoreAction, type RestoreBatch, type RestoreCommon, type RestoreFileEntry, type RestoreFileResult } from "./file.ts";
import { planRestore, type PlanFile, type RestorePlan } from "./plan.ts";
import { AUTO_CONF, checkRecoveryInput, RECOVERY_CONF, RECOVERY_SIGNAL, recoveryFiles, STANDBY_SIGNAL, type RecoveryInput, type RecoveryType, type TargetAction } from "./recovery.ts";
import { archiveGetCommand } from "./restore-command.ts";
import { loadRestoreSource, repoLocation, type RestoreSource } from "./source.ts";
import {
  checkEmpty, checkNotRunning, cleanTargets, createLinks, createMissingParents, createPaths, deltaAllowed, fileOrder, ownerResolver,
  PG_CONTROL, pathsToSync, RESTORE_MANIFEST,
} from "./target.ts";

const PG_CONTROL_TEMP = `${PG_CONTROL}.pgbunker.tmp`;

export async function run(cfg: Config): Promise<number> {
  const started = performance.now();
  const repo = await storageRepo(cfg, { readOnly: true });
  const pg = await storagePg(cfg, 1);
  const pgPath = pg.path();

  // 1. What to restore.
  const src = await loadRestoreSource(cfg, repo);
  const { manifest } = src;
  const major = pgVersion(manifest.db.version).major;
  logInfo(`repo${cfg.repoIndex}: restore backup set ${src.record.label}, recovery will start at ${formatTimestamp(manifest.backup.timestampStart)}`);
  const recovery = recoveryInput(cfg, major);
  checkRecoveryInput(recovery);

  // 2. Plan.
  const plan = planRestore(manifest, {
    pgPath,
    tablespaceMap: cfg.hash("tablespace-map"),
    tablespaceMapAll: cfg.str("tablespace-map-all"),
    linkMap: cfg.hash("link-map"),
    linkAll: cfg.bool("link-all"),
    dbInclude: cfg.list("db-include"),
    dbExclude: cfg.list("db-exclude"),
  });
  for (const m of plan.messages.filter((m) => m.level !== "detail")) log(m.level, m.message);
  if (!plan.files.some((f) => f.name === `pg_data/${PG_CONTROL}`))
    throw err("FormatError", `backup ${src.record.label} has no ${PG_CONTROL}`, "the manifest is incomplete: restore another backup set.");
  const owners = ownerResolver(plan);

  // 3. The destination.
  await checkNotRunning(pg, pgPath);
  const deltaAsked = cfg.bool("delta") || cfg.bool("force");
  const overwrite = deltaAsked && (await deltaAllowed(pg, pgPath));
  for (const m of plan.messages.filter((m) => m.level === "detail")) logDetail(m.message);
  if (!overwrite) await checkEmpty(pg, plan);
  const dataPath = plan.paths.find((p) => p.name === "pg_data")!;
  const dataOwner = owners(dataPath.user, dataPath.group);

  // 4. Mark the restore in progress; an old pg_control must not survive a failed restore.
  await createMissingParents(pg, `${pgPath}/${RESTORE_MANIFEST}`, dataOwner);
  await pg.put(`${pgPath}/${RESTORE_MANIFEST}`, manifest.render(), { mode: 0o600, ...dataOwner });
  if (overwrite && (await pg.info(`${pgPath}/${PG_CONTROL}`, { ignoreMissing: true }))) {
    logDetail(`remove '${PG_CONTROL}' so cluster will not start if restore does not complete`);
    await pg.remove(`${pgPath}/${PG_CONTROL}`);
  }

  // 5. Clean, 6. directories and links.
  const preserved = preservedFiles(recovery.type, major, pgPath);
  if (overwrite) await cleanTargets(pg, plan, new Set([`${pgPath}/${RESTORE_MANIFEST}`, ...preserved]));
  await createPaths(pg, plan.paths, owners);
  for (const t of plan.targets) if (t.file !== undefined) await createMissingParents(pg, t.checkPath, dataOwner);
  await createLinks(pg, plan.links, owners);

  // 7. Files, then fsync them all.
  const mode = !overwrite ? "none" : cfg.bool("force") && cfg.bool("delta") ? "time" : cfg.bool("delta") ? "checksum" : "none";
  const pool = await WorkerPool.start(Math.max(1, cfg.num("process-max") ?? 1));
  let stats: FileStats;
  try {
    stats = await restoreFiles(pool, cfg, src, plan, { delta: mode, preserved: new Set(preserved), owners });
    await syncFiles(pool, cfg, [...plan.files.map((f) => (f.name === `pg_data/${PG_CONTROL}` ? `${pgPath}/${PG_CONTROL_TEMP}` : f.dest))]);
  } finally {
    await pool.close();
  }

  // 8. Recovery settings.
  await writeRecovery(pg, pgPath, recovery, major, dataOwner);

  // 9. Durable, then startable.
  for (const dir of pathsToSync(plan)) {
    logDetail(`sync path '${dir}'`);
    await pg.pathSync(dir);
  }
  await pg.remove(`${pgPath}/${RESTORE_MANIFEST}`);
  logInfo(`restore ${PG_CONTROL} (performed last to ensure aborted restores cannot be started)`);
  await pg.move(`${pgPath}/${PG_CONTROL_TEMP}`, `${pgPath}/${PG_CONTROL}`);
  await pg.pathSync(pgPath);

  const secs = (performance.now() - started) / 1000;
  logInfo(
    `restore size = ${formatBytes(stats.bytes)}, file total = ${plan.files.length}` +
      ` (${stats.copied} copied, ${stats.kept} kept, ${stats.zeroed} zeroed) in ${secs.toFixed(1)}s, ${formatBytes(stats.bytes / Math.max(secs, 0.001))}/s`,
  );
  return 0;
}

function recoveryInput(cfg: Config, major: number): RecoveryInput {
  return {
    major,
    type: (cfg.str("type") ?? "default") as RecoveryType,
    target: cfg.str("target"),
    targetExclusive: cfg.bool("target-exclusive"),
    targetAction: (cfg.str("target-action") ?? "pause") as TargetAction,
    targetTimeline: cfg.str("target-timeline"),
    options: cfg.hash("recovery-option"),
    archiveModeOff: cfg.str("archive-mode") === "off",
    restoreCommand: archiveGetCommand(cfg),
  };
}

/** --type=preserve keeps the recovery files already in the data directory. */
function preservedFiles(type: RecoveryType, major: number, pgPath: string): string[] {
  if (type !== "preserve") return [];
  const names = major >= 12 ? [AUTO_CONF, RECOVERY_SIGNAL, STANDBY_SIGNAL] : [RECOVERY_CONF];
  return names.map((n) => `${pgPath}/${n}`);
}

interface FileStats {
  bytes: number;
  copied: number;
  kept: number;
  zeroed: number;
}

const ACTION_TEXT: Record<RestoreAction, string> = {
  copy: "",
  match: " - exists and matches backup",
  "match-time": " - exists and matches size and modification time",
  "zero-size": " - exists and is zero size",
  zero: "",
  preserve: " - preserved",
};

async function restoreFiles(
  pool: WorkerPool, cfg: Config, src: RestoreSource, plan: RestorePlan,
  opts: { delta: RestoreCommon["delta"]; preserved: Set<string>; owners: ReturnType<typeof ownerResolver> },
): Promise<FileStats> {
  const repoSpec = storageSpec(cfg, "repo", undefined, true);
  const pgSpec = storageSpec(cfg, "pg", 1);
  const m = src.manifest;
  const copyStart = m.backup.timestampCopyStart ?? m.backup.timestampStart;
  const dataDir = plan.targets[0]!.path;
  const common: RestoreCommon = {
    repo: repoSpec,
    pg: pgSpec,
    compressType: src.compressType,
    cipherPass: src.filePass,
    delta: opts.delta,
    copyStart,
    bufferSize: cfg.num("buffer-size"),
  };
  const entry = (f: PlanFile): RestoreFileEntry => ({
    name: f.name,
    ...repoLocation(src, f),
    dest: f.dest,
    writeTo: f.name === `pg_data/${PG_CONTROL}` ? `${dataDir}/${PG_CONTROL_TEMP}` : undefined,
    size: f.size,
    checksum: f.checksum,
    timestamp: f.timestamp,
    mode: f.mode,
    ...opts.owners(f.user, f.group),
    zero: f.zero,
    preserve: opts.preserved.has(f.dest),
  });
  const filesOf = new Map<Job<RestoreBatch>, PlanFile[]>();
  for (const batch of batches([...plan.files].sort(fileOrder))) filesOf.set({ type: RESTORE_FILES_JOB, params: { common, files: batch.map(entry) } }, batch);

  const total = plan.files.reduce((n, f) => n + f.size, 0);
  const progress = new Progress("restore", plan.files.length, total);
  const stats: FileStats = { bytes: 0, copied: 0, kept: 0, zeroed: 0 };
  try {
    await pool.runAll(filesOf.keys(), (job, results: RestoreFileResult[]) => {
      const files = filesOf.get(job)!;
      results.forEach((r, i) => report(files[i]!, r));
    });
  } finally {
    progress.done();
  }
  return stats;

  function report(f: PlanFile, r: RestoreFileResult): void {
    stats.bytes += f.size;
    if (r.action === "copy") stats.copied++;
    else if (r.action === "zero") stats.zeroed++;
    else stats.kept++;
    progress.add(f.size);
    const pct = total > 0 ? ((stats.bytes * 100) / total).toFixed(2) : "100.00";
    const what = r.action === "zero" ? "restore zeroed file" : "restore file";
    const sum = r.action === "zero" || f.checksum === undefined ? "" : ` checksum ${f.checksum}`;
    logDetail(`${what} ${f.name === `pg_data/${PG_CONTROL}` ? `${dataDir}/${PG_CONTROL_TEMP}` : f.dest}${ACTION_TEXT[r.action]} (${formatBytes(f.size)}, ${pct}%)${sum}`);
  }
}

/** Large files one per job; small ones (the many catalog files) grouped, so workers are not idle between them. */
const BATCH_FILES = 32;
const BATCH_BYTES = 1024 * 1024;

export function batches(files: readonly PlanFile[]): PlanFile[][] {
  const out: PlanFile[][] = [];
  let cur: PlanFile[] = [];
  let bytes = 0;
  for (const f of files) {
    if (cur.length > 0 && (cur.length >= BATCH_FILES || bytes + f.size > BATCH_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += f.size;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** fsync every restored file, spread over the workers in batches. */
async function syncFiles(pool: WorkerPool, cfg: Config, paths: string[]): Promise<void> {
  const pg = storageSpec(cfg, "pg", 1);
  const per = Math.max(64, Math.ceil(paths.length / (pool.size * 4)));
  const jobs: Job<{ pg: typeof pg; paths: string[] }>[] = [];
  for (let i = 0; i < paths.length; i += per) jobs.push({ type: RESTORE_SYNC_JOB, params: { pg, paths: paths.slice(i, i + per) } });
  logDetail(`sync ${paths.length} restored files`);
  await pool.runAll(jobs, () => {});
}

async function writeRecovery(pg: Storage, pgPath: string, r: RecoveryInput, major: number, owner: { user?: string; group?: string }): Promise<void> {
  const autoConf = major >= 12 ? await pg.get(`${pgPath}/${AUTO_CONF}`, { ignoreMissing: true }) : null;
  const files = recoveryFiles(r, autoConf === null ? null : new TextDecoder().decode(autoConf));
  for (const f of files.write) {
    if (f.content !== "") logInfo(`write ${f.name === AUTO_CONF && autoConf !== null ? "updated " : ""}${pgPath}/${f.name}`);
    await pg.put(`${pgPath}/${f.name}`, f.content, { mode: 0o600, ...owner, syncPath: false });
  }
  for (const name of files.remove) {
    if (!(await pg.info(`${pgPath}/${name}`, { ignoreMissing: true }))) continue;
    if (name === RECOVERY_CONF && major >= 12) logWarn(`remove ${pgPath}/${name}: PostgreSQL ${major} refuses to start with it`);
    await pg.remove(`${pgPath}/${name}`);
  }
}
