/**
 * A streaming reader of the WAL records in one segment, for the few records that say where a
 * recovery can stop: named restore points (XLOG_RESTORE_POINT), transaction commits and aborts
 * (with their timestamps and database), backup ends, checkpoints, end of recovery, WAL switches.
 *
 * The bytes arrive in chunks of any size (as they come out of decompression); pages are assembled
 * one at a time, their headers checked (magic, page address, continuation length), and the record
 * bytes between them read as one stream: records start MAXALIGNed, a header (24 bytes) or a body
 * may continue on the next page, whose header says how much of it remains. Only records of
 * interest are kept, and each of them is checked against its CRC-32C. A record that begins in
 * this segment and ends in the next cannot be completed here: its first bytes are returned as the
 * segment's `tail`, the next segment returns the rest as its `head`, and `stitchRecord` joins
 * them (segments are read in parallel, one per worker).
 *
 * Layouts (PostgreSQL's access/xlog_internal.h, xlogrecord.h, xlog.h, xact.h, pg_control.h) are the
 * same in 10-19 except where version.ts's `walRecord` facts say otherwise.
 */
import { concatBytes } from "../common/bytes.ts";
import { err } from "../common/error.ts";
import { crc32c } from "../native/helper.ts";
import { type PgVersionFacts, pgVersionFromWalMagic } from "./version.ts";
import { lsnFormat, segmentParse } from "./wal.ts";

// Page header (XLogPageHeaderData, XLogLongPageHeaderData), MAXALIGNed.
const SHORT_PAGE_HEADER = 24;
const LONG_PAGE_HEADER = 40;
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
/** 14+: the record continued from the previous page was abandoned (a crash mid-record) and overwritten. */
const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;

// Record header (XLogRecord): xl_tot_len u32, xl_xid u32, xl_prev u64, xl_info u8, xl_rmid u8, pad, xl_crc u32.
export const RECORD_HEADER = 24;
const CRC_OFFSET = 20;
const MAXALIGN = 8;

// Resource managers and info codes (rmgrlist.h, pg_control.h, xact.h).
export const RM_XLOG_ID = 0;
export const RM_XACT_ID = 1;
const XLOG_CHECKPOINT_SHUTDOWN = 0x00;
const XLOG_CHECKPOINT_ONLINE = 0x10;
const XLOG_SWITCH = 0x40;
const XLOG_BACKUP_END = 0x50;
const XLOG_RESTORE_POINT = 0x70;
const XLOG_END_OF_RECOVERY = 0x90;
const XLOG_XACT_OPMASK = 0x70;
const XLOG_XACT_COMMIT = 0x00;
const XLOG_XACT_ABORT = 0x20;
const XLOG_XACT_COMMIT_PREPARED = 0x30;
const XLOG_XACT_ABORT_PREPARED = 0x40;
const XLOG_XACT_HAS_INFO = 0x80;
const XACT_XINFO_HAS_DBINFO = 0x01;
/** xl_restore_point.rp_name: MAXFNAMELEN. */
const RESTORE_POINT_NAME = 64;

// Block references in a record body (xlogrecord.h).
const XLR_MAX_BLOCK_ID = 32;
const XLR_BLOCK_ID_DATA_SHORT = 255;
const XLR_BLOCK_ID_DATA_LONG = 254;
const XLR_BLOCK_ID_ORIGIN = 253;
const XLR_BLOCK_ID_TOPLEVEL_XID = 252;
const BKPBLOCK_HAS_IMAGE = 0x10;
const BKPBLOCK_SAME_REL = 0x80;
const BKPIMAGE_HAS_HOLE = 0x01;

/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC). */
const PG_EPOCH_US = 946_684_800_000_000n;

/** What a record of interest says. Times are microseconds since the Unix epoch (TimestampTz). */
export type WalEvent =
  | { type: "restore-point"; time: number; name: string }
  | { type: "commit" | "abort"; time: number; dbId?: number; xid: number }
  | { type: "backup-end"; backupStart: string }
  | { type: "checkpoint"; shutdown: boolean; redo: string; timeline: number }
  | { type: "end-of-recovery"; time: number; timeline: number; prevTimeline: number }
  | { type: "switch" };

export interface WalRecord {
  /** LSN where the record starts and where it ends: MAXALIGNed, what pg_create_restore_point and pg_backup_stop return (the next record's start unless a page header comes first). */
  lsn: string;
  end: string;
  event: WalEvent;
}

/** The first bytes of a record that goes on in the next segment. */
export interface RecordTail {
  lsn: string;
  /** xl_tot_len, when the 4 bytes holding it are in this segment. */
  totalLength?: number;
  /** The record's bytes so far; absent when the record is not of interest (its header said so). */
  bytes?: Uint8Array;
}

/** The end of a record begun in an earlier segment, at the start of this one. */
export interface RecordHead {
  /** xlp_rem_len of the segment's first page: the bytes of the record remaining from here. */
  remaining: number;
  /** The bytes in this segment (at most HEAD_KEEP; fewer when the record goes on past the segment). */
  bytes: Uint8Array;
  /** Whether the record ends in this segment, and where (MAXALIGNed, as WalRecord.end). */
  ends: boolean;
  end?: string;
}

export interface SegmentScan {
  timeline: number;
  systemId: string;
  pageSize: number;
  segmentSize: number;
  records: WalRecord[];
  head?: RecordHead;
  tail?: RecordTail;
  /** Where the valid WAL of the segment ends, and why it ends there. */
  end: string;
  endReason: "segment-end" | "switch" | "zeros" | "page-address" | "bad-record";
  /** Records of interest whose CRC did not match (not reported). */
  crcErrors: number;
}

/** Record bytes kept for a head: enough for any record of interest (a restore point is 98 bytes, a commit usually far less than this). */
const HEAD_KEEP = 1024 * 1024;

const hex = lsnFormat;
const align = (n: number) => (n + MAXALIGN - 1) & ~(MAXALIGN - 1);

/** Records of these resource managers are read; the rest skipped without copying. */
function interesting(rmid: number, info: number): boolean {
  if (rmid === RM_XACT_ID) {
    const op = info & XLOG_XACT_OPMASK;
    return op === XLOG_XACT_COMMIT || op === XLOG_XACT_ABORT || op === XLOG_XACT_COMMIT_PREPARED || op === XLOG_XACT_ABORT_PREPARED;
  }
  if (rmid !== RM_XLOG_ID) return false;
  const op = info & 0xf0;
  return op === XLOG_RESTORE_POINT || op === XLOG_BACKUP_END || op === XLOG_CHECKPOINT_ONLINE || op === XLOG_CHECKPOINT_SHUTDOWN || op === XLOG_END_OF_RECOVERY || op === XLOG_SWITCH;
}

export class WalSegmentScanner {
  readonly #name: string;
  #segmentStart = 0n;
  #expectedSegmentSize: number;
  #facts?: PgVersionFacts;
  #pageSize = 0;
  #page?: Uint8Array;
  #pageFill = 0;
  #pageNo = 0;
  #done = false;
  readonly #out: SegmentScan;

  // The record being read: its start LSN, its header bytes, its length and what is kept of it.
  #recLsn = 0n;
  readonly #hdr = new Uint8Array(RECORD_HEADER);
  #hdrFill = 0;
  #total = 0;
  #read = 0;
  #keep?: Uint8Array;
  /** Bytes still to skip (alignment padding, or an uninteresting body). */
  #pad = 0;
  /** Bytes of the head continuation still to come (first page CONTRECORD). */
  #headLeft = 0;
  #headBytes: Uint8Array[] = [];
  #headKept = 0;
  #lsn = 0n;

  /**
   * `name` is the segment's WAL name; its size is the one its long header gives (which must be
   * `segmentSize` when that is given). The major is told by the first page's magic, and must be
   * supported.
   */
  constructor(name: string, segmentSize?: number) {
    this.#name = name;
    this.#expectedSegmentSize = segmentSize ?? 0;
    this.#out = { timeline: 0, systemId: "0", pageSize: 0, segmentSize: this.#expectedSegmentSize, records: [], end: "0/0", endReason: "segment-end", crcErrors: 0 };
  }

  /** Feed the next bytes of the segment (any chunk size). */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.byteLength && !this.#done) {
      if (!this.#page) {
        // The first page's long header gives the page size.
        const need = LONG_PAGE_HEADER;
        this.#first ??= new Uint8Array(need);
        const n = Math.min(need - this.#firstFill, chunk.byteLength - at);
        this.#first.set(chunk.subarray(at, at + n), this.#firstFill);
        this.#firstFill += n;
        at += n;
        if (this.#firstFill < need) return;
        this.#start(this.#first);
        continue;
      }
      const n = Math.min(this.#pageSize - this.#pageFill, chunk.byteLength - at);
      this.#page.set(chunk.subarray(at, at + n), this.#pageFill);
      this.#pageFill += n;
      at += n;
      if (this.#pageFill === this.#pageSize) {
        this.#readPage(this.#page);
        this.#pageFill = 0;
        this.#pageNo++;
      }
    }
  }

  #first?: Uint8Array;
  #firstFill = 0;

  #start(first: Uint8Array): void {
    const v = new DataView(first.buffer, first.byteOffset, first.byteLength);
    const magic = v.getUint16(0, true);
    this.#facts = pgVersionFromWalMagic(magic);
    if (!this.#facts)
      throw err("FormatError", `WAL segment '${this.#name}' has page magic 0x${magic.toString(16)}, which no supported PostgreSQL major writes`, "is it a WAL segment of PostgreSQL 10 or later?");
    if ((v.getUint16(2, true) & XLP_LONG_HEADER) === 0) throw err("FormatError", `WAL segment '${this.#name}' does not start with a long page header`, "the file is not a WAL segment or is corrupt.");
    this.#out.timeline = v.getUint32(4, true);
    this.#out.systemId = v.getBigUint64(24, true).toString();
    const segmentSize = v.getUint32(32, true);
    this.#pageSize = v.getUint32(36, true);
    if ((this.#expectedSegmentSize && segmentSize !== this.#expectedSegmentSize) || segmentSize < 1024 * 1024 || this.#pageSize < 1024 || this.#pageSize % MAXALIGN !== 0 || segmentSize % this.#pageSize !== 0)
      throw err("FormatError", `WAL segment '${this.#name}' says its segment size is ${segmentSize} and its page size ${this.#pageSize} (expected segment size ${this.#expectedSegmentSize})`);
    this.#expectedSegmentSize = segmentSize;
    this.#segmentStart = segmentParse(this.#name, segmentSize).segmentNo * BigInt(segmentSize);
    if (v.getBigUint64(8, true) !== this.#segmentStart)
      throw err("FormatError", `WAL segment '${this.#name}' starts at LSN ${hex(v.getBigUint64(8, true))}, not at ${hex(this.#segmentStart)} as its name says`, "the file was stored under the wrong name or is corrupt.");
    Object.assign(this.#out, { pageSize: this.#pageSize, segmentSize, end: hex(this.#segmentStart) });
    this.#page = new Uint8Array(this.#pageSize);
    this.#page.set(first);
    this.#pageFill = first.byteLength;
    this.#first = undefined;
  }

  #stop(reason: SegmentScan["endReason"], at: bigint): void {
    this.#done = true;
    this.#out.endReason = reason;
    this.#out.end = hex(at);
    this.#keep = undefined;
    this.#hdrFill = 0;
    this.#total = 0;
  }

  #readPage(page: Uint8Array): void {
    const v = new DataView(page.buffer, page.byteOffset, page.byteLength);
    const pageLsn = this.#segmentStart + BigInt(this.#pageNo * this.#pageSize);
    const info = v.getUint16(2, true);
    // A recycled or unwritten page: the segment's valid WAL ends here.
    if (v.getUint16(0, true) !== this.#facts!.walMagic || v.getBigUint64(8, true) !== pageLsn) return this.#stop(this.#recordOpen() ? "bad-record" : "page-address", pageLsn);
    const headerSize = info & XLP_LONG_HEADER ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER;
    const remLen = v.getUint32(16, true);
    let pos = headerSize;
    this.#lsn = pageLsn + BigInt(pos);

    if (this.#pageNo === 0 && info & XLP_FIRST_IS_CONTRECORD) {
      this.#headLeft = remLen;
      this.#out.head = { remaining: remLen, bytes: new Uint8Array(0), ends: false };
    } else if (this.#headLeft > 0) {
      if (!(info & XLP_FIRST_IS_CONTRECORD) || remLen !== this.#headLeft) return this.#stop("bad-record", this.#lsn);
    } else if (this.#recordOpen()) {
      if (info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) {
        // The record was never finished: PostgreSQL wrote on from here.
        this.#keep = undefined;
        this.#hdrFill = 0;
        this.#total = 0;
      } else {
        const done = this.#hdrFill < RECORD_HEADER ? this.#hdrFill : this.#read;
        if (!(info & XLP_FIRST_IS_CONTRECORD) || (this.#total > 0 && remLen !== this.#total - done)) return this.#stop("bad-record", this.#recLsn);
      }
    }

    while (pos < this.#pageSize && !this.#done) {
      const avail = this.#pageSize - pos;
      if (this.#headLeft > 0) {
        const n = Math.min(this.#headLeft, avail);
        if (this.#headKept < HEAD_KEEP) {
          const take = Math.min(n, HEAD_KEEP - this.#headKept);
          this.#headBytes.push(page.slice(pos, pos + take));
          this.#headKept += take;
        }
        this.#headLeft -= n;
        pos += n;
        if (this.#headLeft === 0) {
          pos = align(pos);
          Object.assign(this.#out.head!, { ends: true, end: hex(pageLsn + BigInt(pos)) });
        }
        continue;
      }
      if (this.#pad > 0) {
        const n = Math.min(this.#pad, avail);
        this.#pad -= n;
        pos += n;
        continue;
      }
      if (this.#hdrFill < RECORD_HEADER) {
        if (this.#hdrFill === 0) {
          this.#recLsn = pageLsn + BigInt(pos);
          // xl_tot_len 0: nothing was written from here (the end of WAL in a partial segment).
          if (avail >= 4 && v.getUint32(pos, true) === 0) return this.#stop("zeros", this.#recLsn);
        }
        const n = Math.min(RECORD_HEADER - this.#hdrFill, avail);
        this.#hdr.set(page.subarray(pos, pos + n), this.#hdrFill);
        this.#hdrFill += n;
        pos += n;
        if (this.#hdrFill >= 4 && this.#total === 0) {
          this.#total = new DataView(this.#hdr.buffer).getUint32(0, true);
          if (this.#total < RECORD_HEADER) return this.#stop("bad-record", this.#recLsn);
        }
        if (this.#hdrFill < RECORD_HEADER) continue;
        this.#read = RECORD_HEADER;
        const hv = new DataView(this.#hdr.buffer);
        if (interesting(hv.getUint8(17), hv.getUint8(16))) {
          this.#keep = new Uint8Array(this.#total);
          this.#keep.set(this.#hdr);
        }
        if (this.#read === this.#total) this.#recordDone(pageLsn + BigInt(pos));
        continue;
      }
      const n = Math.min(this.#total - this.#read, avail);
      this.#keep?.set(page.subarray(pos, pos + n), this.#read);
      this.#read += n;
      pos += n;
      if (this.#read === this.#total) this.#recordDone(pageLsn + BigInt(pos));
    }
  }

  #recordOpen(): boolean {
    return this.#hdrFill > 0;
  }

  #recordDone(end: bigint): void {
    const rec = this.#keep;
    const lsn = this.#recLsn;
    this.#keep = undefined;
    this.#hdrFill = 0;
    this.#total = 0;
    this.#read = 0;
    const inPage = Number(end % BigInt(this.#pageSize));
    this.#pad = align(inPage) - inPage;
    const alignedEnd = end + BigInt(this.#pad);
    if (!rec) return;
    const decoded = decodeRecord(rec, this.#facts!);
    if (decoded === "crc") {
      this.#out.crcErrors++;
      return this.#stop("bad-record", lsn);
    }
    if (decoded) this.#out.records.push({ lsn: hex(lsn), end: hex(alignedEnd), event: decoded });
    // After a WAL switch the rest of the segment is padding.
    if (decoded?.type === "switch") this.#stop("switch", alignedEnd);
  }

  /** The scan, once every byte is in (or the caller stopped feeding). */
  end(): SegmentScan {
    if (!this.#facts) throw err("FormatError", `WAL segment '${this.#name}' is too short to hold a page header`);
    if (this.#out.head) this.#out.head.bytes = concatBytes(this.#headBytes);
    if (!this.#done) {
      const end = this.#segmentStart + BigInt(this.#expectedSegmentSize);
      this.#out.end = hex(end);
      if (this.#recordOpen()) {
        this.#out.tail = {
          lsn: hex(this.#recLsn),
          totalLength: this.#total || undefined,
          bytes: this.#keep ? this.#keep.slice(0, this.#read) : this.#hdrFill < RECORD_HEADER ? this.#hdr.slice(0, this.#hdrFill) : undefined,
        };
      }
    }
    return this.#out;
  }
}

/**
 * A record that crossed from one segment into the next: the tail of the first and the head of
 * the second. Undefined when it is not of interest, or when it ends past the second segment.
 */
export function stitchRecord(tail: RecordTail, head: RecordHead, facts: PgVersionFacts): { record?: WalRecord; crcError?: boolean } {
  if (!head.ends || tail.bytes === undefined) return {};
  const bytes = concatBytes([tail.bytes, head.bytes]);
  if (bytes.byteLength < RECORD_HEADER) return {};
  const v = new DataView(bytes.buffer);
  const total = v.getUint32(0, true);
  if (bytes.byteLength !== total || !interesting(v.getUint8(17), v.getUint8(16))) return {};
  const decoded = decodeRecord(bytes, facts);
  if (decoded === "crc") return { crcError: true };
  if (!decoded) return {};
  return { record: { lsn: tail.lsn, end: head.end!, event: decoded } };
}

/** CRC-32C of the body, then of the header up to xl_crc (xlogreader.c ValidXLogRecord). */
export function recordCrcOk(rec: Uint8Array): boolean {
  const v = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const crc = crc32c(rec.subarray(0, CRC_OFFSET), crc32c(rec.subarray(RECORD_HEADER)));
  return crc === v.getUint32(CRC_OFFSET, true);
}

/** The record's main data (after its block references), as DecodeXLogRecord finds it. */
export function mainData(rec: Uint8Array, facts: PgVersionFacts): Uint8Array {
  const v = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  let pos = RECORD_HEADER;
  let blockData = 0;
  let main = 0;
  while (pos < rec.byteLength - blockData) {
    const id = v.getUint8(pos++);
    if (id === XLR_BLOCK_ID_DATA_SHORT) {
      main = v.getUint8(pos++);
      break;
    }
    if (id === XLR_BLOCK_ID_DATA_LONG) {
      main = v.getUint32(pos, true);
      pos += 4;
      break;
    }
    if (id === XLR_BLOCK_ID_ORIGIN) {
      pos += 2;
      continue;
    }
    if (id === XLR_BLOCK_ID_TOPLEVEL_XID) {
      pos += 4;
      continue;
    }
    if (id > XLR_MAX_BLOCK_ID) throw err("FormatError", `invalid block id ${id} in WAL record`);
    const flags = v.getUint8(pos);
    blockData += v.getUint16(pos + 1, true);
    pos += 3;
    if (flags & BKPBLOCK_HAS_IMAGE) {
      blockData += v.getUint16(pos, true);
      const bimgInfo = v.getUint8(pos + 4);
      pos += 5;
      if (bimgInfo & BKPIMAGE_HAS_HOLE && bimgInfo & facts.walRecord.imageCompressedMask) pos += 2;
    }
    if (!(flags & BKPBLOCK_SAME_REL)) pos += 12;
    pos += 4;
  }
  if (main > rec.byteLength - pos) throw err("FormatError", `WAL record main data length ${main} exceeds the record`);
  return rec.subarray(rec.byteLength - main);
}

const pgTime = (v: DataView, at: number) => Number(v.getBigInt64(at, true) + PG_EPOCH_US);

/** The event a record of interest holds; "crc" when its CRC does not match. */
export function decodeRecord(rec: Uint8Array, facts: PgVersionFacts): WalEvent | "crc" | undefined {
  if (!recordCrcOk(rec)) return "crc";
  const hv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const xid = hv.getUint32(4, true);
  const info = hv.getUint8(16);
  const rmid = hv.getUint8(17);
  const data = mainData(rec, facts);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (rmid === RM_XACT_ID) {
    if (data.byteLength < 8) return undefined;
    const op = info & XLOG_XACT_OPMASK;
    let dbId: number | undefined;
    if (info & XLOG_XACT_HAS_INFO && data.byteLength >= 12 && v.getUint32(8, true) & XACT_XINFO_HAS_DBINFO && data.byteLength >= 16) dbId = v.getUint32(12, true);
    return { type: op === XLOG_XACT_COMMIT || op === XLOG_XACT_COMMIT_PREPARED ? "commit" : "abort", time: pgTime(v, 0), dbId, xid };
  }
  switch (info & 0xf0) {
    case XLOG_RESTORE_POINT: {
      const raw = data.subarray(8, 8 + RESTORE_POINT_NAME);
      const nul = raw.indexOf(0);
      return { type: "restore-point", time: pgTime(v, 0), name: new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul)) };
    }
    case XLOG_BACKUP_END:
      return { type: "backup-end", backupStart: hex(v.getBigUint64(0, true)) };
    case XLOG_CHECKPOINT_ONLINE:
    case XLOG_CHECKPOINT_SHUTDOWN:
      return { type: "checkpoint", shutdown: (info & 0xf0) === XLOG_CHECKPOINT_SHUTDOWN, redo: hex(v.getBigUint64(0, true)), timeline: v.getUint32(8, true) };
    case XLOG_END_OF_RECOVERY:
      return { type: "end-of-recovery", time: pgTime(v, 0), timeline: v.getUint32(8, true), prevTimeline: v.getUint32(12, true) };
    case XLOG_SWITCH:
      return { type: "switch" };
  }
  return undefined;
}

/** "2024-05-01 12:00:00.123456+00": what recovery_target_time accepts, to the microsecond. */
export function formatPgTime(us: number): string {
  const ms = Math.floor(us / 1000);
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const micro = ((us % 1_000_000) + 1_000_000) % 1_000_000;
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(micro, 6)}+00`;
}
