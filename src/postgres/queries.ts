/**
 * The SQL pgbunker runs, per PostgreSQL major, over a Db session (local socket or a database host
 * through the remote protocol). Results are text; these functions turn them into typed values.
 */
import { err } from "../common/error.ts";
import type { Db } from "./client.ts";
import { pgFunctions, pgVersion, type PgVersionFacts } from "./version.ts";
import { lsnParse } from "./wal.ts";

export interface PgInfo {
  /** server_version_num, e.g. 150018 */
  versionNum: number;
  facts: PgVersionFacts;
  dataDirectory: string;
  archiveMode: string;
  archiveCommand: string;
  inRecovery: boolean;
  checksums: boolean;
  walSegmentSize: number;
  timeline: number;
}

export async function pgInfo(db: Db): Promise<PgInfo> {
  const rows = await db.query(
    "select current_setting('server_version_num') as version_num, current_setting('data_directory') as data_directory," +
      " current_setting('archive_mode') as archive_mode, current_setting('archive_command') as archive_command," +
      " pg_is_in_recovery()::text as in_recovery, current_setting('data_checksums') as checksums," +
      " current_setting('wal_segment_size') as wal_segment_size," +
      " (select timeline_id::text from pg_control_checkpoint()) as timeline",
  );
  const r = rows[0]!;
  const versionNum = Number(r.version_num);
  const major = Math.floor(versionNum / 10000);
  return {
    versionNum,
    facts: pgVersion(major),
    dataDirectory: r.data_directory!,
    archiveMode: r.archive_mode!,
    archiveCommand: r.archive_command ?? "",
    inRecovery: r.in_recovery === "true",
    checksums: r.checksums === "on",
    walSegmentSize: parseWalSegmentSize(r.wal_segment_size!),
    timeline: Number(r.timeline),
  };
}

function parseWalSegmentSize(text: string): number {
  const m = /^(\d+)\s*(kB|MB|GB)?$/.exec(text.trim());
  if (!m) throw err("DbQueryError", `unexpected wal_segment_size '${text}'`);
  const mult = m[2] === "GB" ? 1024 ** 3 : m[2] === "MB" ? 1024 ** 2 : m[2] === "kB" ? 1024 : 1;
  return Number(m[1]) * mult;
}

/** Force a WAL switch and return the name of the segment that was just completed. */
export async function walSwitch(db: Db, major: number): Promise<string> {
  const f = pgFunctions(major);
  // Make sure there is something to switch away from, then switch.
  const rows = await db.query(`select ${f.walFileName}(${f.walSwitch}()) as wal`);
  return rows[0]!.wal!;
}

export async function checkpoint(db: Db): Promise<void> {
  await db.query("checkpoint");
}

export interface BackupStart {
  lsn: bigint;
  lsnText: string;
  walFile: string;
}

/** Non-exclusive backup start (the session must stay open until backupStop). */
export async function backupStart(db: Db, major: number, label: string, fast: boolean): Promise<BackupStart> {
  const f = pgFunctions(major);
  const quoted = `'${label.replace(/'/g, "''")}'`;
  const args = f.backupExclusiveArg ? `${quoted}, ${fast}, false` : `${quoted}, ${fast}`;
  const rows = await db.query(`select lsn::text as lsn, ${f.walFileName}(lsn) as wal from ${f.backupStart}(${args}) as lsn`);
  const r = rows[0]!;
  return { lsn: lsnParse(r.lsn!), lsnText: r.lsn!, walFile: r.wal! };
}

export interface BackupStop {
  lsn: bigint;
  lsnText: string;
  walFile: string;
  backupLabel: string;
  tablespaceMap: string;
}

/** Non-exclusive backup stop; waits for WAL archiving of the stop segment only when asked. */
export async function backupStop(db: Db, major: number, waitForArchive = false): Promise<BackupStop> {
  const f = pgFunctions(major);
  const call = f.backupExclusiveArg ? `${f.backupStop}(false, ${waitForArchive})` : `${f.backupStop}(${waitForArchive})`;
  const rows = await db.query(`select lsn::text as lsn, ${f.walFileName}(lsn) as wal, labelfile, spcmapfile from ${call}`);
  const r = rows[0]!;
  return { lsn: lsnParse(r.lsn!), lsnText: r.lsn!, walFile: r.wal!, backupLabel: r.labelfile ?? "", tablespaceMap: r.spcmapfile ?? "" };
}

export interface PgDatabase {
  oid: number;
  name: string;
  /** Highest system oid (datlastsysoid; template0's oid from PostgreSQL 15 on). */
  lastSystemOid: number;
}

export async function databaseList(db: Db, major: number): Promise<PgDatabase[]> {
  const rows = await db.query(`select oid::text as oid, datname, ${pgFunctions(major).lastSystemOid}::text as last from pg_database order by datname`);
  return rows.map((r) => ({ oid: Number(r.oid), name: r.datname!, lastSystemOid: Number(r.last) }));
}

export interface PgTablespace {
  oid: number;
  name: string;
  location: string;
}

export async function tablespaceList(db: Db): Promise<PgTablespace[]> {
  const rows = await db.query("select oid::text as oid, spcname, pg_tablespace_location(oid) as location from pg_tablespace where spcname not in ('pg_default', 'pg_global') order by oid");
  return rows.map((r) => ({ oid: Number(r.oid), name: r.spcname!, location: r.location! }));
}

export async function currentWalLsn(db: Db, major: number): Promise<bigint> {
  const rows = await db.query(`select ${pgFunctions(major).currentWalLsn}()::text as lsn`);
  return lsnParse(rows[0]!.lsn!);
}

/** How far a standby has replayed WAL (0 before it replayed anything). */
export async function replayLsn(db: Db, major: number): Promise<bigint> {
  const rows = await db.query(`select coalesce(${pgFunctions(major).lastReplayLsn}()::text, '0/0') as lsn`);
  return lsnParse(rows[0]!.lsn!);
}

/** REDO point of the last checkpoint (a restartpoint on a standby) recorded in pg_control. */
export async function checkpointRedoLsn(db: Db): Promise<bigint> {
  const rows = await db.query("select redo_lsn::text as lsn from pg_control_checkpoint()");
  return lsnParse(rows[0]!.lsn!);
}

/** Seconds since the epoch on the database server (labels and timestamps follow the database clock). */
export async function serverTime(db: Db): Promise<number> {
  const rows = await db.query("select extract(epoch from clock_timestamp())::text as t");
  return Number(rows[0]!.t);
}
