/**
 * archive.info: which PostgreSQL clusters (system id + major version) the stanza's WAL archive
 * has held. Each history entry names an archive id directory "VERSION-ID". The system id sits
 * under the key "db-id" in history entries: a quirk of the format kept for compatibility.
 */
import { err } from "../common/error.ts";
import type { Storage } from "../storage/storage.ts";
import { InfoIni } from "./ini.ts";
import { loadInfoFile, saveInfoFile } from "./info-file.ts";
import { repoPath } from "./layout.ts";

export interface ArchiveDb {
  id: number;
  systemId: bigint;
  version: string;
}

export class ArchiveInfo {
  current: ArchiveDb;
  /** Oldest first. */
  history: ArchiveDb[];
  cipherPass?: string;

  constructor(current: ArchiveDb, history: ArchiveDb[] = [current], cipherPass?: string) {
    this.current = current;
    this.history = history;
    this.cipherPass = cipherPass;
  }

  static fromIni(ini: InfoIni, file = "archive.info"): ArchiveInfo {
    const current: ArchiveDb = {
      id: Number(ini.need("db", "db-id", file)),
      systemId: BigInt(ini.need("db", "db-system-id", file) as bigint | number),
      version: String(ini.need("db", "db-version", file)),
    };
    const history = ini.keys("db:history").map((k) => {
      const v = ini.value("db:history", k) as { "db-id": bigint | number; "db-version": string };
      return { id: Number(k), systemId: BigInt(v["db-id"]), version: String(v["db-version"]) };
    }).sort((a, b) => a.id - b.id);
    const pass = ini.value("cipher", "cipher-pass");
    return new ArchiveInfo(current, history, typeof pass === "string" ? pass : undefined);
  }

  toIni(): InfoIni {
    const ini = new InfoIni();
    ini.setValue("db", "db-id", this.current.id);
    ini.setValue("db", "db-system-id", this.current.systemId);
    ini.setValue("db", "db-version", this.current.version);
    for (const h of this.history) ini.setValue("db:history", String(h.id), { "db-id": h.systemId, "db-version": h.version });
    if (this.cipherPass) ini.setValue("cipher", "cipher-pass", this.cipherPass);
    return ini;
  }

  get archiveId(): string {
    return repoPath.archiveId(this.current.version, this.current.id);
  }

  /** Newest archive id whose cluster matches, or undefined. */
  findArchiveId(version: string, systemId: bigint): string | undefined {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const h = this.history[i]!;
      if (h.version === version && h.systemId === systemId) return repoPath.archiveId(h.version, h.id);
    }
    return undefined;
  }

  /** Archive ids of every history entry for this cluster, newest first (archive-get looks in each). */
  archiveIdsFor(version: string, systemId: bigint): string[] {
    return this.history.filter((h) => h.version === version && h.systemId === systemId).reverse().map((h) => repoPath.archiveId(h.version, h.id));
  }

  /** Every archive id, oldest first. */
  archiveIds(): string[] {
    return this.history.map((h) => repoPath.archiveId(h.version, h.id));
  }

  /** Record a new cluster (stanza-upgrade): a new history id becomes current. */
  add(version: string, systemId: bigint): ArchiveDb {
    const id = Math.max(0, ...this.history.map((h) => h.id)) + 1;
    this.current = { id, systemId, version };
    this.history.push(this.current);
    return this.current;
  }

  /** Refuse a cluster that is not the stanza's current one. */
  checkCurrent(version: string, systemId: bigint, what = "archive"): void {
    if (this.current.version !== version || this.current.systemId !== systemId)
      throw err(
        "ArchiveMismatchError",
        `PostgreSQL version ${version}, system-id ${systemId} do not match stanza version ${this.current.version}, system-id ${this.current.systemId}`,
        what === "archive"
          ? "are you archiving to the correct stanza?"
          : "has the cluster been upgraded or replaced? if so, run stanza-upgrade.",
      );
  }
}

export async function loadArchiveInfo(storage: Storage, stanza: string, opts: { cipherPass?: string; ignoreMissing?: boolean } = {}): Promise<ArchiveInfo | null> {
  const ini = await loadInfoFile(storage, repoPath.archiveInfo(stanza), {
    cipherPass: opts.cipherPass,
    ignoreMissing: opts.ignoreMissing,
    hint: ["archive.info cannot be opened but is required to push/get WAL segments.", "is archive_command configured correctly in postgresql.conf?", "has a stanza-create been performed?"],
  });
  return ini ? ArchiveInfo.fromIni(ini, storage.path(repoPath.archiveInfo(stanza))) : null;
}

export async function saveArchiveInfo(storage: Storage, stanza: string, info: ArchiveInfo, cipherPass?: string): Promise<void> {
  await saveInfoFile(storage, repoPath.archiveInfo(stanza), info.toIni(), cipherPass);
}
