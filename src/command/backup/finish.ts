/**
 * Completing a backup, in the order that keeps the repository consistent if the process dies at
 * any point: final manifest (main + copy), then the backup.info entry (the backup is valid from this
 * write on), then the conveniences: the `latest` link and the manifest copy in backup.history.
 */
import { logWarn } from "../../common/log.ts";
import type { BackupInfo, BackupRecord } from "../../repo/backup-info.ts";
import { saveBackupInfo } from "../../repo/backup-info.ts";
import { REPO_FORMAT, REPO_VERSION } from "../../repo/ini.ts";
import { repoPath } from "../../repo/layout.ts";
import { writePieces } from "../../repo/info-file.ts";
import { saveManifest, type Manifest } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";

export function backupRecord(m: Manifest, pageErrors: boolean): BackupRecord {
  const sizes = m.sizes();
  const b = m.backup;
  const opt = m.options;
  return {
    label: b.label,
    type: b.type,
    prior: b.prior,
    reference: b.reference.filter((l) => l !== b.label),
    archiveStart: b.archiveStart,
    archiveStop: b.archiveStop,
    lsnStart: b.lsnStart,
    lsnStop: b.lsnStop,
    timestampStart: b.timestampStart,
    timestampStop: b.timestampStop ?? b.timestampStart,
    size: sizes.size,
    sizeDelta: sizes.sizeDelta,
    repoSize: sizes.repoSize,
    repoSizeDelta: sizes.repoSizeDelta,
    repoSizeMap: b.blockIncr ? sizes.repoSizeMap : undefined,
    repoSizeMapDelta: b.blockIncr ? sizes.repoSizeMapDelta : undefined,
    dbId: m.db.id,
    error: pageErrors,
    annotation: m.annotation,
    options: {
      archiveCheck: opt["archive-check"] === true,
      archiveCopy: opt["archive-copy"] === true,
      backupStandby: opt["backup-standby"] === true,
      checksumPage: opt["checksum-page"] === true,
      compress: opt.compress === true,
      hardlink: opt.hardlink === true,
      online: opt.online === true,
    },
    format: REPO_FORMAT,
    programVersion: REPO_VERSION,
  };
}

/** `repoPass`: the repository passphrase (repoCipherPass), which backup.info is encrypted with. */
export async function finishBackup(repoPass: string | undefined, repo: Storage, stanza: string, info: BackupInfo, m: Manifest): Promise<void> {
  await saveManifest(repo, stanza, m, info.cipherPass);

  let pageErrors = false;
  for (const f of m.files.values()) if (f.reference === undefined && f.checksumPage === false) pageErrors = true;
  info.add(backupRecord(m, pageErrors));
  await saveBackupInfo(repo, stanza, info, repoPass);

  // Informational only (readers never depend on it), so failures are warnings.
  try {
    if (repo.features.link) {
      await repo.remove(repoPath.latestLink(stanza), { ignoreMissing: true });
      await repo.linkCreate(m.backup.label, repoPath.latestLink(stanza));
    }
    await writePieces(repo, repoPath.historyManifest(stanza, m.backup.label), m.renderPieces(), {
      // Level 9, as pgBackRest compresses its history copies (gzip XFL 2): a one-off write, ~2 % smaller.
      filters: [{ type: "compress", compressType: "gz", level: 9 }, ...(info.cipherPass ? [{ type: "encrypt" as const, pass: info.cipherPass }] : [])],
    });
  } catch (e) {
    logWarn(`unable to update 'latest' link or backup.history: ${(e as Error).message}`);
  }
}
