/**
 * What to restore: the repository and backup set chosen (each repository's backup.info read
 * through its cipher, in order, until one answers the request), the set's manifest (through
 * backup.info's cipher pass) and the pass its files are encrypted with, and where each file's
 * stored bytes are (its own file or a member of a bundle).
 */
import { logWarn } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import { COMPRESS_EXT } from "../../filter/compress.ts";
import type { CompressType } from "../../filter/filter.ts";
import { pgVersion } from "../../postgres/version.ts";
import { loadBackupInfo, type BackupInfo, type BackupRecord } from "../../repo/backup-info.ts";
import { repoPath, storedExt } from "../../repo/layout.ts";
import { loadManifest, type Manifest, type ManifestBlockIncr } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";
import { asPgbError, repoCipherPass, repoIndexes, repoWarning } from "../archive/common.ts";
import { storageRepo } from "../shared/storage.ts";
import type { RestoreBlockIncr } from "./block.ts";
import { chooseInRepo, noSetError, setRequest, type SetChoice, type SetRequest } from "./select.ts";

export interface RestoreSource {
  stanza: string;
  /** The repository the backup set is restored from (N of repoN). */
  repoIndex: number;
  repo: Storage;
  record: BackupRecord;
  how: SetChoice["how"];
  manifest: Manifest;
  /** Passphrase of the backup's files (encrypted repositories). */
  filePass?: string;
  compressType: CompressType;
}

export async function loadRestoreSource(cfg: Config): Promise<RestoreSource> {
  const stanza = cfg.req("stanza");
  const req = setRequest({
    set: cfg.str("set") ?? "latest",
    setExplicit: cfg.source("set") !== "default" && cfg.source("set") !== undefined,
    type: cfg.str("type") ?? "default",
    target: cfg.str("target"),
  });
  const { repoIndex, repo, info, choice } = await findBackupSet(cfg, stanza, req);
  const label = choice.record.label;
  // Streamed into the model: no text or InfoIni of every file is held (issue 19).
  const manifest = await loadManifest(repo, stanza, label, info.cipherPass);
  pgVersion(manifest.db.version); // refuse a major this build does not know before touching anything

  return { stanza, repoIndex, repo, record: choice.record, how: choice.how, manifest, filePass: manifest.cipherPass, compressType: manifest.compressType };
}

/**
 * The first repository (in order; only --repo's when given) whose backup.info answers the request.
 * A repository that cannot be read, or has no backup that fits, is skipped with a warning.
 */
async function findBackupSet(cfg: Config, stanza: string, req: SetRequest): Promise<{ repoIndex: number; repo: Storage; info: BackupInfo; choice: SetChoice }> {
  const labels = new Set<string>();
  for (const repoIndex of repoIndexes(cfg)) {
    let repo: Storage | undefined;
    let info: BackupInfo;
    try {
      repo = await storageRepo(cfg, { repo: repoIndex, readOnly: true });
      info = (await loadBackupInfo(repo, stanza, { cipherPass: repoCipherPass(cfg, repoIndex) }))!;
    } catch (e) {
      logWarn(repoWarning({ index: repoIndex, error: asPgbError(e) }));
      await repo?.close().catch(() => {});
      continue;
    }
    for (const l of info.labels()) labels.add(l);
    const choice = chooseInRepo(info, req);
    if (choice && "record" in choice) return { repoIndex, repo, info, choice };
    if (choice) logWarn(`repo${repoIndex}: ${choice.skip}`);
    await repo.close(); // a repository host's SSH session is not kept for nothing
  }
  throw noSetError(req, [...labels].sort());
}

/**
 * Where a file's stored bytes are: its own repository file, or a range of a bundle. A block
 * incremental file is always given with its range (its map is at the end of it).
 */
export function repoLocation(src: RestoreSource, f: { name: string; label: string; size: number; repoSize?: number; bundleId?: number; bundleOffset?: number; blockIncr?: ManifestBlockIncr }): { repoFile: string; offset?: number; limit?: number } {
  if (f.bundleId !== undefined)
    return { repoFile: repoPath.bundleFile(src.stanza, f.label, f.bundleId), offset: f.bundleOffset ?? 0, limit: f.repoSize ?? f.size };
  const repoFile = repoPath.backupFile(src.stanza, f.label, f.name, storedExt(f, COMPRESS_EXT[src.compressType]));
  return f.blockIncr ? { repoFile, offset: 0, limit: f.repoSize ?? f.size } : { repoFile };
}

/** What a restore job needs to assemble a block incremental file from its map. */
export function blockSource(src: RestoreSource, b: ManifestBlockIncr): RestoreBlockIncr {
  const m = src.manifest;
  return { blockSize: b.blockSize, checksumSize: b.checksumSize, mapSize: b.mapSize, stanza: src.stanza, references: m.backup.reference };
}
