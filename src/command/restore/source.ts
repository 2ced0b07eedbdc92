/**
 * What to restore: the stanza's backup.info (through the repository cipher), the chosen backup
 * set, its manifest (through backup.info's cipher pass) and the pass its files are encrypted with,
 * and where each file's stored bytes are (its own file or a member of a bundle).
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import { COMPRESS_EXT } from "../../filter/compress.ts";
import type { CompressType } from "../../filter/filter.ts";
import { pgVersion } from "../../postgres/version.ts";
import { loadBackupInfo, type BackupRecord } from "../../repo/backup-info.ts";
import { loadInfoFile } from "../../repo/info-file.ts";
import { repoPath } from "../../repo/layout.ts";
import { Manifest } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";
import { repoCipherPass } from "../archive/common.ts";
import { selectBackupSet, type SetChoice } from "./select.ts";

export interface RestoreSource {
  stanza: string;
  record: BackupRecord;
  how: SetChoice["how"];
  manifest: Manifest;
  /** Passphrase of the backup's files (encrypted repositories). */
  filePass?: string;
  compressType: CompressType;
}

export async function loadRestoreSource(cfg: Config, repo: Storage): Promise<RestoreSource> {
  const stanza = cfg.req("stanza");
  const info = (await loadBackupInfo(repo, stanza, { cipherPass: repoCipherPass(cfg, cfg.repoIndex) }))!;
  const choice = selectBackupSet(info, {
    set: cfg.str("set") ?? "latest",
    setExplicit: cfg.source("set") !== "default" && cfg.source("set") !== undefined,
    type: cfg.str("type") ?? "default",
    target: cfg.str("target"),
  });
  const label = choice.record.label;
  const ini = (await loadInfoFile(repo, repoPath.manifest(stanza, label), {
    cipherPass: info.cipherPass,
    hint: `is backup ${label} complete? run 'pgbunker info' to list the backups.`,
  }))!;
  const manifest = Manifest.fromIni(ini, repo.path(repoPath.manifest(stanza, label)));
  pgVersion(manifest.db.version); // refuse a major this build does not know before touching anything

  const blockKeys = ["bi", "bic", "bims", "blk"];
  const block = manifest.fileList().find((f) => f.extra && blockKeys.some((k) => k in f.extra!));
  if (block || manifest.options["block"] === true)
    throw err("FeatureNotSupportedError", `backup ${label} uses block incremental storage, which pgbunker cannot restore`, "restore it with pgBackRest, or restore a backup made without repo-block.");

  const pass = ini.value("cipher", "cipher-pass");
  return { stanza, record: choice.record, how: choice.how, manifest, filePass: typeof pass === "string" ? pass : undefined, compressType: manifest.compressType };
}

/** Where a file's stored bytes are: its own repository file, or a range of a bundle. */
export function repoLocation(src: RestoreSource, f: { name: string; label: string; size: number; repoSize?: number; bundleId?: number; bundleOffset?: number }): { repoFile: string; offset?: number; limit?: number } {
  if (f.bundleId !== undefined)
    return { repoFile: repoPath.bundleFile(src.stanza, f.label, f.bundleId), offset: f.bundleOffset ?? 0, limit: f.repoSize ?? f.size };
  return { repoFile: repoPath.backupFile(src.stanza, f.label, f.name, COMPRESS_EXT[src.compressType]) };
}
