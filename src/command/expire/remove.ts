/**
 * The removing half of expire, over the repository Storage. Order is what makes a crash safe:
 *  - backup.info is saved (atomically, main then copy) BEFORE any directory goes, so a backup is
 *    either listed and whole, or unlisted;
 *  - in a backup directory the manifest goes first: a half-removed directory never looks like a
 *    complete backup (pgBackRest re-adds unlisted directories that hold a manifest);
 *  - dependent backups go before the backup they reference (newest first);
 *  - WAL goes oldest first and only outside every kept range, so an interrupted run leaves no gap
 *    a kept backup needs.
 * Every function takes `dryRun`: then it only logs what it would do.
 */
import { logDetail, logInfo } from "../../common/log.ts";
import { labelDirs, historyLabels as storedHistoryLabels } from "../../repo/stored-labels.ts";
import { INFO_COPY_EXT, repoPath } from "../../repo/layout.ts";
import type { Storage } from "../../storage/storage.ts";
import { walKept, type ArchiveIdPlan } from "./plan.ts";

export interface ExpireContext {
  storage: Storage;
  stanza: string;
  /** "repo1: " (and "[DRY-RUN] " in front when dry-run). */
  prefix: string;
  dryRun: boolean;
}

/** Label directories in backup/STANZA, sorted. */
export function backupDirs(ctx: ExpireContext): Promise<string[]> {
  return labelDirs(ctx.storage, ctx.stanza);
}

/** Remove one backup directory: manifest (and its copy) first, then the rest. */
export async function removeBackupDir(ctx: ExpireContext, label: string): Promise<void> {
  logInfo(`${ctx.prefix}remove expired backup ${label}`);
  if (ctx.dryRun) return;
  const manifest = repoPath.manifest(ctx.stanza, label);
  await ctx.storage.remove(manifest, { ignoreMissing: true });
  await ctx.storage.remove(manifest + INFO_COPY_EXT, { ignoreMissing: true });
  await ctx.storage.pathSync(repoPath.backupDir(ctx.stanza, label));
  await ctx.storage.pathRemove(repoPath.backupDir(ctx.stanza, label), { recurse: true, ignoreMissing: true });
  await ctx.storage.pathSync(repoPath.backupStanza(ctx.stanza));
}

/** Point backup/STANZA/latest at the newest backup (replaced atomically), or remove it when none is left. */
export async function updateLatestLink(ctx: ExpireContext, newest: string | undefined): Promise<void> {
  if (ctx.dryRun || !ctx.storage.features.link) return;
  const link = repoPath.latestLink(ctx.stanza);
  const current = await ctx.storage.info(link, { ignoreMissing: true });
  if (current?.type === "link" && current.linkDestination === newest) return;
  if (newest === undefined) {
    if (current) await ctx.storage.remove(link, { ignoreMissing: true });
    return;
  }
  const tmp = `${link}.pgbunker.tmp`;
  await ctx.storage.remove(tmp, { ignoreMissing: true });
  await ctx.storage.linkCreate(newest, tmp);
  await ctx.storage.move(tmp, link);
}

/** A run of consecutive removed WAL files, for the log line. */
interface Run {
  start: string;
  stop: string;
}

/**
 * Remove the WAL an archive id no longer needs. Directories (timeline + log id) are visited in
 * order; a directory whose files all go is removed whole.
 */
export async function expireArchiveId(ctx: ExpireContext, plan: ArchiveIdPlan): Promise<void> {
  const idPath = repoPath.archiveIdPath(ctx.stanza, plan.archiveId);
  if (plan.removeAll) {
    if (!(await ctx.storage.exists(idPath))) return;
    logInfo(`${ctx.prefix}remove archive path ${ctx.storage.path(idPath)}`);
    if (!ctx.dryRun) await ctx.storage.pathRemove(idPath, { recurse: true, ignoreMissing: true });
    return;
  }
  if (plan.keepAll) return;
  // Ranges of backups after the anchor are kept too (belt and braces) but add nothing worth a line.
  for (const r of plan.ranges.filter((r) => !plan.keepFrom || r.label < plan.keepFrom.label)) logDetail(`${ctx.prefix}${plan.archiveId} archive retention on backup ${r.label}, start = ${r.start}, stop = ${r.stop}`);
  if (plan.keepFrom) logDetail(`${ctx.prefix}${plan.archiveId} archive retention on backup ${plan.keepFrom.label}, start = ${plan.keepFrom.start}`);

  const runs: Run[] = [];
  let run: Run | undefined;
  const flush = () => {
    if (run) runs.push(run);
    run = undefined;
  };
  for (const dir of await ctx.storage.names(idPath, /^[0-9A-F]{16}$/)) {
    const dirPath = `${idPath}/${dir}`;
    const files = await ctx.storage.names(dirPath, /^[0-9A-F]{24}/);
    const gone = files.filter((f) => !walKept(f, plan));
    const goneSet = new Set(gone);
    for (const f of files) {
      const seg = f.slice(0, 24);
      if (goneSet.has(f)) {
        if (run) run.stop = seg;
        else run = { start: seg, stop: seg };
      } else flush();
    }
    if (ctx.dryRun || gone.length === 0) continue;
    const others = (await ctx.storage.names(dirPath)).length;
    if (gone.length === others) {
      await ctx.storage.pathRemove(dirPath, { recurse: true, ignoreMissing: true });
    } else {
      for (const f of gone) await ctx.storage.remove(`${dirPath}/${f}`, { ignoreMissing: true });
      await ctx.storage.pathSync(dirPath);
    }
  }
  flush();
  for (const r of runs) logInfo(`${ctx.prefix}${plan.archiveId} remove archive, start = ${r.start}, stop = ${r.stop}`);
}

/** Labels of the manifests in backup.history/YYYY/. */
export function historyLabels(ctx: ExpireContext): Promise<string[]> {
  return storedHistoryLabels(ctx.storage, ctx.stanza);
}

/** Remove backup.history manifests (and year directories left empty). */
export async function removeHistory(ctx: ExpireContext, labels: readonly string[]): Promise<void> {
  const years = new Set<string>();
  for (const label of [...labels].sort().reverse()) {
    logInfo(`${ctx.prefix}remove expired backup history manifest ${label}.manifest.gz`);
    if (ctx.dryRun) continue;
    await ctx.storage.remove(repoPath.historyManifest(ctx.stanza, label), { ignoreMissing: true });
    years.add(label.slice(0, 4));
  }
  for (const year of years) {
    const dir = `${repoPath.historyDir(ctx.stanza)}/${year}`;
    if ((await ctx.storage.names(dir)).length === 0) await ctx.storage.pathRemove(dir, { ignoreMissing: true });
  }
}
