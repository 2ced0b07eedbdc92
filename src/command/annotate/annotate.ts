/**
 * The 'annotate' command: add, change or remove (KEY=) annotations of a backup set after the
 * backup. Every repository (or --repo) holding the set gets the change:
 *   1. backup.info gives the set's current annotation (what info shows);
 *   2. the manifest (main, then copy) gets the new annotation, edited in place;
 *   3. backup.info (main, then copy) gets it: from here on info shows it.
 * Each file is written atomically. A crash between 2 and 3 leaves the manifest ahead of backup.info,
 * which a repeated annotate brings back in line (it applies the same change to backup.info's).
 * pgBackRest rewrites only backup.info; the manifest is kept in line too here so the annotation
 * survives where the manifest is the record (backup.history, a backup.info rebuilt from manifests).
 * Errors on one repository do not stop the others; they are counted and reported at the end.
 */
import { err, PgbError } from "../../common/error.ts";
import { logError, logInfo } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import { annotationApply } from "../../repo/annotation.ts";
import { loadBackupInfo, saveBackupInfo } from "../../repo/backup-info.ts";
import { isLabel } from "../../repo/label.ts";
import { saveManifestAnnotation } from "../../repo/manifest.ts";
import { repoCipherPass, repoIndexes } from "../archive/common.ts";
import { storageRepo } from "../shared/storage.ts";

export async function run(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  const label = cfg.req("set");
  if (!isLabel(label))
    throw err("OptionInvalidValueError", `'${label}' is not a valid backup label format`, "labels look like 20240101-120000F, 20240101-120000F_20240102-120000D or ..._20240102-120000I; 'pgbunker info' lists them.");
  const changes = cfg.hash("annotation");

  let found = 0;
  let errors = 0;
  for (const index of repoIndexes(cfg)) {
    try {
      if (await annotateRepo(cfg, index, stanza, label, changes)) found++;
    } catch (e) {
      if (!(e instanceof PgbError)) throw e;
      errors++;
      logError(`[${String(e.code).padStart(3, "0")}]: repo${index}: ${e.message}${e.hints.map((h) => `\nHINT: ${h}`).join("")}`);
    }
  }
  if (errors > 0) throw err("CommandError", `annotate command encountered ${errors} error(s), see the messages above or the log file for details`);
  if (found === 0) throw err("BackupSetInvalidError", "no backup set to annotate found", `'pgbunker --stanza=${stanza} info' lists the backup sets.`);
  return 0;
}

/** Annotate the set in one repository; false when the repository does not hold it. */
async function annotateRepo(cfg: Config, index: number, stanza: string, label: string, changes: Record<string, string>): Promise<boolean> {
  const storage = await storageRepo(cfg, { repo: index });
  try {
    const cipherPass = repoCipherPass(cfg, index);
    const info = (await loadBackupInfo(storage, stanza, { cipherPass }))!;
    const record = info.backups.get(label);
    if (!record) return false;
    logInfo(`backup set '${label}' to annotate found in repo${index}`);
    record.annotation = annotationApply(record.annotation, changes);
    // The manifest is encrypted with backup.info's passphrase, backup.info with the repository's.
    await saveManifestAnnotation(storage, stanza, label, record.annotation, info.cipherPass);
    await saveBackupInfo(storage, stanza, info, cipherPass);
    return true;
  } finally {
    await storage.close();
  }
}
