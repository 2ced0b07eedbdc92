/**
 * backup: a consistent online (or offline) backup of the cluster into the repository.
 *
 *   1. check the cluster against the stanza (pg_control, database settings, archive settings)
 *   2. choose type and prior backup; resume an interrupted backup of the same kind or clean it up
 *   3. start the backup in PostgreSQL (non-exclusive), build the manifest from the data directory;
 *      with backup-standby, wait until a standby has replayed and checkpointed past the start
 *   4. decide per file: reference the prior backup, check by checksum (delta), or copy
 *   5. copy with process-max workers, saving a resumable manifest as it goes (replicated files
 *      from the standby when backup-standby is set, the rest from the primary)
 *   6. stop the backup, store backup_label (and tablespace_map)
 *   7. wait until the WAL the backup needs is archived (archive-check), copy it in (archive-copy)
 *   8. write the manifest, then add the backup to backup.info: only now is the backup valid
 *   9. expire (expire-auto)
 */
import { randomBytes } from "node:crypto";
import { COMPRESS_LEVEL_DEFAULT } from "../../common/compress-type.ts";
import { err } from "../../common/error.ts";
import { logInfo, logWarn } from "../../common/log.ts";
import { formatBytes } from "../../common/progress.ts";
import { nowSeconds, waitFor } from "../../common/time.ts";
import type { Config } from "../../config/parse.ts";
import { COMPRESS_EXT } from "../../filter/compress.ts";
import type { CompressType } from "../../filter/filter.ts";
import type { Db } from "../../postgres/client.ts";
import { readPgControl, type PgControl } from "../../postgres/control.ts";
import { isRelationFile, replicatedOnStandby, tablespaceVersionDir } from "../../postgres/exclude.ts";
import { backupStart, backupStop, checkpoint, checkpointRedoLsn, databaseList, replayLsn, tablespaceList, type PgTablespace } from "../../postgres/queries.ts";
import { lsnFormat } from "../../postgres/wal.ts";
import { annotationApply } from "../../repo/annotation.ts";
import { loadArchiveInfo } from "../../repo/archive-info.ts";
import { loadBackupInfo, type BackupInfo, type BackupType } from "../../repo/backup-info.ts";
import { REPO_VERSION } from "../../repo/ini.ts";
import { labelCreate } from "../../repo/label.ts";
import { historyLabels, labelDirs } from "../../repo/stored-labels.ts";
import { repoPath, storedExt } from "../../repo/layout.ts";
import { loadManifest, Manifest, savePartialManifest, type ManifestFile } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";
import { compressTypeOf, repoCipherPass } from "../archive/common.ts";
import { connectClusters } from "../shared/pg-cluster.ts";
import { storagePg, storageRepo, storageSpec, type StorageSpec } from "../shared/storage.ts";
import { blockIncrOf, blockRules, type BlockRules } from "./block-size.ts";
import { copyFiles, type CopyExtra } from "./copy.ts";
import { finishBackup } from "./finish.ts";
import { decideFile, referencePrior } from "./incremental.ts";
import { buildFileList } from "./manifest-build.ts";
import { prepareResume, removeUnlisted } from "./resume.ts";
import { copyWalIntoBackup, waitForArchive } from "./wal.ts";
import { jobRetry } from "../shared/job-retry.ts";

interface Cluster {
  pg: Storage;
  pgIndex: number;
  control: PgControl;
  db?: Db;
  timeline: number;
  tablespaces: PgTablespace[];
  checksums: boolean;
  /** backup-standby: the standby the replicated files are read from. */
  standby?: { index: number; db: Db; pg: Storage };
}

export async function run(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  const online = cfg.bool("online");
  const hardlink = cfg.bool(cfg.repoKey("repo-hardlink"));
  if (hardlink && cfg.bool(cfg.repoKey("repo-bundle")))
    throw err("OptionInvalidError", `option '${cfg.repoKey("repo-hardlink")}' cannot be used with '${cfg.repoKey("repo-bundle")}'`, "a file inside a bundle cannot be hard-linked: choose one of the two.");

  if (cfg.bool(cfg.repoKey("repo-block")) && !cfg.bool(cfg.repoKey("repo-bundle")))
    throw err("OptionInvalidError", `option '${cfg.repoKey("repo-block")}' not valid without option '${cfg.repoKey("repo-bundle")}'`, `block incremental stores its maps in bundles, as pgBackRest does: set ${cfg.repoKey("repo-bundle")}=y, or ${cfg.repoKey("repo-block")}=n.`);

  const repo = await storageRepo(cfg);
  if (hardlink && !repo.canHardLink) {
    if (cfg.str(cfg.repoKey("repo-type")) === "s3")
      throw err("OptionInvalidError", `option '${cfg.repoKey("repo-hardlink")}' cannot be used with ${cfg.repoKey("repo-type")}=s3: an object store has no hard links`, `set ${cfg.repoKey("repo-hardlink")}=n for this repository (each backup then refers to the files of its prior in the manifest).`);
    throw err("OptionInvalidError", `option '${cfg.repoKey("repo-hardlink")}' needs a repository on this host's file system`, "run the backup on the repository host, or set repo-hardlink=n.");
  }
  const repoPass = repoCipherPass(cfg, cfg.repoIndex);
  const info = (await loadBackupInfo(repo, stanza, {
    cipherPass: repoPass,
    hint: ["backup.info cannot be opened and is required to perform a backup.", "has a stanza-create been performed?"],
  }))!;

  // 1. the cluster
  const cluster = await inspectCluster(cfg, info, online);
  const { control, pg } = cluster;
  try {
    // 2. type, prior, resume
    const { type, prior } = await chooseType(cfg, repo, stanza, info);
    const resume = await prepareResume(repo, stanza, info, { type, prior: prior?.backup.label, systemId: control.systemId, version: control.version, cipherPass: info.cipherPass }, cfg.bool("resume"));
    if (prior) logInfo(`last backup label = ${prior.backup.label}, version = ${prior.programVersion}`);

    const timestampStart = nowSeconds();
    const label = resume?.label ?? (await newLabel(repo, stanza, info, type, prior?.backup.label, timestampStart));
    const archiveInfo = cfg.bool("archive-check") && online ? await loadArchiveInfo(repo, stanza, { cipherPass: repoPass }) : null;
    archiveInfo?.checkCurrent(control.version, control.systemId, "backup");

    // 3. start, manifest
    let start: Awaited<ReturnType<typeof backupStart>> | undefined;
    if (cluster.db) {
      logInfo(`execute non-exclusive backup start: backup begins after the ${cfg.bool("start-fast") ? "requested immediate checkpoint" : "next regular checkpoint"} completes`);
      start = await backupStart(cluster.db, control.facts.major, `pgbunker backup started at ${new Date().toISOString()}`, cfg.bool("start-fast"));
      logInfo(`backup start archive = ${start.walFile}, lsn = ${start.lsnText}`);
      if (cluster.standby) await standbyCaughtUp(cluster.standby.db, control.facts.major, start.lsn, cfg.get("archive-timeout"));
    }

    const manifest = newManifest(cfg, info, control, label, type, prior, timestampStart, start && { lsn: start.lsnText, wal: start.walFile });
    const bundle = cfg.bool(cfg.repoKey("repo-bundle")) ? { limit: cfg.get(cfg.repoKey("repo-bundle-limit")), size: cfg.get(cfg.repoKey("repo-bundle-size")) } : undefined;
    if (bundle) manifest.backup.bundle = true;
    const rules = { user: cfg.list("exclude"), tablespaceVersionDir: tablespaceVersionDir(control.version, control.catalogVersion) };
    await buildFileList({ pg, manifest, rules, tablespaces: cluster.tablespaces });
    const block = cfg.bool(cfg.repoKey("repo-block"));
    if (block) markBlockIncr(manifest, blockRules(cfg));
    if (cluster.db) for (const d of await databaseList(cluster.db, control.facts.major)) manifest.dbs.set(d.name, { name: d.name, id: d.oid, lastSystemId: d.lastSystemOid });
    const filePass = backupFilePass(info, prior, resume?.manifest);
    if (filePass) manifest.cipherPass = filePass;

    // 4. per-file decisions
    const delta = cfg.bool("delta") || (prior !== undefined && timelineChanged(prior, cluster.timeline));
    if (delta && !cfg.bool("delta")) logWarn("the cluster is on a different timeline than the prior backup: checksums decide which files changed (delta)");
    const { tasks, extras } = planTasks(manifest, prior, delta, resume?.manifest, bundle !== undefined, stanza);

    // Every file is copied at or after this second; incremental.ts relies on it.
    manifest.backup.timestampCopyStart = nowSeconds();
    await savePartialManifest(repo, stanza, manifest, info.cipherPass);

    // 5. copy (a diff/incr keeps its prior's compression: references resolve by the backup's extension)
    const compressType = manifest.compressType;
    const compressLevel = manifest.options["compress-level"] ?? 0;
    const stats = await copyFiles(manifest, tasks, extras, {
      stanza,
      source: fileSource(cfg, cluster),
      repo: storageSpec(cfg, "repo"),
      processMax: cfg.get("process-max"),
      retry: jobRetry(cfg),
      bufferSize: cfg.get("buffer-size"),
      compressType,
      compressLevel,
      cipherPass: filePass,
      pageChecksum: cluster.checksums
        ? { lsnLimit: (start?.lsn ?? 0xffffffffffffffffn).toString(), pageSize: control.pageSize, relSegSize: control.relSegSize, isRelation: (p) => isRelationFile(p, rules) }
        : undefined,
      saveThreshold: cfg.get("manifest-save-threshold"),
      savePartial: () => savePartialManifest(repo, stanza, manifest, info.cipherPass),
      onUnchanged: (t, x) => {
        const was = (x.delta ?? x.blockPrior)!;
        const f = manifest.files.at(t);
        referencePrior(f, was.prior, was.label);
        manifest.files.setAt(t, f);
      },
      bundle,
      block: block
        ? { superBlockSize: cfg.get(cfg.repoKey(type === "full" ? "repo-block-size-super-full" : "repo-block-size-super")), reference: manifest.backup.reference.length - 1 }
        : undefined,
    });

    await cluster.standby?.db.close();
    cluster.standby = undefined;

    // 6. stop
    const fileDefaults = defaultFileOwner(manifest);
    if (cluster.db) {
      logInfo("execute non-exclusive backup stop and wait for all WAL segments to archive");
      const stop = await backupStop(cluster.db, control.facts.major, false);
      manifest.backup.lsnStop = stop.lsnText;
      manifest.backup.archiveStop = stop.walFile;
      logInfo(`backup stop archive = ${stop.walFile}, lsn = ${stop.lsnText}`);
      await storeText(repo, stanza, manifest, "pg_data/backup_label", stop.backupLabel, compressType, compressLevel, filePass, fileDefaults);
      if (stop.tablespaceMap.trim() !== "")
        await storeText(repo, stanza, manifest, "pg_data/tablespace_map", stop.tablespaceMap, compressType, compressLevel, filePass, fileDefaults);
      await cluster.db.close();
      cluster.db = undefined;
    }
    manifest.backup.timestampStop = nowSeconds();

    // 7. WAL
    if (start && manifest.backup.archiveStop && (cfg.bool("archive-check") || cfg.bool("archive-copy"))) {
      const archive = archiveInfo ?? (await loadArchiveInfo(repo, stanza, { cipherPass: repoPass }))!;
      const wal = await waitForArchive(repo, stanza, archive.archiveId, { start: start.walFile, stop: manifest.backup.archiveStop, segmentSize: control.walSegmentSize }, cfg.get("archive-timeout"));
      if (cfg.bool("archive-copy"))
        await copyWalIntoBackup(repo, stanza, archive.archiveId, manifest, wal, {
          compressType, compressLevel, cipherPassWal: archive.cipherPass, cipherPassFile: filePass,
          bufferSize: cfg.get("buffer-size"), fileTemplate: fileDefaults,
        });
    }

    // 8. complete
    if (resume) {
      const keep = new Set<string>();
      for (const f of manifest.files.values()) if (f.reference === undefined) keep.add(f.bundleId !== undefined ? `bundle/${f.bundleId}` : f.name + storedExt(f, COMPRESS_EXT[compressType]));
      const removed = await removeUnlisted(repo, stanza, label, keep);
      if (removed) logInfo(`removed ${removed} stale file(s) of the interrupted backup`);
    }
    if (hardlink) await linkReferences(repo, stanza, manifest, COMPRESS_EXT[compressType]);
    // Every stored file was written without its own fsync: make the whole backup durable at once
    // before the manifest that vouches for it is written.
    if (repo.canSyncTree) await repo.syncTree(repoPath.backupDir(stanza, label));
    await finishBackup(repoPass, repo, stanza, info, manifest);
    const sizes = manifest.sizes();
    logInfo(`new backup label = ${label}`);
    logInfo(`${type} backup size = ${formatBytes(sizes.sizeDelta)}, file total = ${manifest.files.size}`);
    if (stats.pageErrorFiles) logWarn(`${stats.pageErrorFiles} file(s) have invalid page checksums (see above); the backup is complete and flagged with an error`);

    // 9. expire
    if (cfg.bool("expire-auto")) await expireAfterBackup(cfg);
    return 0;
  } finally {
    await cluster.db?.close();
    await cluster.standby?.db.close();
  }
}

/**
 * Check the cluster, the configuration and the stanza agree before anything is written. Online,
 * the primary among pg1..pgN is found and backed up; with backup-standby, the first running
 * standby of it too.
 */
async function inspectCluster(cfg: Config, info: BackupInfo, online: boolean): Promise<Cluster> {
  if (!online) {
    if (cfg.bool("backup-standby")) logWarn("backup-standby is set but the backup is offline: every file is read from pg1-path");
    const pg = await storagePg(cfg, 1, { readOnly: true });
    const control = await readPgControl(pg);
    info.checkCurrent(control.version, control.systemId);
    if (await pg.exists("postmaster.pid"))
      throw err("PgRunningError", `--no-online passed but postmaster.pid exists in '${pg.path()}': is PostgreSQL running?`, "stop PostgreSQL for an offline backup, or omit --no-online.");
    return { pg, pgIndex: 1, control, timeline: control.timeline, tablespaces: [], checksums: checksumsOn(cfg, control) };
  }
  const clusters = await connectClusters(cfg, { primaryRequired: true });
  const primary = clusters.primary!;
  const standby = cfg.bool("backup-standby") ? clusters.standbys[0] : undefined;
  for (const s of clusters.standbys) if (s !== standby) await s.db.close();
  try {
    if (cfg.bool("backup-standby") && !standby)
      throw err("DbConnectError", "unable to find standby cluster - cannot proceed", [
        "backup-standby=y reads most files from a standby: configure it as one of pg1..pgN (path, port or host) and make sure it is running and in recovery (the warnings above say why a configured one could not be used).",
        "or set backup-standby=n to read every file from the primary.",
      ]);
    const pg = await storagePg(cfg, primary.index, { readOnly: true });
    const control = await readPgControl(pg);
    info.checkCurrent(control.version, control.systemId);
    const p = primary.info;
    if (p.facts.version !== control.version)
      throw err("DbMismatchError", `version ${p.facts.version} of the running cluster does not match pg_control version ${control.version} of '${pg.path()}'`, `is pg${primary.index}-port pointing at another cluster?`);
    if (cfg.bool("archive-check")) {
      if (p.archiveMode === "off")
        throw err("ArchiveDisabledError", "archive_mode must be enabled", "set archive_mode=on and archive_command in postgresql.conf (then restart PostgreSQL), or use --no-archive-check.");
      if (p.archiveCommand === "" || p.archiveCommand === "(disabled)")
        throw err("ArchiveCommandInvalidError", "archive_command must be set", "set archive_command = 'pgbunker --stanza=NAME archive-push %p' in postgresql.conf, or use --no-archive-check.");
    }
    const cluster: Cluster = { pg, pgIndex: primary.index, control, db: primary.db, timeline: p.timeline, tablespaces: await tablespaceList(primary.db), checksums: checksumsOn(cfg, control) };
    if (standby) cluster.standby = { index: standby.index, db: standby.db, pg: await standbyOf(cfg, standby.index, primary.index, control) };
    return cluster;
  } catch (e) {
    await primary.db.close();
    await standby?.db.close();
    throw e;
  }
}

/** The standby's files, once its pg_control says it is a copy of this primary. */
async function standbyOf(cfg: Config, index: number, primaryIndex: number, primary: PgControl): Promise<Storage> {
  const pg = await storagePg(cfg, index, { readOnly: true });
  const control = await readPgControl(pg);
  if (control.systemId !== primary.systemId || control.version !== primary.version)
    throw err(
      "DbMismatchError",
      `standby pg${index} (version ${control.version}, system-id ${control.systemId}) is not a standby of primary pg${primaryIndex} (version ${primary.version}, system-id ${primary.systemId})`,
      `check pg${index}-path and pg${index}-port: they must name a standby replicating from this primary.`,
    );
  logInfo(`backup from standby pg${index}: replicated files are read there, the rest from primary pg${primaryIndex}`);
  return pg;
}

/**
 * Files read on the standby must hold every change made before the backup started, as the
 * primary's do after the start checkpoint. Replay reaching the start LSN is not enough: a standby
 * writes its dirty buffers only at a restartpoint, so it must also have made one at or after the
 * start checkpoint (CHECKPOINT on a standby asks for it; it can only happen once the checkpoint
 * record has been replayed, hence the retries).
 */
async function standbyCaughtUp(db: Db, major: number, target: bigint, timeoutSeconds: number): Promise<void> {
  const text = lsnFormat(target);
  logInfo(`wait for replay on the standby to reach ${text}`);
  let replayed = 0n;
  const reached = await waitFor(timeoutSeconds, async () => ((replayed = await replayLsn(db, major)) >= target ? true : undefined), { maxDelayMs: 250 });
  if (!reached)
    throw err("ArchiveTimeoutError", `timeout before the standby replayed to ${text}: it is at ${lsnFormat(replayed)} after ${timeoutSeconds}s`, [
      "is the standby streaming from the primary or restoring WAL from the archive? its PostgreSQL log says why it lags.",
      "raise archive-timeout if the standby is known to lag this much.",
    ]);
  logInfo(`replay on the standby reached ${text}`);
  let redo = 0n;
  const checkpointed = await waitFor(timeoutSeconds, async () => {
    await checkpoint(db);
    return (redo = await checkpointRedoLsn(db)) >= target ? true : undefined;
  }, { maxDelayMs: 500 });
  if (!checkpointed)
    throw err("ArchiveTimeoutError", `timeout before the standby made a restartpoint at or after ${text}: its last one is at ${lsnFormat(redo)}`, [
      "the standby must replay the backup's start checkpoint and write its buffers; its PostgreSQL log says what it is doing.",
      "raise archive-timeout if the standby is known to lag this much.",
    ]);
  logInfo(`the standby's restartpoint reached ${text}`);
}

/** Where the workers read each file, and how it is named in the log (as pgBackRest names it: host:path). */
function fileSource(cfg: Config, cluster: Cluster): (pgFile: string) => { spec: StorageSpec; display: string } {
  const side = (index: number, storage: Storage) => {
    const host = cfg.str(`pg${index}-host`);
    return { spec: storageSpec(cfg, "pg", index, true), display: (rel: string) => `${host ? `${host}:` : ""}${storage.path(rel)}` };
  };
  const primary = side(cluster.pgIndex, cluster.pg);
  const standby = cluster.standby && side(cluster.standby.index, cluster.standby.pg);
  return (pgFile) => {
    const s = standby && replicatedOnStandby(pgFile) ? standby : primary;
    return { spec: s.spec, display: s.display(pgFile) };
  };
}

function checksumsOn(cfg: Config, control: PgControl): boolean {
  const want = cfg.has("checksum-page") ? cfg.bool("checksum-page") : control.dataChecksumVersion > 0;
  if (want && control.dataChecksumVersion === 0) {
    logWarn("checksum-page option set to true but checksums are not enabled on the cluster, resetting to false");
    return false;
  }
  if (want && control.pageSize !== 8192) {
    logWarn(`page checksums are verified for 8KiB pages only; this cluster uses ${control.pageSize}: not verified`);
    return false;
  }
  return want;
}

/**
 * The passphrase of the backup's files. A backup set has one: a restore decrypts every file of a
 * diff/incr, those it references in its prior backups too, with the pass in the newest manifest,
 * so a diff/incr keeps its prior's pass; a resumed backup keeps the one its copied files have.
 * Only a new full gets a new one.
 */
function backupFilePass(info: BackupInfo, prior: Manifest | undefined, resumed: Manifest | undefined): string | undefined {
  if (!info.cipherPass) return undefined;
  return resumed?.cipherPass ?? prior?.cipherPass ?? randomBytes(48).toString("base64");
}

/** incr (default) and diff need a full backup of the current cluster; without one they become full. */
/**
 * The new backup's label, later than every label the repository holds. When the label had to move
 * on a second (a backup in the same second), wait for that second to begin: the next backup then
 * starts later still, so back-to-back backups never run out of labels.
 */
async function newLabel(repo: Storage, stanza: string, info: BackupInfo, type: BackupType, priorLabel: string | undefined, timestampStart: number): Promise<string> {
  const existing = [...info.labels(), ...(await labelDirs(repo, stanza)), ...(await historyLabels(repo, stanza))];
  const { label, moved } = labelCreate(type, priorLabel?.slice(0, 16), existing, new Date(timestampStart * 1000));
  if (moved) await Bun.sleep(Math.max(0, (timestampStart + 1) * 1000 - Date.now()));
  return label;
}

async function chooseType(cfg: Config, repo: Storage, stanza: string, info: BackupInfo): Promise<{ type: BackupType; prior?: Manifest }> {
  let type = cfg.str("type") as BackupType;
  const labels = info.labels().filter((l) => info.backups.get(l)!.dbId === info.current.id);
  let priorLabel: string | undefined;
  if (type === "diff") priorLabel = labels.filter((l) => info.backups.get(l)!.type === "full").at(-1);
  if (type === "incr") priorLabel = labels.at(-1);
  if (type !== "full" && !priorLabel) {
    logWarn(`no prior backup exists, ${type} backup has been changed to full`);
    type = "full";
  }
  if (!priorLabel) return { type };
  return { type, prior: await loadManifest(repo, stanza, priorLabel, info.cipherPass) };
}

function timelineChanged(prior: Manifest, timeline: number): boolean {
  const start = prior.backup.archiveStart;
  return start !== undefined && parseInt(start.slice(0, 8), 16) !== timeline;
}

function newManifest(cfg: Config, info: BackupInfo, control: PgControl, label: string, type: BackupType, prior: Manifest | undefined, timestampStart: number, start?: { lsn: string; wal: string }): Manifest {
  const m = new Manifest(
    {
      label,
      type,
      prior: prior?.backup.label,
      reference: [...(prior ? prior.backup.reference : []), label],
      lsnStart: start?.lsn,
      archiveStart: start?.wal,
      timestampStart,
    },
    { id: info.current.id, systemId: control.systemId, version: control.version, catalogVersion: control.catalogVersion, controlVersion: control.controlVersion },
  );
  m.programVersion = REPO_VERSION;
  // A diff/incr is stored as its prior is: its files and the prior's share one compress-type.
  const configured = compressTypeOf(cfg);
  const compressType = prior ? prior.compressType : configured;
  if (compressType !== configured)
    logWarn(`${type} backup cannot alter compress-type option to '${configured}', reset to value in ${prior!.backup.label}`);
  m.options = {
    "archive-check": cfg.bool("archive-check"),
    "archive-copy": cfg.bool("archive-copy"),
    "backup-standby": cfg.bool("backup-standby"),
    "buffer-size": cfg.get("buffer-size"),
    "checksum-page": control.dataChecksumVersion > 0 && (!cfg.has("checksum-page") || cfg.bool("checksum-page")),
    compress: compressType !== "none",
    "compress-level": compressType === "none" ? 0 : compressType === configured ? cfg.get("compress-level") ?? COMPRESS_LEVEL_DEFAULT[compressType] : COMPRESS_LEVEL_DEFAULT[compressType],
    "compress-level-network": cfg.get("compress-level-network"),
    "compress-type": compressType,
    delta: cfg.bool("delta"),
    hardlink: cfg.bool(cfg.repoKey("repo-hardlink")),
    online: cfg.bool("online"),
    "process-max": cfg.get("process-max"),
  };
  // An empty value means "no such key", as annotate reads it: a key given as KEY= is not stored.
  m.annotation = annotationApply(undefined, cfg.hash("annotation"));
  return m;
}

/**
 * repo-hardlink: every file this backup refers to in a prior one is also hard-linked into this
 * backup's directory, so each backup looks complete on the file system (the manifest still holds
 * the references, as pgBackRest's does). Not for bundle members or files never stored.
 */
async function linkReferences(repo: Storage, stanza: string, m: Manifest, ext: string): Promise<void> {
  let linked = 0;
  for (const f of m.files.values()) {
    if (f.reference === undefined || f.bundleId !== undefined || f.rck === undefined) continue;
    await repo.hardLink(repoPath.backupFile(stanza, f.reference, f.name, ext), repoPath.backupFile(stanza, m.backup.label, f.name, ext));
    linked++;
  }
  logInfo(`hard-linked ${linked} file(s) of prior backups into ${m.backup.label} (repo-hardlink)`);
}

/**
 * repo-block: a block incremental backup (its bundle members stored raw, as pgBackRest does), and
 * which files are stored by blocks, with which block size.
 */
function markBlockIncr(manifest: Manifest, rules: BlockRules): void {
  manifest.backup.blockIncr = true;
  manifest.backup.bundleRaw = true;
  const files = manifest.files;
  for (const r of files.indices()) {
    const f = files.at(r);
    f.blockIncr = blockIncrOf(rules, f.size, f.timestamp, manifest.backup.timestampStart);
    files.setAt(r, f);
  }
}

/**
 * A file the prior backup stored by blocks keeps that block size (its new map is compared with the
 * prior one) as long as it is at least a block long; the prior map is where the prior stored it.
 */
function blockPriorOf(f: ManifestFile, prior: ManifestFile, label: string, stanza: string): CopyExtra["blockPrior"] {
  const b = prior.blockIncr;
  if (f.blockIncr === undefined || !b || b.mapSize === 0 || f.size < b.blockSize) return undefined;
  f.blockIncr = { blockSize: b.blockSize, checksumSize: b.checksumSize, mapSize: 0 };
  const repoSize = prior.repoSize ?? prior.size;
  const repoFile = prior.bundleId !== undefined ? repoPath.bundleFile(stanza, label, prior.bundleId) : repoPath.backupFile(stanza, label, prior.name, storedExt(prior, ""));
  return { label, prior, map: { repoFile, offset: (prior.bundleOffset ?? 0) + repoSize - b.mapSize, size: b.mapSize } };
}

/**
 * Turn the manifest into the files to copy (record numbers of manifest.files), referencing what the
 * prior backup (or the interrupted run) holds; what a file to copy needs beyond its entry is in
 * `extras`, for the files that need anything.
 */
function planTasks(manifest: Manifest, prior: Manifest | undefined, delta: boolean, partial: Manifest | undefined, bundle: boolean, stanza: string): { tasks: Int32Array; extras: Map<number, CopyExtra> } {
  const files = manifest.files;
  const all = files.indices();
  const extras = new Map<number, CopyExtra>();
  let n = 0;
  for (const r of all) {
    // A bundled backup stores no empty file, and refers to none (there would be nothing to find).
    if (bundle && files.sizeAt(r) === 0) {
      all[n++] = r;
      continue;
    }
    const f = files.at(r);
    const d = decideFile(f, prior, delta);
    if (d.kind === "reference") {
      referencePrior(f, d.prior, d.label);
      files.setAt(r, f);
      continue;
    }
    const x: CopyExtra = {};
    if (d.kind === "delta") x.delta = { checksum: d.prior.checksum!, size: d.prior.size, label: d.label, prior: d.prior };
    const was = prior?.files.get(f.name);
    if (was) x.blockPrior = blockPriorOf(f, was, was.reference ?? prior!.backup.label, stanza);
    // Bundles are written again as a whole: only files stored on their own are resumed.
    const p = partial?.files.get(f.name);
    if (p && p.reference === undefined && p.bundleId === undefined && p.checksum !== undefined && p.rck !== undefined && p.size === f.size && p.timestamp === f.timestamp) {
      x.resume = { rck: p.rck, repoSize: p.repoSize ?? p.size, checksum: p.checksum, size: p.size };
      // Stored by blocks then: a kept copy keeps its map (and the block size it was cut with).
      if (p.blockIncr && p.blockIncr.mapSize > 0 && f.blockIncr) f.blockIncr = p.blockIncr;
    }
    if (x.delta || x.blockPrior || x.resume) extras.set(r, x);
    if (was || p) files.setAt(r, f);
    all[n++] = r;
  }
  return { tasks: all.subarray(0, n), extras };
}

function defaultFileOwner(m: Manifest): Pick<ManifestFile, "mode" | "user" | "group"> {
  const pgVersion = m.files.get("pg_data/PG_VERSION");
  return { mode: pgVersion?.mode ?? "0600", user: pgVersion?.user ?? "postgres", group: pgVersion?.group ?? "postgres" };
}

/** Store a small generated file (backup_label, tablespace_map) in the backup. */
async function storeText(
  repo: Storage, stanza: string, m: Manifest, name: string, text: string, compressType: CompressType, compressLevel: number, cipherPass: string | undefined,
  owner: Pick<ManifestFile, "mode" | "user" | "group">,
): Promise<void> {
  const data = new TextEncoder().encode(text);
  const filters = [
    { type: "sha1" as const, id: "file" },
    ...(compressType !== "none" ? [{ type: "compress" as const, compressType, level: compressLevel }] : []),
    ...(cipherPass ? [{ type: "encrypt" as const, pass: cipherPass }] : []),
    { type: "sha1" as const, id: "repo" },
    { type: "size" as const, id: "repo" },
  ];
  const results = await repo.put(repoPath.backupFile(stanza, m.backup.label, name, COMPRESS_EXT[compressType]), data, { filters });
  const find = (type: string, id: string) => results.find((r) => r.type === type && r.id === id) as { hash?: string; size?: number };
  m.files.set(name, {
    name,
    size: data.byteLength,
    timestamp: nowSeconds(),
    checksum: find("sha1", "file").hash,
    repoSize: find("size", "repo").size,
    rck: find("sha1", "repo").hash,
    ...owner,
  });
}

/** expire-auto: the backup is already complete and valid when this runs; its errors still fail the command. */
async function expireAfterBackup(cfg: Config): Promise<void> {
  const mod = (await import("../expire/expire.ts")) as { expireRun?: (cfg: Config) => Promise<void> };
  if (typeof mod.expireRun === "function") await mod.expireRun(cfg);
}
