/**
 * backup.info: the stanza's cluster history and the list of complete backups. A backup becomes
 * valid only when its entry lands here (after its manifest is written), so a killed backup is
 * never listed. Entries are kept as their JSON objects, so keys this version does not know
 * survive a read-modify-write.
 */
import { err } from "../common/error.ts";
import type { JsonValue } from "../common/json.ts";
import type { Storage } from "../storage/storage.ts";
import type { Annotation } from "./annotation.ts";
import { InfoIni, REPO_FORMAT, REPO_VERSION } from "./ini.ts";
import { loadInfoFile, saveInfoFile } from "./info-file.ts";
import { repoPath } from "./layout.ts";

export interface BackupDb {
  id: number;
  systemId: bigint;
  version: string;
  catalogVersion: number;
  controlVersion: number;
}

export type BackupType = "full" | "diff" | "incr";

/** One backup:current entry, with the keys pgBackRest writes. */
export interface BackupRecord {
  label: string;
  type: BackupType;
  prior?: string;
  /** Earlier backups this one references (not itself). */
  reference: string[];
  archiveStart?: string;
  archiveStop?: string;
  lsnStart?: string;
  lsnStop?: string;
  timestampStart: number;
  timestampStop: number;
  size: number;
  sizeDelta: number;
  repoSize: number;
  repoSizeDelta: number;
  /**
   * Block incremental backups only: bytes of block maps in the whole set and in this backup's own
   * files (backup-info-repo-size-map[-delta]); pgBackRest's info then shows these in place of the set's
   * repo size, which no longer says what a restore reads.
   */
  repoSizeMap?: number;
  repoSizeMapDelta?: number;
  dbId: number;
  error?: boolean;
  annotation?: Annotation;
  options: { archiveCheck: boolean; archiveCopy: boolean; backupStandby: boolean; checksumPage: boolean; compress: boolean; hardlink: boolean; online: boolean };
  /** backrest-format / backrest-version of the program that wrote the backup. */
  format: number;
  programVersion: string;
}

export function recordToJson(r: BackupRecord): Record<string, JsonValue | undefined> {
  return {
    "backrest-format": r.format,
    "backrest-version": r.programVersion,
    "backup-annotation": r.annotation,
    "backup-archive-start": r.archiveStart,
    "backup-archive-stop": r.archiveStop,
    "backup-error": r.error,
    "backup-info-repo-size": r.repoSize,
    "backup-info-repo-size-delta": r.repoSizeDelta,
    "backup-info-repo-size-map": r.repoSizeMap,
    "backup-info-repo-size-map-delta": r.repoSizeMap === undefined ? undefined : r.repoSizeMapDelta ?? 0,
    "backup-info-size": r.size,
    "backup-info-size-delta": r.sizeDelta,
    "backup-lsn-start": r.lsnStart,
    "backup-lsn-stop": r.lsnStop,
    "backup-prior": r.prior,
    "backup-reference": r.reference.length ? r.reference : undefined,
    "backup-timestamp-start": r.timestampStart,
    "backup-timestamp-stop": r.timestampStop,
    "backup-type": r.type,
    "db-id": r.dbId,
    "option-archive-check": r.options.archiveCheck,
    "option-archive-copy": r.options.archiveCopy,
    "option-backup-standby": r.options.backupStandby,
    "option-checksum-page": r.options.checksumPage,
    "option-compress": r.options.compress,
    "option-hardlink": r.options.hardlink,
    "option-online": r.options.online,
  };
}

export function recordFromJson(label: string, o: Record<string, JsonValue>): BackupRecord {
  const s = (k: string) => (o[k] === undefined || o[k] === null ? undefined : String(o[k]));
  const n = (k: string) => Number(o[k] ?? 0);
  const b = (k: string) => o[k] === true;
  return {
    label,
    type: String(o["backup-type"]) as BackupType,
    prior: s("backup-prior"),
    reference: Array.isArray(o["backup-reference"]) ? (o["backup-reference"] as string[]) : [],
    archiveStart: s("backup-archive-start"),
    archiveStop: s("backup-archive-stop"),
    lsnStart: s("backup-lsn-start"),
    lsnStop: s("backup-lsn-stop"),
    timestampStart: n("backup-timestamp-start"),
    timestampStop: n("backup-timestamp-stop"),
    size: n("backup-info-size"),
    sizeDelta: n("backup-info-size-delta"),
    repoSize: n("backup-info-repo-size"),
    repoSizeDelta: n("backup-info-repo-size-delta"),
    repoSizeMap: o["backup-info-repo-size-map"] === undefined ? undefined : n("backup-info-repo-size-map"),
    repoSizeMapDelta: o["backup-info-repo-size-map"] === undefined ? undefined : n("backup-info-repo-size-map-delta"),
    dbId: n("db-id"),
    error: o["backup-error"] === undefined ? undefined : b("backup-error"),
    annotation: (o["backup-annotation"] as Annotation | undefined) ?? undefined,
    options: {
      archiveCheck: b("option-archive-check"),
      archiveCopy: b("option-archive-copy"),
      backupStandby: b("option-backup-standby"),
      checksumPage: b("option-checksum-page"),
      compress: b("option-compress"),
      hardlink: b("option-hardlink"),
      online: b("option-online"),
    },
    format: Number(o["backrest-format"] ?? REPO_FORMAT),
    programVersion: String(o["backrest-version"] ?? REPO_VERSION),
  };
}

export class BackupInfo {
  current: BackupDb;
  history: BackupDb[];
  /** label → entry, in label order. */
  readonly backups = new Map<string, BackupRecord>();
  /** Raw entries, to keep keys we do not model when rewriting the file. */
  readonly #raw = new Map<string, Record<string, JsonValue>>();
  cipherPass?: string;

  constructor(current: BackupDb, history: BackupDb[] = [current], cipherPass?: string) {
    this.current = current;
    this.history = history;
    this.cipherPass = cipherPass;
  }

  static fromIni(ini: InfoIni, file = "backup.info"): BackupInfo {
    const current: BackupDb = {
      id: Number(ini.need("db", "db-id", file)),
      systemId: BigInt(ini.need("db", "db-system-id", file) as bigint | number),
      version: String(ini.need("db", "db-version", file)),
      catalogVersion: Number(ini.need("db", "db-catalog-version", file)),
      controlVersion: Number(ini.need("db", "db-control-version", file)),
    };
    const history = ini.keys("db:history").map((k) => {
      const v = ini.value("db:history", k) as Record<string, JsonValue>;
      return {
        id: Number(k),
        systemId: BigInt(v["db-system-id"] as bigint | number),
        version: String(v["db-version"]),
        catalogVersion: Number(v["db-catalog-version"]),
        controlVersion: Number(v["db-control-version"]),
      };
    }).sort((a, b) => a.id - b.id);
    const pass = ini.value("cipher", "cipher-pass");
    const info = new BackupInfo(current, history, typeof pass === "string" ? pass : undefined);
    for (const label of ini.keys("backup:current")) {
      const o = ini.value("backup:current", label) as Record<string, JsonValue>;
      info.#raw.set(label, o);
      info.backups.set(label, recordFromJson(label, o));
    }
    return info;
  }

  toIni(): InfoIni {
    const ini = new InfoIni();
    ini.setValue("db", "db-catalog-version", this.current.catalogVersion);
    ini.setValue("db", "db-control-version", this.current.controlVersion);
    ini.setValue("db", "db-id", this.current.id);
    ini.setValue("db", "db-system-id", this.current.systemId);
    ini.setValue("db", "db-version", this.current.version);
    for (const h of this.history)
      ini.setValue("db:history", String(h.id), {
        "db-catalog-version": h.catalogVersion,
        "db-control-version": h.controlVersion,
        "db-system-id": h.systemId,
        "db-version": h.version,
      });
    for (const [label, r] of this.backups) ini.setValue("backup:current", label, { ...this.#raw.get(label), ...recordToJson(r) });
    if (this.cipherPass) ini.setValue("cipher", "cipher-pass", this.cipherPass);
    return ini;
  }

  /** Labels in order (oldest first). */
  labels(): string[] {
    return [...this.backups.keys()].sort();
  }

  add(r: BackupRecord): void {
    this.backups.set(r.label, r);
  }

  remove(label: string): void {
    this.backups.delete(label);
    this.#raw.delete(label);
  }

  /** Record a new cluster (stanza-upgrade). */
  addDb(db: Omit<BackupDb, "id">): BackupDb {
    const id = Math.max(0, ...this.history.map((h) => h.id)) + 1;
    this.current = { id, ...db };
    this.history.push(this.current);
    return this.current;
  }

  /** History entry by id. */
  db(id: number): BackupDb | undefined {
    return this.history.find((h) => h.id === id);
  }

  checkCurrent(version: string, systemId: bigint): void {
    if (this.current.version !== version || this.current.systemId !== systemId)
      throw err(
        "BackupMismatchError",
        `PostgreSQL version ${version}, system-id ${systemId} do not match stanza version ${this.current.version}, system-id ${this.current.systemId}`,
        "is this the correct stanza? has the cluster been upgraded? if so, run stanza-upgrade.",
      );
  }
}

export async function loadBackupInfo(storage: Storage, stanza: string, opts: { cipherPass?: string; ignoreMissing?: boolean; hint?: string[] } = {}): Promise<BackupInfo | null> {
  const ini = await loadInfoFile(storage, repoPath.backupInfo(stanza), {
    cipherPass: opts.cipherPass,
    ignoreMissing: opts.ignoreMissing,
    hint: opts.hint ?? ["backup.info cannot be opened and is required for this command.", "has a stanza-create been performed?"],
  });
  return ini ? BackupInfo.fromIni(ini, storage.path(repoPath.backupInfo(stanza))) : null;
}

export async function saveBackupInfo(storage: Storage, stanza: string, info: BackupInfo, cipherPass?: string): Promise<void> {
  await saveInfoFile(storage, repoPath.backupInfo(stanza), info.toIni(), cipherPass);
}
