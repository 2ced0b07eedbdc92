/**
 * What the info command knows about a stanza, gathered from each repository, before rendering as
 * text or json. Plain data, so both renderers are pure functions tested without a repository.
 *
 * Status codes are pgBackRest's (monitoring keys on them):
 *   0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza data,
 *   4 different across repos (text: mixed), 5 database mismatch across repos,
 *   6 requested backup not found, 99 other (the error is in the repository's status message).
 */
import type { BackupRecord } from "../../repo/backup-info.ts";

export const INFO_STATUS = {
  ok: { code: 0, message: "ok" },
  missingStanzaPath: { code: 1, message: "missing stanza path" },
  noBackup: { code: 2, message: "no valid backups" },
  missingStanzaData: { code: 3, message: "missing stanza data" },
  mixed: { code: 4, message: "different across repos" },
  dbMismatch: { code: 5, message: "database mismatch across repos" },
  backupMissing: { code: 6, message: "requested backup not found" },
  other: { code: 99, message: "other" },
} as const;

export interface Status {
  code: number;
  message: string;
}

export interface InfoDb {
  /** backup.info history id. */
  id: number;
  systemId: bigint;
  version: string;
  current: boolean;
}

/** WAL held in one archive id of one repository. */
export interface InfoArchive {
  /** History id of the cluster (the N of VERSION-N). */
  dbId: number;
  archiveId: string;
  version: string;
  /** First and last segment stored, null when there is none. */
  min: string | null;
  max: string | null;
}

/** Details read from a backup's manifest for --set. */
export interface BackupDetail {
  databases: { name: string; oid: number }[];
  links: { name: string; destination: string }[];
  tablespaces: { name: string; oid: number; destination: string }[];
  /** Files with page checksum errors (manifest names without pg_data/). */
  errorFiles: string[];
}

export interface InfoBackup {
  record: BackupRecord;
  repoKey: number;
  detail?: BackupDetail;
}

export interface RepoStanza {
  key: number;
  cipher: "none" | "aes-256-cbc";
  status: Status;
  /** Error text for status 99 ("[Kind] message\nHINT: ..."). */
  error?: string;
  dbs: InfoDb[];
  archives: InfoArchive[];
  backups: InfoBackup[];
}

export interface StanzaInfo {
  name: string;
  repos: RepoStanza[];
  /** A backup, expire or stanza command holds the stanza's backup lock on this host. */
  lock: { held: boolean; percentComplete?: number };
  /** A stop file exists for this stanza (or for all stanzas). pgbunker addition. */
  stopped: boolean;
}

/** Status of a stanza over all its repositories. */
export function stanzaStatus(s: StanzaInfo): Status {
  const repos = s.repos;
  if (repos.length === 1) {
    const st = repos[0]!.status;
    return st.code === INFO_STATUS.other.code ? INFO_STATUS.other : st;
  }
  const codes = new Set(repos.map((r) => r.status.code));
  if (codes.size > 1) return INFO_STATUS.mixed;
  const code = repos[0]!.status.code;
  if (code === INFO_STATUS.ok.code || code === INFO_STATUS.noBackup.code) {
    // Every repository must hold the same current cluster.
    const currents = new Set(repos.map((r) => {
      const c = r.dbs.find((d) => d.current);
      return c ? `${c.version}/${c.systemId}` : "";
    }));
    const histories = new Set(repos.map((r) => r.dbs.map((d) => `${d.id}:${d.version}/${d.systemId}`).join(",")));
    if (currents.size > 1 || histories.size > 1) return INFO_STATUS.dbMismatch;
  }
  return code === INFO_STATUS.other.code ? INFO_STATUS.other : repos[0]!.status;
}

/** One cipher for all repositories, or "mixed". */
export function stanzaCipher(s: StanzaInfo): string {
  const ciphers = new Set(s.repos.map((r) => r.cipher));
  return ciphers.size === 1 ? [...ciphers][0]! : "mixed";
}

/** Backups across repositories: by start time, then label, then repository. */
export function backupOrder(a: InfoBackup, b: InfoBackup): number {
  const ra = a.record, rb = b.record;
  return ra.timestampStart - rb.timestampStart || (ra.label < rb.label ? -1 : ra.label > rb.label ? 1 : 0) || a.repoKey - b.repoKey;
}
