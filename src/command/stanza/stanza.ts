/**
 * stanza-create, stanza-upgrade, stanza-delete: the stanza's info files in every repository.
 *
 * A stanza is archive/STANZA/archive.info + backup/STANZA/backup.info (each with its .copy),
 * both naming the cluster (version, system id) in a history of ids. stanza-create writes them,
 * stanza-upgrade adds a history entry after a major upgrade (or a new initdb), stanza-delete
 * removes everything the stanza holds once the stanza has been stopped.
 */
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { err } from "../../common/error.ts";
import { stopFile } from "../../common/lock.ts";
import { logInfo } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import type { PgControl } from "../../postgres/control.ts";
import { ArchiveInfo, loadArchiveInfo, saveArchiveInfo } from "../../repo/archive-info.ts";
import { BackupInfo, loadBackupInfo, saveBackupInfo } from "../../repo/backup-info.ts";
import { removeInfoFile } from "../../repo/info-file.ts";
import { LABEL_RE } from "../../repo/label.ts";
import { ARCHIVE_INFO_FILE, BACKUP_INFO_FILE, INFO_COPY_EXT, MANIFEST_FILE, repoPath } from "../../repo/layout.ts";
import type { Storage } from "../../storage/storage.ts";
import { repoCipherPass, repoIndexes } from "../archive/common.ts";
import { stanzaControl } from "../shared/pg-cluster.ts";
import { storagePg, storageRepo } from "../shared/storage.ts";

interface RepoStanza {
  index: number;
  storage: Storage;
  /** Repository passphrase: info files are encrypted with it. */
  pass?: string;
  archive: ArchiveInfo | null;
  backup: BackupInfo | null;
}

async function loadStanza(cfg: Config, stanza: string, index: number): Promise<RepoStanza> {
  const storage = await storageRepo(cfg, { repo: index });
  const pass = repoCipherPass(cfg, index);
  const archive = await loadArchiveInfo(storage, stanza, { cipherPass: pass, ignoreMissing: true });
  const backup = await loadBackupInfo(storage, stanza, { cipherPass: pass, ignoreMissing: true });
  return { index, storage, pass, archive, backup };
}

function matches(db: { version: string; systemId: bigint }, pg: PgControl): boolean {
  return db.version === pg.version && db.systemId === pg.systemId;
}

/** Sub-passphrase for files encrypted under an info file (WAL, manifests), as pgBackRest makes them. */
function newCipherPass(repoPass: string | undefined): string | undefined {
  return repoPass ? randomBytes(48).toString("base64") : undefined;
}

function backupDb(pg: PgControl) {
  return { systemId: pg.systemId, version: pg.version, catalogVersion: pg.catalogVersion, controlVersion: pg.controlVersion };
}

/** Files in a stanza directory other than the info files (and their temp files). */
async function otherFiles(storage: Storage, dir: string, info: string): Promise<string[]> {
  const names = await storage.names(dir);
  return names.filter((n) => !n.startsWith(info));
}

/** stanza-create / stanza-upgrade: the cluster's pg_control, then each repository in turn. */
async function eachRepo(cfg: Config, fn: (r: RepoStanza, stanza: string, pg: PgControl) => Promise<void>): Promise<number> {
  const stanza = cfg.req("stanza");
  const pg = await stanzaControl(cfg);
  for (const index of repoIndexes(cfg)) {
    logInfo(`${cfg.command} for stanza '${stanza}' on repo${index}`);
    await fn(await loadStanza(cfg, stanza, index), stanza, pg);
  }
  return 0;
}

export async function runCreate(cfg: Config): Promise<number> {
  return eachRepo(cfg, async (r, stanza, pg) => {
    if (!r.archive || !r.backup) return createMissing(r, stanza, pg);
    if (!matches(r.archive.current, pg) || !matches(r.backup.current, pg))
      throw err("FileInvalidError", "backup and archive info files exist but do not match the database", ["is this the correct stanza?", "did an error occur during stanza-upgrade?"]);
    logInfo(`stanza '${stanza}' already exists on repo${r.index} and is valid`);
  });
}

/**
 * Write whichever info file is missing. A missing file beside an existing one is only recreated
 * when nothing else depends on it (a stanza-create killed between its two writes); otherwise the
 * repository has lost a file and that must not be papered over.
 */
async function createMissing(r: RepoStanza, stanza: string, pg: PgControl): Promise<void> {
  const existing = r.archive ?? r.backup;
  if (existing && !matches(existing.current, pg))
    throw err("FileInvalidError", `${r.archive ? ARCHIVE_INFO_FILE : BACKUP_INFO_FILE} exists on repo${r.index} but does not match the database`, ["is this the correct stanza?", "did an error occur during stanza-upgrade?"]);
  if (!r.archive) {
    const others = await otherFiles(r.storage, repoPath.archiveStanza(stanza), ARCHIVE_INFO_FILE);
    if (others.length) {
      if (r.backup) throw missingError(ARCHIVE_INFO_FILE, BACKUP_INFO_FILE, r.index);
      throw err("PathNotEmptyError", `archive directory not empty: '${r.storage.path(repoPath.archiveStanza(stanza))}' holds ${others.join(", ")}`, "the repository holds WAL of an earlier stanza: remove it (stanza-delete) or use another stanza name.");
    }
  }
  if (!r.backup) {
    const others = await otherFiles(r.storage, repoPath.backupStanza(stanza), BACKUP_INFO_FILE);
    if (others.length) {
      if (r.archive) throw missingError(BACKUP_INFO_FILE, ARCHIVE_INFO_FILE, r.index);
      throw err("PathNotEmptyError", `backup directory not empty: '${r.storage.path(repoPath.backupStanza(stanza))}' holds ${others.join(", ")}`, "the repository holds backups of an earlier stanza: remove them (stanza-delete) or use another stanza name.");
    }
  }
  if (!r.archive) await saveArchiveInfo(r.storage, stanza, new ArchiveInfo({ id: 1, systemId: pg.systemId, version: pg.version }, undefined, newCipherPass(r.pass)), r.pass);
  if (!r.backup) await saveBackupInfo(r.storage, stanza, new BackupInfo({ id: 1, ...backupDb(pg) }, undefined, newCipherPass(r.pass)), r.pass);
  if (existing) logInfo(`${r.archive ? BACKUP_INFO_FILE : ARCHIVE_INFO_FILE} was missing on repo${r.index} and has been created`);
}

function missingError(missing: string, present: string, index: number) {
  return err("FileMissingError", `${present} exists but ${missing} is missing on repo${index}`, "this may be a symptom of repository corruption!");
}

export async function runUpgrade(cfg: Config): Promise<number> {
  return eachRepo(cfg, async (r, stanza, pg) => {
    for (const [file, info] of [[ARCHIVE_INFO_FILE, r.archive], [BACKUP_INFO_FILE, r.backup]] as const)
      if (!info)
        throw err("FileMissingError", `${file} is missing for stanza '${stanza}' on repo${r.index}`, ["has a stanza-create been performed?", "stanza-upgrade records a new cluster in an existing stanza."]);
    const archive = r.archive!;
    const backup = r.backup!;
    const archiveOk = matches(archive.current, pg);
    const backupOk = matches(backup.current, pg);
    if (archiveOk && backupOk) {
      logInfo(`stanza '${stanza}' on repo${r.index} is already up to date`);
      return;
    }
    // Both histories share ids: the new entry takes the next id after the larger of the two.
    const nextId = Math.max(...archive.history.map((h) => h.id), ...backup.history.map((h) => h.id)) + 1;
    if (!archiveOk) {
      archive.current = { id: nextId, systemId: pg.systemId, version: pg.version };
      archive.history.push(archive.current);
      await saveArchiveInfo(r.storage, stanza, archive, r.pass);
    }
    if (!backupOk) {
      backup.current = { id: archiveOk ? archive.current.id : nextId, ...backupDb(pg) };
      backup.history.push(backup.current);
      await saveBackupInfo(r.storage, stanza, backup, r.pass);
    }
  });
}

export async function runDelete(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  const lockPath = cfg.req("lock-path");
  const indexes = repoIndexes(cfg);
  const repos: Storage[] = [];
  for (const index of indexes) repos.push(await storageRepo(cfg, { repo: index }));
  // Nothing to delete is not an error (a second stanza-delete, or a stanza never created).
  let exists = false;
  for (const storage of repos) exists ||= (await storage.exists(repoPath.archiveStanza(stanza))) || (await storage.exists(repoPath.backupStanza(stanza)));
  if (!exists) return 0;
  if (!existsSync(stopFile(lockPath, stanza)))
    throw err("FileMissingError", `stop file does not exist for stanza '${stanza}'`, "has the pgbunker stop command been run on this server for this stanza?");
  if (!cfg.bool("force") && cfg.has("pg1-path")) {
    const pg = await storagePg(cfg, 1, { readOnly: true });
    if (await pg.exists("postmaster.pid"))
      throw err(
        "PgRunningError",
        `postmaster.pid exists - looks like PostgreSQL is running. To delete stanza '${stanza}' on ${indexes.map((i) => `repo${i}`).join(", ")}, shut down PostgreSQL for stanza '${stanza}' and try again, or use --force.`,
      );
  }
  for (const [i, storage] of repos.entries()) {
    logInfo(`stanza-delete for stanza '${stanza}' on repo${indexes[i]}`);
    await deleteStanza(storage, stanza);
  }
  rmSync(stopFile(lockPath, stanza), { force: true });
  return 0;
}

/**
 * Remove the info files first, then every manifest, then the rest: if the deletion is interrupted,
 * what is left can never pass for a valid stanza or backup, and running stanza-delete again
 * finishes the job.
 */
async function deleteStanza(storage: Storage, stanza: string): Promise<void> {
  await removeInfoFile(storage, repoPath.backupInfo(stanza));
  await removeInfoFile(storage, repoPath.archiveInfo(stanza));
  for (const label of await storage.names(repoPath.backupStanza(stanza), LABEL_RE)) {
    const dir = repoPath.backupDir(stanza, label);
    await storage.remove(`${dir}/${MANIFEST_FILE}`, { ignoreMissing: true });
    await storage.remove(`${dir}/${MANIFEST_FILE}${INFO_COPY_EXT}`, { ignoreMissing: true });
  }
  await storage.pathRemove(repoPath.backupStanza(stanza), { recurse: true, ignoreMissing: true });
  await storage.pathRemove(repoPath.archiveStanza(stanza), { recurse: true, ignoreMissing: true });
}
