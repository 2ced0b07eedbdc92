/**
 * The 'recovery-targets' command (a pgbunker addition): where can a restore stop? It reads the
 * WAL in the archive (every segment, in process-max workers, streaming) and reports per timeline:
 *  - the named restore points (pg_create_restore_point): --type=name --target=NAME;
 *  - the first and last commit and abort, with their times: the range --type=time can reach;
 *  - for each backup: where it becomes consistent (its stop LSN, confirmed by the backup-end
 *    record), the first commit after that (the earliest --type=time target that works with it)
 *    and the last commit before the archive ends or has a gap (the latest).
 * --time-start/--time-stop keep what falls in a time range; --db-include counts only the commits
 * and aborts of those databases (commit records name their database when they carry catalog
 * invalidations, and always with wal_level=logical). --output=text|json.
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import { formatPgTime, type WalRecord } from "../../postgres/wal-records.ts";
import { lsnParse, segmentParse, timelineOfName } from "../../postgres/wal.ts";
import { loadArchiveInfo } from "../../repo/archive-info.ts";
import { loadBackupInfo, type BackupRecord } from "../../repo/backup-info.ts";
import { loadInfoFile } from "../../repo/info-file.ts";
import { repoPath } from "../../repo/layout.ts";
import { Manifest } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";
import { repoCipherPass } from "../archive/common.ts";
import { parseTargetTime } from "../restore/select.ts";
import { archiveIdOfDb } from "../shared/repos.ts";
import { storageRepo } from "../shared/storage.ts";
import { stdoutWrite } from "../shared/stdout.ts";
import { scanArchiveId, type TimelineWal } from "../shared/wal-scan.ts";

/** A point in the WAL: its LSN and, for commits and restore points, its time. */
interface Point {
  lsn: string;
  time: string;
}

interface Range {
  count: number;
  first?: Point;
  last?: Point;
}

interface BackupTargets {
  label: string;
  /** Consistent from here on (the backup's stop LSN); backupEnd: whether its backup-end record was read. */
  consistent: { lsn: string; backupEnd: boolean };
  earliest?: Point;
  latest?: Point;
}

interface TimelineReport {
  timeline: number;
  archiveId: string;
  wal: { min: string; max: string; gaps: string[] };
  restorePoints: { name: string; time: string; lsn: string }[];
  commits: Range;
  aborts: Range;
  backups: BackupTargets[];
  crcErrors: number;
}

export async function run(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  const index = cfg.repoIndex;
  const range = timeRange(cfg);
  const storage = await storageRepo(cfg, { repo: index, readOnly: true });
  try {
    const cipherPass = repoCipherPass(cfg, index);
    const archiveInfo = (await loadArchiveInfo(storage, stanza, { cipherPass }))!;
    const backupInfo = (await loadBackupInfo(storage, stanza, { cipherPass }))!;
    const dbIds = await databaseIds(storage, stanza, backupInfo.cipherPass, [...backupInfo.backups.values()].at(-1), cfg.list("db-include"));
    const reports: TimelineReport[] = [];
    for (const archiveId of archiveInfo.archiveIds()) {
      const backups = [...backupInfo.backups.values()].filter((b) => archiveIdOfDb(backupInfo, archiveInfo, b.dbId) === archiveId);
      for (const t of await scanArchiveId(cfg, storage, index, stanza, archiveId, archiveInfo.cipherPass)) reports.push(report(t, archiveId, backups, range, dbIds));
    }
    stdoutWrite(cfg.str("output") === "json" ? `${JSON.stringify([{ name: stanza, repo: index, timelines: reports }])}\n` : text(stanza, reports));
    return 0;
  } finally {
    await storage.close();
  }
}

/** --time-start/--time-stop as microseconds since the epoch. */
function timeRange(cfg: Config): { start: number; stop: number } {
  const us = (key: "time-start" | "time-stop", fallback: number) => {
    const v = cfg.str(key);
    if (v === undefined) return fallback;
    try {
      return Math.round(parseTargetTime(v) * 1_000_000);
    } catch {
      throw err("OptionInvalidValueError", `'${v}' is not a valid value for option '${key}'`, "give a time as YYYY-MM-DD HH:MM:SS[.frac][+/-HH[:MM]] (local time without an offset; +00 for UTC).");
    }
  };
  const r = { start: us("time-start", -Infinity), stop: us("time-stop", Infinity) };
  if (r.start > r.stop) throw err("OptionInvalidValueError", `time-start '${cfg.str("time-start")}' is after time-stop '${cfg.str("time-stop")}'`, "give the earlier time as time-start.");
  return r;
}

/** OIDs of the --db-include databases, from the newest backup's manifest; undefined: every database. */
async function databaseIds(storage: Storage, stanza: string, manifestPass: string | undefined, newest: BackupRecord | undefined, names: string[]): Promise<Set<number> | undefined> {
  if (names.length === 0) return undefined;
  if (!newest) throw err("BackupSetInvalidError", "--db-include needs a backup to tell database names from their OIDs, and the repository has none", "take a backup first, or leave out --db-include.");
  const path = repoPath.manifest(stanza, newest.label);
  const manifest = Manifest.fromIni((await loadInfoFile(storage, path, { cipherPass: manifestPass }))!, storage.path(path));
  const ids = new Set<number>();
  for (const name of names) {
    const db = manifest.dbs.get(name);
    if (!db) throw err("DbMissingError", `database '${name}' is not in backup ${newest.label}`, `databases in it: ${[...manifest.dbs.keys()].sort().join(", ")}.`);
    ids.add(db.id);
  }
  return ids;
}

const timeOf = (r: WalRecord) => ("time" in r.event ? r.event.time : undefined);
const point = (r: WalRecord): Point => ({ lsn: r.lsn, time: formatPgTime(timeOf(r)!) });

function rangeOf(records: WalRecord[]): Range {
  return { count: records.length, first: records[0] && point(records[0]), last: records.at(-1) && point(records.at(-1)!) };
}

function report(t: TimelineWal, archiveId: string, backups: BackupRecord[], range: { start: number; stop: number }, dbIds?: Set<number>): TimelineReport {
  const inRange = (r: WalRecord) => {
    const time = timeOf(r);
    return time !== undefined && time >= range.start && time <= range.stop;
  };
  const inDb = (r: WalRecord) => !dbIds || (r.event.type === "commit" || r.event.type === "abort" ? r.event.dbId !== undefined && dbIds.has(r.event.dbId) : true);
  const commits = t.records.filter((r) => r.event.type === "commit");
  const kept = (type: string) => t.records.filter((r) => r.event.type === type && inRange(r) && inDb(r));
  const seg = (name: string) => segmentParse(name, t.segmentSize).segmentNo;
  return {
    timeline: t.timeline,
    archiveId,
    wal: { min: t.segments[0]!, max: t.segments.at(-1)!, gaps: t.gaps },
    restorePoints: kept("restore-point").map((r) => ({ name: (r.event as { name: string }).name, ...point(r) })),
    commits: rangeOf(kept("commit")),
    aborts: rangeOf(kept("abort")),
    backups: backups
      .filter((b) => b.archiveStart && b.lsnStop && timelineOfName(b.archiveStart) === t.timeline)
      .map((b) => {
        const stop = lsnParse(b.lsnStop!);
        // WAL is usable from the backup's first segment up to the first gap after it.
        const gap = t.gaps.find((g) => g > b.archiveStart!);
        const limit = gap === undefined ? undefined : seg(gap) * BigInt(t.segmentSize);
        const usable = commits.filter((r) => lsnParse(r.lsn) >= stop && (limit === undefined || lsnParse(r.lsn) < limit));
        const backupEnd = t.records.some((r) => r.event.type === "backup-end" && b.lsnStart !== undefined && lsnParse(r.event.backupStart) === lsnParse(b.lsnStart));
        return { label: b.label, consistent: { lsn: b.lsnStop!, backupEnd }, earliest: usable[0] && point(usable[0]), latest: usable.at(-1) && point(usable.at(-1)!) };
      }),
    crcErrors: t.crcErrors,
  };
}

function text(stanza: string, reports: TimelineReport[]): string {
  const lines = [`stanza: ${stanza}`];
  const at = (p?: Point) => (p ? `${p.time} (lsn ${p.lsn})` : "none");
  for (const r of reports) {
    lines.push("", `    timeline ${r.timeline} (archive ${r.archiveId}): wal ${r.wal.min} / ${r.wal.max}${r.wal.gaps.length ? `, ${r.wal.gaps.length} missing segment(s) from ${r.wal.gaps[0]}` : ""}`);
    for (const p of r.restorePoints) lines.push(`        restore point: ${p.name}, time ${p.time}, lsn ${p.lsn}`);
    lines.push(`        commits: ${r.commits.count}, first ${at(r.commits.first)}, last ${at(r.commits.last)}`);
    lines.push(`        aborts: ${r.aborts.count}, first ${at(r.aborts.first)}, last ${at(r.aborts.last)}`);
    for (const b of r.backups)
      lines.push(`        backup ${b.label}: consistent at lsn ${b.consistent.lsn}${b.consistent.backupEnd ? "" : " (backup-end record not in the archive)"}, earliest target ${at(b.earliest)}, latest ${at(b.latest)}`);
    if (r.crcErrors) lines.push(`        records with a bad CRC: ${r.crcErrors} (the WAL after each is not read: run 'pgbunker verify')`);
  }
  return `${lines.join("\n")}\n`;
}
