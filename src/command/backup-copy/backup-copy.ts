/**
 * backup-copy (a pgbunker command): copy backup sets, and the WAL each needs, from repository
 * --repo to repository --repo-target, stored as the target is configured (compress-type when set,
 * else the source's; the target's cipher with a new file passphrase per backup chain).
 *
 * Per set, in the order that keeps the target consistent if the process dies at any point:
 *   1. the resumable manifest (backup.manifest.copy) holding the file passphrase;
 *   2. the files, each checked against the manifest's SHA-1 and size as it is copied (a partial
 *      manifest recording the done ones is saved every manifest-save-threshold bytes);
 *   3. the WAL it needs (plan.ts), each checked against the SHA-1 in its name;
 *   4. one sync of what was written, the final manifest, then backup.info (finish.ts, as backup):
 *      the set is listed only once everything it needs is in place.
 * A rerun after a kill keeps the stored files whose SHA-1 still matches what was recorded and
 * copies the rest; a set already listed in the target is skipped.
 */
import { err } from "../../common/error.ts";
import { logInfo, logWarn } from "../../common/log.ts";
import { formatBytes, Progress } from "../../common/progress.ts";
import { rateLimiter } from "../../common/rate-limit.ts";
import type { Config } from "../../config/parse.ts";
import { COMPRESS_EXT, compressLevel, compressTypeOfName } from "../../filter/compress.ts";
import type { CompressType } from "../../filter/filter.ts";
import { loadArchiveInfo } from "../../repo/archive-info.ts";
import { loadBackupInfo, type BackupRecord } from "../../repo/backup-info.ts";
import { archiveFileOf, repoPath, walRepoPath } from "../../repo/layout.ts";
import { loadManifest, Manifest, savePartialManifest } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";
import type { JobOf, WorkerPool } from "../../worker/pool.ts";
import { startJobPool, type Jobs } from "../jobs.ts";
import { repoCipherPass } from "../archive/common.ts";
import { finishBackup } from "../backup/finish.ts";
import { jobRetry } from "../shared/job-retry.ts";
import { archiveIdOfDb } from "../shared/repos.ts";
import { storageRepo, storageSpec, type StorageSpec } from "../shared/storage.ts";
import { COPY_BUNDLE_JOB, COPY_FILE_JOB, type CopiedFile, type CopyBundleParams, type CopyCommon, type CopyFileParams, type StoreFormat } from "./file.ts";
import { setsToCopy, walInWindow, walWindow } from "./plan.ts";
import { newFilePass, openTargetStanza, targetDb, type Stanza } from "./target.ts";

interface Side {
  index: number;
  storage: Storage;
  spec: StorageSpec;
  pass?: string;
  stanza: Stanza;
}

interface Ctx {
  cfg: Config;
  stanza: string;
  src: Side;
  dst: Side;
  pool: WorkerPool<Jobs>;
  bufferSize: number;
  /** compress-type/-level given for this command; unset: keep the source's. */
  compress?: { type: CompressType; level?: number };
  saveThreshold: number;
}

export async function run(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  const from = cfg.repoIndex;
  const to = cfg.get("repo-target")!;
  if (from === to) throw err("OptionInvalidValueError", `--repo-target=${to} is the source repository (--repo=${from})`, "copy into another configured repository: --repo names the source, --repo-target the target.");
  const configured = cfg.indexes("repo");
  for (const [i, what] of [[from, "--repo"], [to, "--repo-target"]] as const)
    if (!configured.includes(i))
      throw err("OptionInvalidValueError", `${what}=${i} names repo${i}, which is not configured (configured: ${configured.map((n) => `repo${n}`).join(", ")})`, `set repo${i}-path (or repo${i}-host) in the configuration for the repository to copy ${what === "--repo" ? "from" : "into"}.`);

  const srcStorage = await storageRepo(cfg, { repo: from, readOnly: true });
  const dstStorage = await storageRepo(cfg, { repo: to });
  try {
    const srcPass = repoCipherPass(cfg, from);
    const srcStanza: Stanza = {
      backup: (await loadBackupInfo(srcStorage, stanza, { cipherPass: srcPass }))!,
      archive: (await loadArchiveInfo(srcStorage, stanza, { cipherPass: srcPass }))!,
    };
    const sets = setsToCopy(srcStanza.backup.backups, new Set(), cfg.str("set")); // checks --set before the target is touched
    const dstPass = repoCipherPass(cfg, to);
    const dstStanza = await openTargetStanza(dstStorage, to, stanza, dstPass, srcStanza);
    const todo = setsToCopy(srcStanza.backup.backups, new Set(dstStanza.backup.labels()), cfg.str("set"));
    if (todo.length === 0) {
      logInfo(`repo${to} already holds ${sets.map((s) => s.label).join(", ") || "every backup of the source"}: nothing to copy`);
      return 0;
    }
    const explicit = (k: "compress-type" | "compress-level") => cfg.source(k) !== undefined && cfg.source(k) !== "default";
    const pool = await startJobPool(cfg.get("process-max"), { retry: jobRetry(cfg) });
    const ctx: Ctx = {
      cfg,
      stanza,
      src: { index: from, storage: srcStorage, spec: storageSpec(cfg, "repo", from, true), pass: srcPass, stanza: srcStanza },
      dst: { index: to, storage: dstStorage, spec: storageSpec(cfg, "repo", to), pass: dstPass, stanza: dstStanza },
      pool,
      bufferSize: cfg.get("buffer-size"),
      compress: explicit("compress-type") ? { type: cfg.get("compress-type"), level: explicit("compress-level") ? cfg.num("compress-level") : undefined } : undefined,
      saveThreshold: cfg.get("manifest-save-threshold"),
    };
    try {
      for (const r of todo) await copySet(ctx, r);
    } finally {
      await pool.close();
    }
    logInfo(`copied ${todo.length} backup set(s) from repo${from} to repo${to}: ${todo.map((r) => r.label).join(", ")}`);
    const limiter = rateLimiter();
    if (limiter) logInfo(`rate-limit ${formatBytes(limiter.rate)}/s: ${formatBytes(limiter.granted)} moved at ${formatBytes(limiter.grantedRate())}/s`);
    return 0;
  } finally {
    await srcStorage.close();
    await dstStorage.close();
  }
}

async function copySet(ctx: Ctx, r: BackupRecord): Promise<void> {
  const { src, dst, stanza } = ctx;
  const label = r.label;
  const srcManifest = await loadManifest(src.storage, stanza, label, src.stanza.backup.cipherPass);
  // Block-incremental sets (repo-block) are maps over blocks of several backups: not re-stored yet.
  let blockFiles = false;
  for (const f of srcManifest.files.values()) if (f.blockIncr !== undefined) blockFiles = true;
  if (srcManifest.backup.blockIncr || blockFiles)
    throw err("FeatureNotSupportedError", `backup ${label} uses block incremental storage, which backup-copy cannot copy yet`, "copy the repository with pgBackRest tools, or copy backups made without repo-block.");
  const srcDb = src.stanza.backup.db(r.dbId) ?? srcManifest.db;
  const db = targetDb(dst.stanza.backup, srcDb, dst.index);
  const srcArchiveId = archiveIdOfDb(src.stanza.backup, src.stanza.archive, r.dbId);
  const dstArchiveId = archiveIdOfDb(dst.stanza.backup, dst.stanza.archive, db.id);

  // Diff and incr backups are stored as their chain is (restore reads every file with the set's settings).
  const prior = r.prior ? await loadManifest(dst.storage, stanza, r.prior, dst.stanza.backup.cipherPass) : undefined;
  const resumed = await partialCopy(ctx, label);
  const from: StoreFormat = { compressType: srcManifest.compressType, cipherPass: srcManifest.cipherPass };
  const to: StoreFormat = {
    compressType: prior?.compressType ?? ctx.compress?.type ?? from.compressType,
    compressLevel: undefined,
    cipherPass: dst.pass ? (resumed?.cipherPass ?? prior?.cipherPass ?? newFilePass()) : undefined,
  };

  to.compressLevel = prior
    ? numberOption(prior.options["compress-level"])
    : (ctx.compress?.level ?? (to.compressType === from.compressType ? numberOption(srcManifest.options["compress-level"]) : undefined));
  if (to.compressType !== "none") to.compressLevel = compressLevel(to.compressType, to.compressLevel);

  // The target's manifest: the source's, with the target's cluster id, storage settings and stored sizes.
  const m = Manifest.parse(srcManifest.render()); // the target's, edited below; the source's is kept to read from
  m.db.id = db.id;
  m.cipherPass = to.cipherPass;
  m.options["compress-type"] = to.compressType;
  m.options.compress = to.compressType !== "none";
  if (to.compressLevel !== undefined) m.options["compress-level"] = to.compressLevel;
  else delete m.options["compress-level"];
  m.options.hardlink = false; // the target's directories hold only their own files
  const resume = new Map<string, { rck: string; repoSize: number }>();
  for (const f of resumed?.files.values() ?? [])
    if (f.reference === undefined && f.bundleId === undefined && f.rck && f.repoSize !== undefined && m.files.has(f.name)) {
      resume.set(f.name, { rck: f.rck, repoSize: f.repoSize });
      m.files.set(f.name, { ...m.files.get(f.name)!, rck: f.rck, repoSize: f.repoSize });
    }
  await savePartialManifest(dst.storage, stanza, m, dst.stanza.backup.cipherPass);

  const common: CopyCommon = { source: src.spec, target: dst.spec, from, to, bufferSize: ctx.bufferSize };
  const fromExt = COMPRESS_EXT[from.compressType];
  const toExt = COMPRESS_EXT[to.compressType];
  const singles: JobOf<Jobs, typeof COPY_FILE_JOB>[] = [];
  const bundles = new Map<number, CopyBundleParams>();
  for (const f of srcManifest.files.sorted()) {
    if (f.reference !== undefined) continue;
    const expect = { checksum: f.checksum, size: f.size, name: f.name };
    if (f.bundleId !== undefined) {
      let b = bundles.get(f.bundleId);
      if (!b) {
        b = { ...common, sourceFile: repoPath.bundleFile(stanza, label, f.bundleId), targetFile: repoPath.bundleFile(stanza, label, f.bundleId), members: [] };
        bundles.set(f.bundleId, b);
      }
      b.members.push({ ...expect, offset: f.bundleOffset ?? 0, repoSize: f.repoSize ?? f.size });
    } else if (srcManifest.backup.bundle && f.size === 0) {
      continue; // a bundled backup stores no empty files
    } else {
      singles.push({
        type: COPY_FILE_JOB,
        params: { ...common, sourceFile: repoPath.backupFile(stanza, label, f.name, fromExt), targetFile: repoPath.backupFile(stanza, label, f.name, toExt), expect, resume: resume.get(f.name) },
      });
    }
  }
  for (const b of bundles.values()) b.members.sort((x, y) => x.offset - y.offset);
  // A reference points into a prior backup's directory: take its stored size and place from the target's copy of it.
  const refs = new Map<string, Manifest>();
  for (const f of m.files.values()) {
    if (f.reference === undefined) continue;
    let held = refs.get(f.reference);
    if (!held) refs.set(f.reference, (held = f.reference === prior?.backup.label ? prior : await loadManifest(dst.storage, stanza, f.reference, dst.stanza.backup.cipherPass)));
    const t = held.files.get(f.name);
    if (!t || t.reference !== undefined)
      throw err("FormatError", `backup ${label} references '${f.name}' in ${f.reference}, whose copy on repo${dst.index} does not store it`, "the source manifests disagree: run 'pgbunker verify' on the source repository.");
    m.files.set(f.name, { ...f, repoSize: t.repoSize, rck: t.rck, bundleId: t.bundleId, bundleOffset: t.bundleOffset });
  }

  const byName = [...bundles.values()].map((b) => b.members.map((x) => x.name));
  const total = singles.reduce((n, j) => n + (j.params.expect.size ?? 0), 0) + [...bundles.values()].reduce((n, b) => n + b.members.reduce((k, x) => k + (x.size ?? 0), 0), 0);
  const progress = new Progress(`backup-copy ${label}`, singles.length + byName.flat().length, total);
  let sinceSave = 0;
  let kept = 0;
  const record = async (name: string, res: CopiedFile) => {
    const f = m.files.get(name)!;
    Object.assign(f, { repoSize: res.repoSize, rck: res.rck });
    if (res.bundleOffset !== undefined) f.bundleOffset = res.bundleOffset;
    m.files.set(name, f);
    if (res.status === "kept") kept++;
    progress.add(f.size);
    sinceSave += res.repoSize;
    if (sinceSave >= ctx.saveThreshold) {
      sinceSave = 0;
      await savePartialManifest(dst.storage, stanza, m, dst.stanza.backup.cipherPass);
    }
  };
  const jobs: CopyJob[] = [...singles, ...[...bundles.values()].map((params) => ({ type: COPY_BUNDLE_JOB, params }) as const)];
  jobs.sort((a, b) => jobSize(b) - jobSize(a));
  try {
    await ctx.pool.runAll(jobs, async (job, res) => {
      if (job.type === COPY_FILE_JOB) return record((job.params as CopyFileParams).expect.name, res as CopiedFile);
      const members = (job.params as CopyBundleParams).members;
      for (let i = 0; i < members.length; i++) await record(members[i]!.name, (res as CopiedFile[])[i]!);
    });
  } finally {
    progress.done();
  }
  if (kept) logInfo(`backup ${label}: ${kept} file(s) already copied by an interrupted run were checked and kept`);

  const wal = srcArchiveId && dstArchiveId ? await copyWal(ctx, r, srcArchiveId, dstArchiveId, to) : 0;
  if (dst.storage.canSyncTree) await dst.storage.syncTree(repoPath.backupDir(stanza, label));
  await finishBackup(dst.pass, dst.storage, stanza, dst.stanza.backup, m);
  logInfo(`backup ${label} copied to repo${dst.index}: ${formatBytes(m.sizes().repoSizeDelta)} stored (${to.compressType}${to.cipherPass ? ", encrypted" : ""}), ${wal} WAL file(s)`);
}

/** A file or a bundle to copy. */
type CopyJob = JobOf<Jobs, typeof COPY_FILE_JOB | typeof COPY_BUNDLE_JOB>;

function jobSize(j: CopyJob): number {
  const p = j.params;
  return "members" in p ? p.members.reduce((n, m) => n + m.repoSize, 0) : (p.expect.size ?? 0);
}

function numberOption(v: unknown): number | undefined {
  return typeof v === "number" ? v : undefined;
}


/**
 * What an interrupted copy of this set left in the target: its manifest (the resumable copy, or a
 * final one written just before the kill), whose passphrase and recorded files are reused. A
 * directory that cannot be read is removed, so nothing half-written is trusted.
 */
async function partialCopy(ctx: Ctx, label: string): Promise<Manifest | undefined> {
  const { dst, stanza } = ctx;
  if (!(await dst.storage.exists(repoPath.backupDir(stanza, label)))) return undefined;
  try {
    const m = await loadManifest(dst.storage, stanza, label, dst.stanza.backup.cipherPass);
    logInfo(`backup ${label} was partly copied to repo${dst.index} by an interrupted run: resuming it`);
    return m;
  } catch (e) {
    logWarn(`backup ${label} on repo${dst.index} is an unreadable partial copy (${(e as Error).message.split("\n")[0]}): removing it`);
    await dst.storage.pathRemove(repoPath.backupDir(stanza, label), { recurse: true });
    return undefined;
  }
}

/** Copy the WAL the set needs (plan.ts) that the target's archive lacks; returns how many files were copied. */
async function copyWal(ctx: Ctx, r: BackupRecord, srcId: string, dstId: string, setFormat: StoreFormat): Promise<number> {
  const { src, dst, stanza } = ctx;
  const all = [...src.stanza.backup.backups.values()].map((record) => ({ record, archiveId: archiveIdOfDb(src.stanza.backup, src.stanza.archive, record.dbId) ?? "" }));
  const window = walWindow(r, srcId, all);
  if (!window) return 0;
  const srcDir = repoPath.archiveIdPath(stanza, srcId);
  // The source's archive id: history files at the top, segment directories (timeline + log) from the window's start.
  const rels: string[] = [];
  for (const name of await src.storage.names(srcDir)) {
    if (!/^[0-9A-F]{16}$/.test(name)) rels.push(name);
    else if (name.slice(0, 8) >= window.start.slice(0, 8) && name.slice(8) >= window.start.slice(8, 16))
      for (const f of await src.storage.names(`${srcDir}/${name}`)) rels.push(`${name}/${f}`);
  }
  const targetNames = new Map<string, Promise<string[]>>();
  const inTarget = (path: string) => {
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (!targetNames.has(dir)) targetNames.set(dir, dst.storage.names(dir));
    return targetNames.get(dir)!;
  };
  const jobs: JobOf<Jobs, typeof COPY_FILE_JOB>[] = [];
  const found = new Set<string>();
  for (const rel of rels) {
    const a = archiveFileOf(rel);
    if (!a || a.kind === "temp" || !walInWindow(a.wal, window)) continue;
    found.add(a.wal);
    const fromType = compressTypeOfName(rel);
    const toType: CompressType = a.sha1 ? (ctx.compress?.type ?? fromType) : "none"; // history and .backup files are stored plain
    const targetFile = walRepoPath(stanza, dstId, a.wal, a.sha1 ? { sha1: a.sha1, ext: COMPRESS_EXT[toType] } : undefined);
    // Already in the target (under any SHA-1 for a segment: a different one is another history, and it is left alone).
    const names = await inTarget(targetFile);
    const there = names.filter((n) => n === a.wal || n.startsWith(`${a.wal}-`));
    if (there.length) {
      if (a.sha1 && !there.some((n) => n.startsWith(`${a.wal}-${a.sha1}`))) logWarn(`WAL ${a.wal} is in repo${dst.index} with other content than in repo${src.index}: the target's is kept`);
      continue;
    }
    jobs.push({
      type: COPY_FILE_JOB,
      params: {
        source: src.spec,
        target: dst.spec,
        from: { compressType: fromType, cipherPass: src.stanza.archive.cipherPass },
        to: { compressType: toType, compressLevel: ctx.compress?.level ?? (toType === setFormat.compressType ? setFormat.compressLevel : undefined), cipherPass: dst.stanza.archive.cipherPass },
        bufferSize: ctx.bufferSize,
        sourceFile: `${srcDir}/${rel}`,
        targetFile,
        expect: { checksum: a.sha1, name: `WAL ${a.wal}` },
      },
    });
  }
  for (const need of [window.start, window.stop])
    if (!found.has(need))
      throw err("FileMissingError", `WAL segment ${need}, which backup ${r.label} needs to be consistent, is not in repo${src.index}'s archive`, "the copy would not restore: run 'pgbunker verify' on the source repository; nothing of this backup was listed in the target.");
  await ctx.pool.runAll(jobs, () => {});
  if (jobs.length && dst.storage.canSyncTree) await dst.storage.syncTree(repoPath.archiveIdPath(stanza, dstId));
  return jobs.length;
}
