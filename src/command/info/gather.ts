/**
 * Read what info shows from each repository: backup.info (clusters and backups), archive.info and
 * the archive directories (WAL min/max per archive id), and for --set the backup's manifest. A
 * repository that cannot be read becomes a status, never an exception: info must report a broken
 * stanza, not die on it.
 */
import { PgbError } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import { loadArchiveInfo, type ArchiveInfo } from "../../repo/archive-info.ts";
import { loadBackupInfo, type BackupInfo } from "../../repo/backup-info.ts";
import { loadInfoFile } from "../../repo/info-file.ts";
import { repoPath } from "../../repo/layout.ts";
import { Manifest } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";
import { repoCipherPass } from "../archive/common.ts";
import { repoCipherType } from "../shared/repos.ts";
import { storageRepo } from "../shared/storage.ts";
import { INFO_STATUS, type BackupDetail, type InfoArchive, type InfoBackup, type RepoStanza } from "./model.ts";

export interface GatherOptions {
  /** --set: only this backup, with its manifest details. */
  set?: string;
  /** --type: only backups of this type. */
  type?: string;
}

/** Stanza names found in a repository (directories under backup/). */
export async function repoStanzas(storage: Storage): Promise<string[]> {
  return (await storage.list("backup", { ignoreMissing: true }) ?? []).filter((e) => e.type === "path").map((e) => e.name).sort();
}

/** First and last WAL segment stored in an archive id (null when there is none). */
async function walMinMax(storage: Storage, stanza: string, archiveId: string): Promise<{ min: string | null; max: string | null }> {
  const dirs = await storage.names(repoPath.archiveIdPath(stanza, archiveId), /^[0-9A-F]{16}$/);
  const segments = async (dir: string) =>
    (await storage.names(`${repoPath.archiveIdPath(stanza, archiveId)}/${dir}`, /^[0-9A-F]{24}-[0-9a-f]{40}/)).map((n) => n.slice(0, 24));
  let min: string | null = null;
  for (const dir of dirs) {
    min = (await segments(dir))[0] ?? null;
    if (min !== null) break;
  }
  let max: string | null = null;
  for (const dir of [...dirs].reverse()) {
    max = (await segments(dir)).at(-1) ?? null;
    if (max !== null) break;
  }
  return { min, max };
}

async function archives(storage: Storage, stanza: string, archiveInfo: ArchiveInfo): Promise<InfoArchive[]> {
  const out: InfoArchive[] = [];
  for (const h of archiveInfo.history) {
    const archiveId = repoPath.archiveId(h.version, h.id);
    const { min, max } = await walMinMax(storage, stanza, archiveId);
    // The current cluster's archive is always shown ("none present"); older ones only with WAL.
    if (min === null && h.id !== archiveInfo.current.id) continue;
    out.push({ dbId: h.id, archiveId, version: h.version, min, max });
  }
  return out;
}

/** Databases, links, tablespaces and page-checksum errors of one backup, from its manifest. */
export async function backupDetail(storage: Storage, stanza: string, label: string, cipherPass?: string): Promise<BackupDetail> {
  const path = repoPath.manifest(stanza, label);
  const ini = await loadInfoFile(storage, path, { cipherPass, hint: `is backup ${label} complete?` });
  const m = Manifest.fromIni(ini!, storage.path(path));
  return {
    // Template and system databases are not the user's: leave out oids at or below the last system oid.
    databases: [...m.dbs.values()].filter((d) => d.id > d.lastSystemId).map((d) => ({ name: d.name, oid: d.id })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    links: [...m.targets.values()]
      .filter((t) => t.type === "link" && t.tablespaceId === undefined)
      .map((t) => ({ name: stripData(t.name), destination: t.file ? `${t.path}/${t.file}` : t.path })),
    tablespaces: m.tablespaces().map((t) => ({ name: t.tablespaceName ?? t.tablespaceId!, oid: Number(t.tablespaceId), destination: t.path })),
    errorFiles: pageErrorFiles(m),
  };
}

/** Files whose page checksums failed, in name order, without the pg_data/ prefix. */
function pageErrorFiles(m: Manifest): string[] {
  const out: string[] = [];
  for (const f of m.files.sorted()) if (f.checksumPage === false) out.push(stripData(f.name));
  return out;
}

function stripData(name: string): string {
  return name.replace(/^pg_data\//, "");
}

function errorText(e: PgbError): string {
  return [`[${e.kind}] ${e.message}`, ...e.hints.map((h) => `HINT: ${h}`)].join("\n");
}

/** One stanza in one repository. */
export async function gatherRepo(cfg: Config, key: number, stanza: string, opts: GatherOptions): Promise<RepoStanza> {
  const repo: RepoStanza = { key, cipher: repoCipherType(cfg, key), status: INFO_STATUS.ok, dbs: [], archives: [], backups: [] };
  try {
    const storage = await storageRepo(cfg, { repo: key, readOnly: true });
    if (!(await storage.exists(repoPath.backupStanza(stanza)))) return { ...repo, status: INFO_STATUS.missingStanzaPath };
    const cipherPass = repoCipherPass(cfg, key);
    const backupInfo: BackupInfo | null = await loadBackupInfo(storage, stanza, { cipherPass, ignoreMissing: true });
    if (!backupInfo) return { ...repo, status: INFO_STATUS.missingStanzaData };
    const archiveInfo = (await loadArchiveInfo(storage, stanza, { cipherPass }))!;

    repo.dbs = backupInfo.history.map((h) => ({ id: h.id, systemId: h.systemId, version: h.version, current: h.id === backupInfo.current.id }));
    repo.archives = await archives(storage, stanza, archiveInfo);
    const all = backupInfo.labels().map((l) => backupInfo.backups.get(l)!);
    if (all.length === 0) repo.status = INFO_STATUS.noBackup;
    let shown = all.filter((r) => opts.type === undefined || r.type === opts.type);
    if (opts.set !== undefined) {
      shown = shown.filter((r) => r.label === opts.set);
      if (!all.some((r) => r.label === opts.set)) return { ...repo, status: INFO_STATUS.backupMissing, dbs: [], archives: [], backups: [] };
    }
    repo.backups = [];
    for (const record of shown) {
      const b: InfoBackup = { record, repoKey: key };
      if (opts.set !== undefined) b.detail = await backupDetail(storage, stanza, record.label, backupInfo.cipherPass);
      repo.backups.push(b);
    }
    return repo;
  } catch (e) {
    if (!(e instanceof PgbError)) throw e;
    return { ...repo, status: INFO_STATUS.other, error: errorText(e), dbs: [], archives: [], backups: [] };
  }
}
