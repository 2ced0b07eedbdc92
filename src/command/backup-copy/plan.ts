/**
 * What backup-copy copies, as plain data: which backup sets (a set brings the earlier backups it
 * depends on that the target lacks, oldest first) and which WAL each needs.
 *
 * WAL rule (documented in the README): a copied backup takes every WAL file of its archive id from
 * its archive start up to the next backup's start in the source (or everything archived after it,
 * for the newest), on its timeline and later ones, plus every history file. So the copy restores
 * consistently and can be recovered to any point until the next backup, as in the source.
 */
import { err } from "../../common/error.ts";
import type { BackupRecord } from "../../repo/backup-info.ts";
import { walFileKind } from "../../postgres/wal.ts";

/** The sets to copy, oldest first. `set`: one label (with its missing dependencies), else all the target lacks. */
export function setsToCopy(source: ReadonlyMap<string, BackupRecord>, inTarget: ReadonlySet<string>, set?: string): BackupRecord[] {
  if (set === undefined) return [...source.values()].filter((r) => !inTarget.has(r.label)).sort((a, b) => (a.label < b.label ? -1 : 1));
  const wanted = source.get(set);
  if (!wanted)
    throw err(
      "BackupSetInvalidError",
      `backup set ${set} is not in the source repository`,
      source.size ? `the source holds: ${[...source.keys()].sort().join(", ")} ('pgbunker info --repo=N' lists them).` : "the source repository holds no backup.",
    );
  const chain: BackupRecord[] = [];
  for (let r: BackupRecord | undefined = wanted; r && !inTarget.has(r.label); r = r.prior ? source.get(r.prior) : undefined) {
    chain.push(r);
    if (r.prior && !source.has(r.prior) && !inTarget.has(r.prior))
      throw err("BackupSetInvalidError", `backup set ${r.label} depends on ${r.prior}, which neither repository holds`, "the source repository is damaged: run 'pgbunker verify' on it.");
  }
  return chain.reverse();
}

/** The LSN part of a WAL file name (log and segment: what orders segments across timelines). */
function lsnPart(name: string): string {
  return name.slice(8, 24);
}

export interface WalWindow {
  archiveId: string;
  /** First segment the backup needs (its archive start). */
  start: string;
  /** Last segment it needs for consistency (its archive stop). */
  stop: string;
  /** The next backup's archive start in the source (exclusive), or none: everything after. */
  until?: string;
}

/** The window of WAL a backup needs, given the source's backups of the same archive id. */
export function walWindow(r: BackupRecord, archiveId: string, all: readonly { record: BackupRecord; archiveId: string }[]): WalWindow | undefined {
  if (!r.archiveStart || !r.archiveStop) return undefined;
  const next = all
    .filter((o) => o.archiveId === archiveId && o.record.archiveStart && o.record.label > r.label)
    .sort((a, b) => (a.record.label < b.record.label ? -1 : 1))[0];
  return { archiveId, start: r.archiveStart, stop: r.archiveStop, until: next?.record.archiveStart };
}

/** Whether a WAL file (PostgreSQL's name) is in the window. */
export function walInWindow(wal: string, w: WalWindow): boolean {
  const kind = walFileKind(wal);
  if (kind === "history") return true;
  if (kind !== "segment" && kind !== "partial" && kind !== "backup") return false;
  if (wal.slice(0, 8) < w.start.slice(0, 8)) return false; // an earlier timeline
  const lsn = lsnPart(wal);
  if (lsn < lsnPart(w.start)) return false;
  return lsn <= lsnPart(w.stop) || w.until === undefined || lsn < lsnPart(w.until);
}
