/**
 * WAL naming and arithmetic: LSNs, segment names (timeline + segment number), history, partial and
 * backup-label files, and the long page header at the start of every segment.
 */
import { err } from "../common/error.ts";

export const WAL_SEGMENT_DEFAULT = 16 * 1024 * 1024;

export const WAL_SEGMENT_RE = /^[0-9A-F]{24}$/;
export const WAL_PARTIAL_RE = /^[0-9A-F]{24}\.partial$/;
export const WAL_HISTORY_RE = /^[0-9A-F]{8}\.history$/;
export const WAL_BACKUP_RE = /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/;

export type WalFileKind = "segment" | "partial" | "history" | "backup";

export function walFileKind(name: string): WalFileKind | undefined {
  if (WAL_SEGMENT_RE.test(name)) return "segment";
  if (WAL_PARTIAL_RE.test(name)) return "partial";
  if (WAL_HISTORY_RE.test(name)) return "history";
  if (WAL_BACKUP_RE.test(name)) return "backup";
  return undefined;
}

/** "0/3000028" → 0x3000028n */
export function lsnParse(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw err("FormatError", `'${text}' is not a valid LSN`, "an LSN looks like 0/3000028.");
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function lsnFormat(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

const hex8 = (n: number | bigint) => n.toString(16).toUpperCase().padStart(8, "0");

export function segmentsPerLogId(segmentSize: number): bigint {
  return 0x100000000n / BigInt(segmentSize);
}

/** Segment number holding an LSN. */
export function lsnToSegmentNo(lsn: bigint, segmentSize: number): bigint {
  return lsn / BigInt(segmentSize);
}

export function segmentName(timeline: number, segmentNo: bigint, segmentSize: number): string {
  const per = segmentsPerLogId(segmentSize);
  return `${hex8(timeline)}${hex8(segmentNo / per)}${hex8(segmentNo % per)}`;
}

/** Name of the segment that holds `lsn` on `timeline`. */
export function lsnToSegment(lsn: bigint, timeline: number, segmentSize: number): string {
  return segmentName(timeline, lsnToSegmentNo(lsn, segmentSize), segmentSize);
}

export interface SegmentParts {
  timeline: number;
  segmentNo: bigint;
}

export function segmentParse(name: string, segmentSize: number): SegmentParts {
  if (!/^[0-9A-F]{24}/.test(name)) throw err("FormatError", `'${name}' is not a WAL segment name`);
  const timeline = parseInt(name.slice(0, 8), 16);
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  return { timeline, segmentNo: log * segmentsPerLogId(segmentSize) + seg };
}

export function segmentNext(name: string, segmentSize: number): string {
  const p = segmentParse(name, segmentSize);
  return segmentName(p.timeline, p.segmentNo + 1n, segmentSize);
}

/** Every segment from start to stop inclusive (same timeline). */
export function segmentRange(start: string, stop: string, segmentSize: number): string[] {
  const a = segmentParse(start, segmentSize);
  const b = segmentParse(stop, segmentSize);
  if (a.timeline !== b.timeline) throw err("AssertError", `segments ${start} and ${stop} are on different timelines`);
  const out: string[] = [];
  for (let n = a.segmentNo; n <= b.segmentNo; n++) out.push(segmentName(a.timeline, n, segmentSize));
  return out;
}

export function timelineOfName(name: string): number {
  return parseInt(name.slice(0, 8), 16);
}

export function historyFileName(timeline: number): string {
  return `${hex8(timeline)}.history`;
}

/** The long page header at the start of each segment: system id and sizes of the cluster that wrote it. */
export interface WalSegmentHeader {
  magic: number;
  timeline: number;
  pageAddress: bigint;
  systemId: bigint;
  segmentSize: number;
  pageSize: number;
}

const XLP_LONG_HEADER = 0x0002;

export function parseWalHeader(buf: Uint8Array, name: string): WalSegmentHeader {
  if (buf.byteLength < 40) throw err("FormatError", `WAL segment '${name}' is too short to hold a page header (${buf.byteLength} bytes)`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const info = v.getUint16(2, true);
  if ((info & XLP_LONG_HEADER) === 0)
    throw err("FormatError", `WAL segment '${name}' does not start with a long page header`, "the file is not a WAL segment or is corrupt.");
  return {
    magic: v.getUint16(0, true),
    timeline: v.getUint32(4, true),
    pageAddress: v.getBigUint64(8, true),
    systemId: v.getBigUint64(24, true),
    segmentSize: v.getUint32(32, true),
    pageSize: v.getUint32(36, true),
  };
}
