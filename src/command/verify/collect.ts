/**
 * What verify has to read: every WAL file of every archive id and every file every backup's
 * manifest names, as verify-file jobs (a file referenced by several backups is read once), plus
 * the files nothing refers to. Listing only; the reading happens in the workers.
 */
import { PgbError } from "../../common/error.ts";
import { COMPRESS_EXT, compressTypeOfName } from "../../filter/compress.ts";
import type { ArchiveInfo } from "../../repo/archive-info.ts";
import type { BackupInfo } from "../../repo/backup-info.ts";
import { readInfoStream } from "../../repo/info-file.ts";
import { isLabel } from "../../repo/label.ts";
import { ARCHIVE_INFO_FILE, archiveFileOf, BACKUP_INFO_FILE, HISTORY_DIR, INFO_COPY_EXT, isTempFile, MANIFEST_FILE, parseArchiveId, repoPath, storedExt } from "../../repo/layout.ts";
import { Manifest, type ManifestFile } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";
import type { StorageSpec } from "../shared/storage.ts";
import type { VerifyBlockParams, VerifyBlockRef } from "./block.ts";
import type { VerifyFileParams } from "./file.ts";

/** One stored WAL file. */
export interface WalEntry {
  archiveId: string;
  segment: string;
  partial: boolean;
  /** Path relative to archive/STANZA. */
  file: string;
  job: VerifyFileParams;
}

export interface ArchiveListing {
  archiveId: string;
  wal: WalEntry[];
  orphans: string[];
}

/**
 * Read and compare an info file's main and copy: both must load (problems); a copy that differs
 * from a valid main file is what a write interrupted between the two leaves (warnings).
 */
export async function infoFileProblems(storage: Storage, path: string, cipherPass?: string): Promise<{ problems: string[]; warnings: string[] }> {
  const hashes: (string | undefined)[] = [];
  const problems: string[] = [];
  for (const p of [path, path + INFO_COPY_EXT]) {
    try {
      hashes.push(await readInfoStream(storage, p, () => {}, { cipherPass }));
    } catch (e) {
      if (!(e instanceof PgbError)) throw e;
      problems.push(e.kind === "FileMissingError" ? `${p}: missing` : `${p}: ${e.message}`);
      hashes.push(undefined);
    }
  }
  const warnings = hashes[0] !== undefined && hashes[1] !== undefined && hashes[0] !== hashes[1] ? [`${path + INFO_COPY_EXT}: differs from ${path.split("/").pop()}`] : [];
  return { problems, warnings };
}

/**
 * Every WAL file of an archive id, as jobs; names that do not belong there are orphans
 * (archiveFileOf decides, as for archive-push). Temporary files are reported apart (stanzaTempFiles).
 */
export async function listArchiveId(storage: Storage, spec: StorageSpec, stanza: string, archiveId: string, walPass?: string): Promise<ArchiveListing> {
  const base = repoPath.archiveIdPath(stanza, archiveId);
  const out: ArchiveListing = { archiveId, wal: [], orphans: [] };
  for (const e of (await storage.list(base, { ignoreMissing: true })) ?? []) {
    if (e.type === "path" && /^[0-9A-F]{16}$/.test(e.name)) continue;
    if (e.type === "file" && archiveFileOf(e.name)) continue;
    out.orphans.push(`${base}/${e.name}`);
  }
  for (const dir of await storage.names(base, /^[0-9A-F]{16}$/)) {
    for (const name of await storage.names(`${base}/${dir}`)) {
      const stored = archiveFileOf(`${dir}/${name}`);
      if (!stored) out.orphans.push(`${base}/${dir}/${name}`);
      if (stored?.kind !== "segment" && stored?.kind !== "partial") continue;
      const partial = stored.kind === "partial";
      out.wal.push({
        archiveId,
        segment: stored.wal.slice(0, 24),
        partial,
        file: `${archiveId}/${dir}/${name}`,
        job: {
          storage: spec,
          path: `${base}/${dir}/${name}`,
          compressType: compressTypeOfName(name),
          cipherPass: walPass,
          sha1: stored.sha1,
          walHeader: !partial,
        },
      });
    }
  }
  return out;
}

/** Archive ids on disk that archive.info does not know, and other strays in archive/STANZA (temporary files aside). */
export async function archiveStrays(storage: Storage, stanza: string, archiveInfo: ArchiveInfo): Promise<string[]> {
  const known = new Set(archiveInfo.archiveIds());
  const base = repoPath.archiveStanza(stanza);
  const out: string[] = [];
  for (const e of (await storage.list(base, { ignoreMissing: true })) ?? []) {
    if (e.name === ARCHIVE_INFO_FILE || e.name === ARCHIVE_INFO_FILE + INFO_COPY_EXT || isTempFile(e.name)) continue;
    if (e.type === "path" && parseArchiveId(e.name) && known.has(e.name)) continue;
    out.push(`${base}/${e.name}`);
  }
  return out;
}

/** Entries of backup/STANZA that are neither info files, the latest link, history, backups nor temporary files. */
export async function backupStrays(storage: Storage, stanza: string): Promise<string[]> {
  const base = repoPath.backupStanza(stanza);
  const allowed = new Set([BACKUP_INFO_FILE, BACKUP_INFO_FILE + INFO_COPY_EXT, "latest", HISTORY_DIR]);
  return ((await storage.list(base, { ignoreMissing: true })) ?? [])
    .filter((e) => !allowed.has(e.name) && !isTempFile(e.name) && !(e.type === "path" && isLabel(e.name)))
    .map((e) => `${base}/${e.name}`)
    .sort();
}

/**
 * Where one manifest file's stored bytes are and how verify names them. Made one at a time from the
 * manifest (backupFiles), so no list of every file exists; the job params only when a worker takes it.
 */
export interface StoredFile {
  file: ManifestFile;
  /** Label whose directory (or bundle) stores the bytes: the file's reference, else its own backup. */
  stored: string;
  /** How they were stored: the storing backup's manifest, this backup's own when that one has none. */
  holder: ManifestLoad;
  /** Job key: the same stored file referenced from several backups is read once. */
  key: string;
  /** Display path relative to backup/STANZA: LABEL/pg_data/...[.ext]. */
  display: string;
  /** Nothing is stored (an empty file in a bundled backup): nothing to read, always valid. */
  empty: boolean;
}

export interface ManifestLoad {
  manifest?: Manifest;
  /** Passphrase of this backup's files. */
  filePass?: string;
  notes: string[];
  /** Not damage: the copy differs from the main file (a write interrupted between the two). */
  warnings: string[];
  /** Neither the manifest nor its copy loaded (copyOnly: only the copy exists). */
  missing: boolean;
  /** The backup bundles small files (repo-bundle): empty files are then not stored at all. */
  bundle?: boolean;
  copyOnly: boolean;
}

/** A backup's manifest: the main file, falling back to the copy, with notes on what was wrong. */
export async function loadManifestChecked(storage: Storage, stanza: string, label: string, backupInfo: BackupInfo): Promise<ManifestLoad> {
  const path = repoPath.manifest(stanza, label);
  const notes: string[] = [];
  // The main file is parsed into the Manifest; the copy only checked and hashed (parsed only when
  // the main one fails), so one manifest is in memory, never a text or an InfoIni of every file.
  let manifest: Manifest | undefined;
  const hashes: (string | undefined)[] = [];
  let exists = 0;
  for (const p of [path, path + INFO_COPY_EXT]) {
    const name = p.split("/").pop()!;
    const reader = manifest ? undefined : Manifest.reader(storage.path(path));
    try {
      hashes.push(await readInfoStream(storage, p, reader?.visit ?? (() => {}), { cipherPass: backupInfo.cipherPass }));
      exists++;
      if (reader) manifest = reader.result();
    } catch (e) {
      if (!(e instanceof PgbError)) throw e;
      hashes.push(undefined);
      if (e.kind === "FileMissingError") notes.push(`${name} is missing`);
      else {
        exists++;
        notes.push(`${name} is invalid: ${e.message}`);
      }
    }
  }
  const warnings = hashes[0] !== undefined && hashes[1] !== undefined && hashes[0] !== hashes[1] ? [`${MANIFEST_FILE}${INFO_COPY_EXT} differs from ${MANIFEST_FILE}`] : [];
  // The state of a backup in progress: only the copy, which the backup rewrites as it goes.
  const copyOnly = notes[0] === `${MANIFEST_FILE} is missing` && exists === 1;
  if (!manifest) return { notes, warnings, missing: true, copyOnly };
  return { manifest, filePass: manifest.cipherPass, notes, warnings, missing: false, copyOnly, bundle: manifest.backup.bundle === true };
}

/** A block-incremental file is stored as a block map over blocks of this and earlier backups. */
export function isBlockIncremental(f: ManifestFile): boolean {
  return f.blockIncr !== undefined && f.blockIncr.mapSize > 0;
}

/**
 * A backup's files in manifest order, where each is stored. Files stored in an earlier backup are
 * read from there; `manifests` gives the manifest (and file passphrase) of each backup, since a
 * referenced file is stored the way its own backup stored it.
 */
export function* backupFiles(stanza: string, label: string, manifests: ReadonlyMap<string, ManifestLoad>): Generator<StoredFile> {
  const own = manifests.get(label)!;
  for (const f of own.manifest!.files.sorted()) yield locateFile(stanza, label, f, manifests);
}

/** Where file `f` of backup `label`'s manifest is stored (see StoredFile). */
export function locateFile(stanza: string, label: string, f: ManifestFile, manifests: ReadonlyMap<string, ManifestLoad>): StoredFile {
  const stored = f.reference ?? label;
  const holder = manifests.get(stored)?.manifest ? manifests.get(stored)! : manifests.get(label)!;
  if (f.size === 0 && f.bundleId === undefined && f.rck === undefined && holder.bundle)
    return { file: f, stored, holder, key: `${stored}/${f.name}`, display: `${stored}/${f.name}`, empty: true };
  if (f.bundleId !== undefined) {
    const path = repoPath.bundleFile(stanza, stored, f.bundleId);
    return { file: f, stored, holder, key: `${path}@${f.bundleOffset ?? 0}`, display: `${stored}/bundle/${f.bundleId}:${f.bundleOffset ?? 0} (${f.name})`, empty: false };
  }
  const ext = storedExt(f, COMPRESS_EXT[holder.manifest!.compressType]);
  return { file: f, stored, holder, key: repoPath.backupFile(stanza, stored, f.name, ext), display: `${stored}/${f.name}${ext}`, empty: false };
}

/**
 * Stored bytes the repository recorded for a file, when it recorded them (repo-size; an
 * uncompressed, unencrypted file is stored as is). One place, as the job checks it and verify
 * orders and counts progress by it.
 */
export function storedSize(s: StoredFile): number | undefined {
  return s.file.repoSize ?? (s.holder.manifest!.compressType === "none" && !s.holder.filePass ? s.file.size : undefined);
}

/** The job that checks one stored file (not for an empty one: nothing is stored). */
export function fileJob(spec: StorageSpec, stanza: string, s: StoredFile, manifests: ReadonlyMap<string, ManifestLoad>): VerifyFileParams {
  const { file: f, holder } = s;
  const blockIncremental = isBlockIncremental(f);
  const base: Omit<VerifyFileParams, "path"> = {
    storage: spec,
    compressType: holder.manifest!.compressType,
    cipherPass: holder.filePass,
    size: blockIncremental ? undefined : f.size,
    // Files of size zero carry no checksum: the SHA-1 of nothing is what must come out.
    sha1: blockIncremental ? undefined : (f.checksum ?? (f.size === 0 ? "da39a3ee5e6b4b0d3255bfef95601890afd80709" : undefined)),
    repoSize: storedSize(s),
    repoSha1: f.rck,
    raw: blockIncremental,
    cipherRaw: f.bundleId !== undefined && holder.manifest!.backup.bundleRaw === true,
    block: blockIncremental ? blockParams(stanza, f, holder, manifests) : undefined,
  };
  if (f.bundleId !== undefined) return { ...base, path: repoPath.bundleFile(stanza, s.stored, f.bundleId), offset: f.bundleOffset ?? 0, limit: f.repoSize ?? f.size };
  return { ...base, path: s.key };
}

/**
 * What the block check of a block-incremental file needs: its map's sizes and, for each backup of
 * the storing backup's reference list (a map's reference is an index into it), where that backup
 * stores the file's super blocks: its stored bytes before its own map. Resolved here, where the
 * manifests are, so the job reads only repository bytes.
 */
function blockParams(stanza: string, f: ManifestFile, holder: ManifestLoad, manifests: ReadonlyMap<string, ManifestLoad>): VerifyBlockParams {
  const bi = f.blockIncr!;
  const refs: VerifyBlockRef[] = holder.manifest!.backup.reference.map((label) => {
    const load = manifests.get(label);
    if (!load?.manifest) return { label, problem: "has no loadable manifest" };
    const g = load.manifest.files.get(f.name);
    if (!g || (g.reference !== undefined && g.reference !== label)) return { label, problem: `does not store ${f.name}` };
    const mapSize = g.blockIncr?.mapSize ?? 0;
    const stored = g.repoSize ?? g.size;
    const compressType = load.manifest.compressType;
    if (g.bundleId !== undefined) {
      const start = g.bundleOffset ?? 0;
      return { label, path: repoPath.bundleFile(stanza, label, g.bundleId), bundleId: g.bundleId, start, end: start + stored - mapSize, compressType, cipherPass: load.filePass };
    }
    const path = repoPath.backupFile(stanza, label, f.name, storedExt(g, COMPRESS_EXT[compressType]));
    return { label, path, bundleId: 0, start: 0, end: stored - mapSize, compressType, cipherPass: load.filePass };
  });
  return { name: f.name, blockSize: bi.blockSize, checksumSize: bi.checksumSize, mapSize: bi.mapSize, fileSize: f.size, refs };
}

/** Files in a backup's directory that its manifest does not account for. */
export async function backupDirOrphans(storage: Storage, stanza: string, label: string, load: ManifestLoad): Promise<string[]> {
  const m = load.manifest!;
  const ext = COMPRESS_EXT[m.compressType];
  const expected = new Set([MANIFEST_FILE, MANIFEST_FILE + INFO_COPY_EXT]);
  // pgBackRest links each tablespace into the backup's pg_data/pg_tblspc.
  for (const t of m.tablespaces()) expected.add(`pg_data/pg_tblspc/${t.tablespaceId}`);
  for (const f of m.files.values()) {
    if (f.reference !== undefined) continue;
    if (f.bundleId !== undefined) expected.add(`bundle/${f.bundleId}`);
    else expected.add(`${f.name}${storedExt(f, ext)}`);
  }
  const out: string[] = [];
  const dir = repoPath.backupDir(stanza, label);
  await storage.walk(dir, (rel, info) => {
    if (info.type !== "path" && !expected.has(rel)) out.push(`${dir}/${rel}`);
  });
  return out;
}
