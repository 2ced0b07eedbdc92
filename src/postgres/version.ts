/**
 * THE table of per-major PostgreSQL facts pgbunker relies on: pg_control layout, catalog and
 * control versions, WAL page magic, function names and arguments for backup start/stop and WAL
 * switching, and recovery configuration style. Offsets were read from pg_control files written by
 * each major's initdb (see test/unit/postgres/control.test.ts, which checks them against real
 * clusters). PostgreSQL 19 cannot be run here yet: its row comes from its development tree's
 * pg_control.h, catversion.h and xlog_internal.h as vendored by pgBackRest 2.59.1 (which supports
 * it), and is checked against files built from those facts and read by pgBackRest 2.59.1.
 */
import { err } from "../common/error.ts";

export interface PgVersionFacts {
  /** Major version as PostgreSQL spells it in PG_VERSION and pgBackRest in db-version ("15"). */
  version: string;
  major: number;
  controlVersion: number;
  catalogVersion: number;
  /** XLOG_PAGE_MAGIC of this major's WAL pages. */
  walMagic: number;
  /**
   * WAL record facts that differ by major (postgres/wal-records.ts reads records; page and record
   * headers, resource manager ids and the info codes it reads are the same in 10-19).
   */
  walRecord: {
    /** bimg_info bits saying a full-page image is compressed (then a hole length follows): BKPIMAGE_IS_COMPRESSED before 15, one bit per method (pglz, lz4, zstd) from 15. */
    imageCompressedMask: number;
  };
  control: {
    /** Offset of ControlFileData.checkPoint (LSN of the latest checkpoint record). */
    checkpoint: number;
    /** Offset of checkPointCopy.ThisTimeLineID. */
    timeline: number;
    /** Offset of blcksz (the data page size). */
    blcksz: number;
    /** Offset of relseg_size (pages per relation segment file). */
    relsegSize: number;
    /** Offset of xlog_blcksz (WAL page size): 19 put slru_pages_per_segment before it. */
    walBlcksz: number;
    /** Offset of xlog_seg_size (WAL segment size). */
    walSegSize: number;
    /** Offset of data_checksum_version. */
    dataChecksumVersion: number;
    /** Offset of the CRC-32C that covers every byte before it. */
    crc: number;
  };
}

/** Layout from blcksz on, when relseg_size, xlog_blcksz and xlog_seg_size follow it as uint32s (10-18). */
const sizesAfter = (blcksz: number) => ({ blcksz, relsegSize: blcksz + 4, walBlcksz: blcksz + 8, walSegSize: blcksz + 12 });

const CONTROL_OLD = { checkpoint: 32, timeline: 56, ...sizesAfter(216), dataChecksumVersion: 252, crc: 288 };
const CONTROL_11 = { checkpoint: 32, timeline: 48, ...sizesAfter(208), dataChecksumVersion: 244, crc: 280 };
const CONTROL_12 = { checkpoint: 32, timeline: 48, ...sizesAfter(216), dataChecksumVersion: 252, crc: 288 };
// 18 added default_char_signedness after data_checksum_version.
const CONTROL_18 = { ...CONTROL_12, crc: 292 };
// 19: CheckPoint grew by 8 (logicalDecodingEnabled, a 64-bit nextMultiOffset, dataChecksumState),
// and slru_pages_per_segment sits between relseg_size and xlog_blcksz.
const CONTROL_19 = { checkpoint: 32, timeline: 48, blcksz: 224, relsegSize: 228, walBlcksz: 236, walSegSize: 240, dataChecksumVersion: 264, crc: 304 };

const WAL_RECORD_OLD = { imageCompressedMask: 0x02 };
const WAL_RECORD_15 = { imageCompressedMask: 0x04 | 0x08 | 0x10 };

export const PG_VERSIONS: readonly PgVersionFacts[] = [
  { version: "10", major: 10, controlVersion: 1002, catalogVersion: 201707211, walMagic: 0xd097, walRecord: WAL_RECORD_OLD, control: CONTROL_OLD },
  { version: "11", major: 11, controlVersion: 1100, catalogVersion: 201809051, walMagic: 0xd098, walRecord: WAL_RECORD_OLD, control: CONTROL_11 },
  { version: "12", major: 12, controlVersion: 1201, catalogVersion: 201909212, walMagic: 0xd101, walRecord: WAL_RECORD_OLD, control: CONTROL_12 },
  { version: "13", major: 13, controlVersion: 1300, catalogVersion: 202007201, walMagic: 0xd106, walRecord: WAL_RECORD_OLD, control: CONTROL_12 },
  { version: "14", major: 14, controlVersion: 1300, catalogVersion: 202107181, walMagic: 0xd10d, walRecord: WAL_RECORD_OLD, control: CONTROL_12 },
  { version: "15", major: 15, controlVersion: 1300, catalogVersion: 202209061, walMagic: 0xd110, walRecord: WAL_RECORD_15, control: CONTROL_12 },
  { version: "16", major: 16, controlVersion: 1300, catalogVersion: 202307071, walMagic: 0xd113, walRecord: WAL_RECORD_15, control: CONTROL_12 },
  { version: "17", major: 17, controlVersion: 1700, catalogVersion: 202406281, walMagic: 0xd116, walRecord: WAL_RECORD_15, control: CONTROL_12 },
  { version: "18", major: 18, controlVersion: 1800, catalogVersion: 202506291, walMagic: 0xd118, walRecord: WAL_RECORD_15, control: CONTROL_18 },
  // Not yet released: the catalog version is the development tree's (a later one is still 19, see
  // pgVersionFromControl). Supported from these facts, not yet tested against a live server.
  { version: "19", major: 19, controlVersion: 1902, catalogVersion: 202605131, walMagic: 0xd121, walRecord: WAL_RECORD_15, control: CONTROL_19 },
];

export const PG_VERSION_MIN = 10;
export const PG_VERSION_MAX = 19;

export function pgVersionSupported(): string {
  return PG_VERSIONS.map((v) => v.version).join(", ");
}

/** Facts for a major given as "15" or 15. */
export function pgVersion(version: string | number): PgVersionFacts {
  const facts = PG_VERSIONS.find((v) => v.version === String(version));
  if (!facts)
    throw err("VersionNotSupportedError", `PostgreSQL version ${version} is not supported`, `pgbunker supports PostgreSQL ${pgVersionSupported()}.`);
  return facts;
}

/** Identify the major from pg_control's control and catalog versions (13-16 share control 1300). */
export function pgVersionFromControl(controlVersion: number, catalogVersion: number): PgVersionFacts {
  const exact = PG_VERSIONS.find((v) => v.controlVersion === controlVersion && v.catalogVersion === catalogVersion);
  if (exact) return exact;
  // Development and beta builds bump the catalog version: take the newest major with this control
  // version whose catalog version is not newer than the file's.
  const byControl = PG_VERSIONS.filter((v) => v.controlVersion === controlVersion && v.catalogVersion <= catalogVersion);
  const best = byControl.at(-1);
  if (best) return best;
  throw err(
    "VersionNotSupportedError",
    `unexpected control version = ${controlVersion} and catalog version = ${catalogVersion}`,
    `is this version of PostgreSQL supported? pgbunker supports ${pgVersionSupported()}.`,
  );
}

/** The major that writes WAL pages with this XLOG_PAGE_MAGIC (from a segment's first page header). */
export function pgVersionFromWalMagic(magic: number): PgVersionFacts | undefined {
  return PG_VERSIONS.find((v) => v.walMagic === magic);
}

/** SQL function names (and arguments, columns) that changed across majors. */
export function pgFunctions(major: number) {
  return {
    backupStart: major >= 15 ? "pg_backup_start" : "pg_start_backup",
    backupStop: major >= 15 ? "pg_backup_stop" : "pg_stop_backup",
    /** Before 15 both backup functions take an `exclusive` flag (pgbunker passes false). */
    backupExclusiveArg: major < 15,
    /** pg_database.datlastsysoid is gone from 15 on: template0's oid is the last system one. */
    lastSystemOid: major >= 15 ? "(select oid from pg_database where datname = 'template0')" : "datlastsysoid",
    walSwitch: "pg_switch_wal",
    currentWalLsn: "pg_current_wal_lsn",
    lastReplayLsn: "pg_last_wal_replay_lsn",
    walFileName: "pg_walfile_name",
    walDir: "pg_wal",
  };
}

/** PostgreSQL 12 moved recovery settings into postgresql.auto.conf + signal files. */
export function pgRecoveryUsesSignalFiles(major: number): boolean {
  return major >= 12;
}

/** Objects (databases among them) with an OID below this were made by initdb: the system ones. */
export const FIRST_NORMAL_OBJECT_ID = 16384;
