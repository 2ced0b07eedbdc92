/**
 * Read pg_control (global/pg_control): system identifier, version, WAL segment size, page size,
 * checksum setting, latest checkpoint and timeline. The CRC-32C is checked before anything is
 * trusted, so a torn or foreign file is refused rather than misread.
 */
import { err } from "../common/error.ts";
import { crc32c } from "../native/helper.ts";
import type { Storage } from "../storage/storage.ts";
import { pgVersionFromControl, type PgVersionFacts } from "./version.ts";

export const PG_CONTROL_PATH = "global/pg_control";

export interface PgControl {
  systemId: bigint;
  controlVersion: number;
  catalogVersion: number;
  facts: PgVersionFacts;
  version: string;
  pageSize: number;
  relSegSize: number;
  walPageSize: number;
  walSegmentSize: number;
  /** 0 when data checksums are off. */
  dataChecksumVersion: number;
  checkpointLsn: bigint;
  timeline: number;
}

export function parsePgControl(buf: Uint8Array, source = PG_CONTROL_PATH): PgControl {
  if (buf.byteLength < 512)
    throw err("FileInvalidError", `'${source}' is too small to be pg_control (${buf.byteLength} bytes)`, "is this a PostgreSQL data directory?");
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const systemId = v.getBigUint64(0, true);
  const controlVersion = v.getUint32(8, true);
  const catalogVersion = v.getUint32(12, true);

  // Byte-swapped control versions mean a file from a machine of the other endianness.
  if (controlVersion % 65536 === 0 && controlVersion / 65536 !== 0)
    throw err("FileInvalidError", `'${source}' was written on a machine of different byte order`);

  const facts = pgVersionFromControl(controlVersion, catalogVersion);
  const c = facts.control;
  const stored = v.getUint32(c.crc, true);
  const actual = crc32c(buf.subarray(0, c.crc));
  if (stored !== actual)
    throw err(
      "ChecksumError",
      `pg_control '${source}' has an invalid CRC: stored ${hex(stored)}, computed ${hex(actual)}`,
      "the file is corrupt or being written; if PostgreSQL is running, try again.",
    );

  return {
    systemId,
    controlVersion,
    catalogVersion,
    facts,
    version: facts.version,
    pageSize: v.getUint32(c.blcksz, true),
    relSegSize: v.getUint32(c.relsegSize, true),
    walPageSize: v.getUint32(c.walBlcksz, true),
    walSegmentSize: v.getUint32(c.walSegSize, true),
    dataChecksumVersion: v.getUint32(c.dataChecksumVersion, true),
    checkpointLsn: v.getBigUint64(c.checkpoint, true),
    timeline: v.getUint32(c.timeline, true),
  };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/** Read and check pg_control of a data directory (local or on a database host). */
export async function readPgControl(pg: Storage): Promise<PgControl> {
  const buf = await pg.get(PG_CONTROL_PATH);
  if (buf === null) throw err("FileMissingError", `unable to open missing file '${pg.path(PG_CONTROL_PATH)}' for read`, "is pg1-path a PostgreSQL data directory?");
  return parsePgControl(buf, pg.path(PG_CONTROL_PATH));
}
