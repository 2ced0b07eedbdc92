/**
 * PostgreSQL 19 files built from facts, since no PostgreSQL 19 binaries can be had: a pg_control
 * and a WAL segment whose first page is a long page header. The layout is written out here as
 * PostgreSQL 19's ControlFileData and XLogLongPageHeaderData lay it out on x86-64 (as vendored by
 * pgBackRest 2.59.1, src/postgres/interface/version.vendor.h), deliberately not taken from
 * src/postgres/version.ts: a wrong offset there must fail the tests, and pgBackRest 2.59.1 reading
 * these files (it checks the CRC at the end) is the oracle that this layout is right.
 */
import { crc32c } from "../../src/native/helper.ts";

export const PG19_CONTROL_VERSION = 1902;
/** CATALOG_VERSION_NO of 19's development tree when pgBackRest 2.59.1 was released. */
export const PG19_CATALOG_VERSION = 202605131;
export const PG19_WAL_MAGIC = 0xd121;

/** Byte offsets in PostgreSQL 19's pg_control (19 grew CheckPoint by 8 and added slru_pages_per_segment). */
const OFF = {
  systemId: 0,
  controlVersion: 8,
  catalogVersion: 12,
  state: 16,
  checkPoint: 32,
  /** checkPointCopy (at 40) .ThisTimeLineID */
  timeline: 48,
  blcksz: 224,
  relsegSize: 228,
  slruPagesPerSegment: 232,
  xlogBlcksz: 236,
  xlogSegSize: 240,
  dataChecksumVersion: 264,
  crc: 304,
};
const PG_CONTROL_FILE_SIZE = 8192;
const DB_SHUTDOWNED = 1;

export interface Pg19ControlOptions {
  systemId: bigint;
  catalogVersion?: number;
  checkpoint?: bigint;
  timeline?: number;
  walSegmentSize?: number;
  dataChecksums?: boolean;
}

/** A whole global/pg_control file (8192 bytes, CRC-32C over everything before the crc field). */
export function pg19Control(o: Pg19ControlOptions): Uint8Array {
  const buf = new Uint8Array(PG_CONTROL_FILE_SIZE);
  const v = new DataView(buf.buffer);
  v.setBigUint64(OFF.systemId, o.systemId, true);
  v.setUint32(OFF.controlVersion, PG19_CONTROL_VERSION, true);
  v.setUint32(OFF.catalogVersion, o.catalogVersion ?? PG19_CATALOG_VERSION, true);
  v.setUint32(OFF.state, DB_SHUTDOWNED, true);
  v.setBigUint64(OFF.checkPoint, o.checkpoint ?? 0x1000028n, true);
  v.setUint32(OFF.timeline, o.timeline ?? 1, true);
  v.setUint32(OFF.blcksz, 8192, true);
  v.setUint32(OFF.relsegSize, 131072, true);
  v.setUint32(OFF.slruPagesPerSegment, 32, true);
  v.setUint32(OFF.xlogBlcksz, 8192, true);
  v.setUint32(OFF.xlogSegSize, o.walSegmentSize ?? 16 * 1024 * 1024, true);
  v.setUint32(OFF.dataChecksumVersion, o.dataChecksums === false ? 0 : 1, true);
  v.setUint32(OFF.crc, crc32c(buf.subarray(0, OFF.crc)), true);
  return buf;
}

const XLP_LONG_HEADER = 0x0002;

export interface Pg19WalOptions {
  systemId: bigint;
  timeline?: number;
  segmentNo?: bigint;
  segmentSize?: number;
  /** Page magic to write (another major's, to test refusals). */
  magic?: number;
}

/** A whole WAL segment: the long page header, then zeros (no records: enough for archiving). */
export function pg19WalSegment(o: Pg19WalOptions): Uint8Array {
  const size = o.segmentSize ?? 16 * 1024 * 1024;
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  v.setUint16(0, o.magic ?? PG19_WAL_MAGIC, true);
  v.setUint16(2, XLP_LONG_HEADER, true);
  v.setUint32(4, o.timeline ?? 1, true);
  v.setBigUint64(8, (o.segmentNo ?? 1n) * BigInt(size), true);
  v.setBigUint64(24, o.systemId, true);
  v.setUint32(32, size, true);
  v.setUint32(36, 8192, true);
  return buf;
}
