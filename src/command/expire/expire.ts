/**
 * The 'expire' command: apply the retention policy of each repository (or of --repo), or expire
 * one backup set (--set) or the oldest full set (--oldest); --archive-expire-before caps the WAL
 * removal at a segment. For each repository:
 *   1. plan which backups expire (expire/plan.ts: pure, unit-tested);
 *   2. save backup.info without them: from here on they are not backups any more;
 *   3. remove their directories (and unlisted leftovers of crashed backups or expires);
 *   4. remove the WAL no kept backup needs, per archive id;
 *   5. remove backup.history manifests older than repo-retention-history.
 * `expireRun` is also what backup calls after a successful backup (expire-auto).
 */
import { err, PgbError } from "../../common/error.ts";
import { logDetail, logError, logInfo, logWarn } from "../../common/log.ts";
import { nowSeconds } from "../../common/time.ts";
import type { Config } from "../../config/parse.ts";
import { WAL_SEGMENT_RE } from "../../postgres/wal.ts";
import { loadArchiveInfo } from "../../repo/archive-info.ts";
import { loadBackupInfo, saveBackupInfo } from "../../repo/backup-info.ts";
import { planArchive, planBackups, planHistory, type ExpireSet, type PlanBackup, type PlanNote, type RetentionPolicy } from "./plan.ts";
import { backupDirs, expireArchiveId, historyLabels, removeBackupDir, removeHistory, updateLatestLink, type ExpireContext } from "./remove.ts";
import { expireTempFiles } from "./temps.ts";
import { repoCipherPass, repoIndexes, staleTempSeconds } from "../archive/common.ts";
import { archiveIdOfDb } from "../shared/repos.ts";
import { storageRepo } from "../shared/storage.ts";

export async function run(cfg: Config): Promise<number> {
  await expireRun(cfg);
  return 0;
}

/**
 * Expire every repository the configuration names (or --repo). Works for a Config of any command
 * that shares the retention options (backup calls it with its own Config for expire-auto).
 * Errors on one repository do not stop the others; they are counted and reported at the end.
 */
export async function expireRun(cfgIn: Config): Promise<void> {
  const cfg = cfgIn.command === "expire" ? cfgIn : cfgIn.forCommand("expire");
  const stanza = cfg.str("stanza");
  if (!stanza) throw err("OptionRequiredError", "expire command requires option: stanza", "add --stanza=NAME.");
  checkExpireOptions(cfg);
  let errors = 0;
  for (const index of repoIndexes(cfg)) {
    try {
      await expireRepo(cfg, stanza, index);
    } catch (e) {
      if (!(e instanceof PgbError)) throw e;
      errors++;
      logError(`[${String(e.code).padStart(3, "0")}]: repo${index}: ${e.message}${e.hints.map((h) => `\nHINT: ${h}`).join("")}`);
    }
  }
  if (errors > 0) throw err("CommandError", `expire command encountered ${errors} error(s), see the messages above or the log file for details`);
}

/** Options that contradict each other or cannot be honoured: refused before any repository is touched. */
function checkExpireOptions(cfg: Config): void {
  if (cfg.bool("oldest") && cfg.str("set") !== undefined)
    throw err("OptionInvalidError", "--oldest and --set cannot be used together", "use --set=LABEL to expire a chosen backup set, or --oldest alone to expire the oldest full set.");
  const before = cfg.str("archive-expire-before");
  // A .partial name would move the boundary by a segment, so only a plain segment name will do.
  if (before !== undefined && !WAL_SEGMENT_RE.test(before))
    throw err(
      "OptionInvalidValueError",
      `'${before}' is not a valid WAL segment name for option '--archive-expire-before'`,
      "give a 24-character segment name in upper-case hexadecimal, e.g. 000000010000000000000003 (what archive_cleanup_command receives as %r).",
    );
}

export function retentionPolicy(cfg: Config, index: number): RetentionPolicy {
  return {
    full: cfg.get(cfg.repoKey("repo-retention-full", index)),
    fullType: cfg.get(cfg.repoKey("repo-retention-full-type", index)),
    diff: cfg.get(cfg.repoKey("repo-retention-diff", index)),
    archive: cfg.get(cfg.repoKey("repo-retention-archive", index)),
    archiveType: cfg.get(cfg.repoKey("repo-retention-archive-type", index)),
    history: cfg.get(cfg.repoKey("repo-retention-history", index)),
  };
}

const REASON_TEXT: Record<ExpireSet["reason"], string> = { full: "full", time: "time-based", diff: "diff", adhoc: "adhoc" };

function logNote(note: PlanNote): void {
  const text = note.hint ? `${note.message}\nHINT: ${note.hint}` : note.message;
  if (note.level === "warn") logWarn(text);
  else if (note.level === "detail") logDetail(text);
  else logInfo(text);
}

async function expireRepo(cfg: Config, stanza: string, index: number): Promise<void> {
  const dryRun = cfg.bool("dry-run");
  const storage = await storageRepo(cfg, { repo: index, readOnly: dryRun });
  const ctx: ExpireContext = { storage, stanza, dryRun, prefix: `${dryRun ? "[DRY-RUN] " : ""}repo${index}: ` };
  const cipherPass = repoCipherPass(cfg, index);
  const backupInfo = (await loadBackupInfo(storage, stanza, { cipherPass }))!;
  const archiveInfo = (await loadArchiveInfo(storage, stanza, { cipherPass }))!;
  const policy = retentionPolicy(cfg, index);
  const now = nowSeconds();

  const backups: PlanBackup[] = [...backupInfo.backups.values()].map((r) => ({ ...r, archiveId: archiveIdOfDb(backupInfo, archiveInfo, r.dbId) }));
  const opt = (name: string) => `repo${index}-${name}`;
  const plan = planBackups(backups, policy, now, { adhoc: cfg.str("set"), oldest: cfg.bool("oldest"), repo: `repo${index}`, currentDbId: backupInfo.current.id, opt });
  for (const note of plan.notes) logNote(note);
  if (plan.error) throw err("BackupSetInvalidError", plan.error.message, plan.error.hint);

  // 1-2: the expired backups stop being backups the moment backup.info is saved without them.
  for (const set of plan.sets)
    logInfo(`${ctx.prefix}expire ${REASON_TEXT[set.reason]} backup${set.labels.length > 1 ? " set" : ""} ${set.labels.join(", ")}`);
  if (plan.expired.size > 0 && !dryRun) {
    for (const label of plan.expired) backupInfo.remove(label);
    await saveBackupInfo(storage, stanza, backupInfo, cipherPass);
  }
  const current = dryRun ? new Set(backupInfo.labels().filter((l) => !plan.expired.has(l))) : new Set(backupInfo.labels());
  await updateLatestLink(ctx, [...current].sort().at(-1));

  // 3: newest first, so a dependent backup is gone before the backup it references.
  for (const label of (await backupDirs(ctx)).filter((l) => !current.has(l)).reverse()) await removeBackupDir(ctx, label);

  // Stale temp files of killed writers first: one would keep a segment directory whose WAL all goes.
  await expireTempFiles(ctx, staleTempSeconds(cfg));

  // 4: WAL, per archive id.
  const kept = backups.filter((b) => current.has(b.label));
  const archivePlan = planArchive(kept, plan.policy, archiveInfo.archiveIds(), { timeAnchor: plan.timeAnchor, opt, expireBefore: cfg.str("archive-expire-before") });
  for (const note of archivePlan.notes) logNote(note);
  for (const idPlan of archivePlan.ids) await expireArchiveId(ctx, idPlan);

  // 5: backup.history.
  const history = planHistory(await historyLabels(ctx), current, policy.history, now);
  await removeHistory(ctx, history);
}
