/**
 * Interrupted backups. A backup directory whose label is not in backup.info is partial: it has at
 * most the resumable manifest copy (backup.manifest.copy) saved while it ran. The newest one is
 * resumed when it is the same type on the same prior backup and cluster; its stored files are
 * reused after checking the SHA-1 of their stored bytes. Every other partial directory is removed,
 * so nothing half-written is ever trusted or left behind.
 */
import { PgbError } from "../../common/error.ts";
import { logInfo, logWarn } from "../../common/log.ts";
import type { BackupInfo, BackupType } from "../../repo/backup-info.ts";
import { InfoIni } from "../../repo/ini.ts";
import { INFO_COPY_EXT, repoPath } from "../../repo/layout.ts";
import { isLabel } from "../../repo/label.ts";
import { Manifest } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";

export interface ResumeCandidate {
  label: string;
  manifest: Manifest;
}

interface Want {
  type: BackupType;
  prior?: string;
  systemId: bigint;
  version: string;
  cipherPass?: string;
}

async function readPartialManifest(repo: Storage, stanza: string, label: string, cipherPass?: string): Promise<Manifest | string> {
  const path = repoPath.manifest(stanza, label) + INFO_COPY_EXT;
  try {
    const data = await repo.get(path, { ignoreMissing: true, filters: cipherPass ? [{ type: "decrypt", pass: cipherPass }] : [] });
    if (!data) return "it has no resumable manifest";
    return Manifest.fromIni(InfoIni.parse(new TextDecoder().decode(data), repo.path(path)));
  } catch (e) {
    return `its manifest is unreadable (${e instanceof PgbError ? e.message : String(e)})`;
  }
}

/** Find the backup to resume (if any) and remove every other partial backup directory. */
export async function prepareResume(repo: Storage, stanza: string, info: BackupInfo, want: Want, resume: boolean): Promise<ResumeCandidate | undefined> {
  const complete = new Set(info.labels());
  const partial = (await repo.names(repoPath.backupStanza(stanza))).filter((n) => isLabel(n) && !complete.has(n)).sort().reverse();
  let chosen: ResumeCandidate | undefined;
  for (const label of partial) {
    let reason: string | undefined;
    if (await repo.exists(repoPath.manifest(stanza, label))) reason = "it has a final manifest but is not in backup.info (expire or stanza repair interrupted)";
    let manifest: Manifest | undefined;
    if (!reason) {
      const m = await readPartialManifest(repo, stanza, label, want.cipherPass);
      if (typeof m === "string") reason = m;
      else manifest = m;
    }
    if (!reason && chosen) reason = "a newer partial backup is being resumed";
    if (!reason && !resume) reason = "option resume is disabled";
    if (!reason && manifest!.backup.type !== want.type) reason = `its type is ${manifest!.backup.type}, not ${want.type}`;
    if (!reason && (manifest!.backup.prior ?? "") !== (want.prior ?? "")) reason = `its prior backup is ${manifest!.backup.prior ?? "none"}, not ${want.prior ?? "none"}`;
    if (!reason && (manifest!.db.systemId !== want.systemId || manifest!.db.version !== want.version)) reason = "it was taken from another cluster";
    if (reason) {
      logWarn(`backup '${label}' cannot be resumed: ${reason}; removing it`);
      await repo.pathRemove(repoPath.backupDir(stanza, label), { recurse: true });
      continue;
    }
    logInfo(`resumable backup ${label} of same type exists -- invalid files will be removed then the backup will resume`);
    chosen = { label, manifest: manifest! };
  }
  return chosen;
}

/** Remove stored files of the backup directory that the finished manifest does not list. */
export async function removeUnlisted(repo: Storage, stanza: string, label: string, keep: Set<string>): Promise<number> {
  const dir = repoPath.backupDir(stanza, label);
  let removed = 0;
  const doomed: string[] = [];
  await repo.walk(dir, (rel, info) => {
    if (info.type === "path") return;
    if (rel === "backup.manifest" || rel === "backup.manifest.copy") return;
    if (!keep.has(rel)) doomed.push(rel);
  });
  for (const rel of doomed) {
    await repo.remove(`${dir}/${rel}`);
    removed++;
  }
  return removed;
}
