/**
 * A few libc calls Bun has no API for.
 *
 * localtime_r, for log timestamps. JavaScriptCore loads ICU's time-zone data on the first
 * local-time call of a process (Date#getHours and friends): 5-30ms on the benchmark machine, a
 * large share of a short command such as archive-push, which PostgreSQL runs once per WAL segment.
 * libc reads /etc/localtime (or $TZ) once and converts in microseconds.
 */
import { FFIType } from "bun:ffi";
import { lazyLibrary } from "./load.ts";

const libc = lazyLibrary(
  "libc.so.6",
  {
    localtime_r: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
    sync_file_range: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.u32], returns: FFIType.i32 },
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    fstatfs: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  },
  "pgbunker needs the GNU C library.",
);

export interface LocalTime {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const timeT = new BigInt64Array(1);
/** struct tm on LP64 glibc: nine ints, padding, long tm_gmtoff, const char *tm_zone (56 bytes). */
const tm = new Int32Array(14);

/** Local calendar time of an epoch second, or undefined when libc cannot be used (then use Date). */
export function localTime(epochSeconds: number): LocalTime | undefined {
  try {
    timeT[0] = BigInt(epochSeconds);
    if (!libc().localtime_r(timeT, tm)) return undefined;
  } catch {
    return undefined;
  }
  return { year: tm[5]! + 1900, month: tm[4]! + 1, day: tm[3]!, hour: tm[2]!, minute: tm[1]!, second: tm[0]! };
}

const SYNC_FILE_RANGE_WRITE = 2;

/**
 * Start writing a range of a file to disk without waiting for it (sync_file_range with
 * SYNC_FILE_RANGE_WRITE, as PostgreSQL's *_flush_after settings do). Not a durability guarantee:
 * a later fsync/syncfs still waits, but finds little left to write. Returns false if it failed.
 */
export function startWriteback(fd: number, offset: number, length: number): boolean {
  try {
    return libc().sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) === 0;
  } catch {
    return false;
  }
}

const F_GETFL = 3;
const F_SETFL = 4;

/** Set or clear file status flags of an open descriptor (fcntl F_SETFL, e.g. O_DIRECT). False if refused. */
export function setFileFlag(fd: number, flag: number, on: boolean): boolean {
  try {
    const flags = libc().fcntl(fd, F_GETFL, 0);
    if (flags < 0) return false;
    return libc().fcntl(fd, F_SETFL, on ? flags | flag : flags & ~flag) === 0;
  } catch {
    return false;
  }
}

/** struct statfs on x86-64/arm64 Linux is 120 bytes; f_type (a long) comes first. */
const statfsBuf = new BigInt64Array(16);

/** The file system type (statfs f_type magic) of an open descriptor, or undefined if unknown. */
export function fileSystemType(fd: number): number | undefined {
  try {
    return libc().fstatfs(fd, statfsBuf) === 0 ? Number(statfsBuf[0]! & 0xffffffffn) : undefined;
  } catch {
    return undefined;
  }
}
