/**
 * The WAL record reader on real segments of a PostgreSQL 15 cluster, checked against pg_waldump:
 * the same commits, aborts and restore points at the same LSNs; a restore point placed across a
 * page boundary and one across a segment boundary (the second read from the tail of one segment
 * and the head of the next, as the workers see them); any chunk size gives the same result; a
 * flipped byte in a record fails its CRC.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pgVersion } from "../../../src/postgres/version.ts";
import { lsnFormat, lsnParse, segmentParse } from "../../../src/postgres/wal.ts";
import { type SegmentScan, stitchRecord, type WalRecord, WalSegmentScanner } from "../../../src/postgres/wal-records.ts";
import { Cluster, mkdirAsPostgres, mustRun, SYSTEM_BIN } from "../../harness/cluster.ts";

const SEG = 16 * 1024 * 1024;
const PAGE = 8192;
let c: Cluster;
/** Where archive_command copies the segments. */
let archive = "";
const segments: string[] = [];
/** Restore points: name → the LSN pg_create_restore_point returned (the record's end). */
const points = new Map<string, string>();

const insertLsn = async () => lsnParse(await c.scalar("select pg_current_wal_insert_lsn()::text"));

/**
 * WAL a non-transactional logical message of n bytes takes (prefix 'p'): record header 24, main
 * data header 2 (or 5 past 255 bytes), xl_logical_message 24, prefix 2, the message; MAXALIGNed.
 */
const messageSize = (n: number) => 24 + (24 + 2 + n > 255 ? 5 : 2) + 24 + 2 + n;
const emit = (n: number) => c.query(`select pg_logical_emit_message(false, 'p', repeat('x', ${n}))`);

/**
 * Emit logical messages until the next record starts `before` bytes ahead of a `unit` boundary
 * (page or segment): coarse steps to within a page, then one message of the exact size. Another
 * record written meanwhile (a checkpoint's) only means one more round.
 */
async function approach(unit: number, before: number): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const at = await insertLsn();
    let d = unit - Number(at % BigInt(unit)) - before;
    if (d === 0) return;
    if (d < 0) d += unit;
    const inPage = PAGE - Number(at % BigInt(PAGE));
    if (d > inPage) {
      // Cross pages: to the end of this page when the target is just over it, else most of the way.
      const far = d - inPage > 1024;
      const bytes = far ? d - 24 * Math.ceil(d / PAGE) - 1024 : inPage;
      if (bytes < 64) await emit(200);
      else await emit(Math.max(1, bytes - messageSize(0) - (bytes - 52 > 229 ? 0 : -3)));
      continue;
    }
    if (d < 64) {
      await emit(300);
      continue;
    }
    // Exactly d bytes (d and the record start are both multiples of 8).
    let n = d - 52;
    if (messageSize(n) !== d) n = d - 55;
    await emit(n);
  }
  throw new Error(`could not place a record ${before} bytes before a ${unit}-byte boundary`);
}

function scan(name: string, chunk = 1024 * 1024): SegmentScan {
  const bytes = new Uint8Array(readFileSync(join(archive, name)));
  const s = new WalSegmentScanner(name, SEG);
  for (let at = 0; at < bytes.byteLength; at += chunk) s.push(bytes.subarray(at, at + chunk));
  return s.end();
}

/** pg_waldump's commits, aborts and restore points: "lsn kind [name]". */
function waldump(from: string, to: string): string[] {
  const out = ["Transaction", "XLOG"].map((rmgr) => mustRun([join(SYSTEM_BIN, "pg_waldump"), "-r", rmgr, "-p", archive, from, to])).join("\n");
  const lines: string[] = [];
  for (const l of out.split("\n")) {
    const m = /lsn: ([0-9A-F]+\/[0-9A-F]+),.*desc: (COMMIT|ABORT|RESTORE_POINT)\b ?(\S*)/.exec(l);
    if (m) lines.push(`${lsnFormat(lsnParse(m[1]!))} ${m[2] === "RESTORE_POINT" ? `restore-point ${m[3]}` : m[2]!.toLowerCase()}`);
  }
  return lines;
}

const asLines = (records: WalRecord[]) =>
  records.filter((r) => ["commit", "abort", "restore-point"].includes(r.event.type)).map((r) => `${r.lsn} ${r.event.type}${r.event.type === "restore-point" ? ` ${r.event.name}` : ""}`);

beforeAll(async () => {
  c = await Cluster.create({ conf: { autovacuum: "off", archive_mode: "on" } });
  archive = mkdirAsPostgres(join(c.baseDir, "archive"));
  c.writeConf({ archive_command: `'cp %p ${archive}/%f'` });
  c.start();
  await c.query("create table t (id int)");
  const first = await c.scalar("select pg_walfile_name(pg_current_wal_insert_lsn())");
  await c.query("insert into t select generate_series(1, 100)");
  points.set("rp_plain", await c.scalar("select pg_create_restore_point('rp_plain')::text"));
  // An abort: a transaction that wrote (so it has an xid), then failed.
  await c.query("do $$ begin insert into t values (1); raise exception 'abort it'; end $$").catch(() => undefined);
  // A restore point across a page boundary: its 98 bytes start 40 bytes before the page ends.
  await approach(PAGE, 40);
  points.set("rp_page", await c.scalar("select pg_create_restore_point('rp_page')::text"));
  await c.query("insert into t values (2)");
  // And one across a segment boundary.
  await approach(SEG, 48);
  points.set("rp_segment", await c.scalar("select pg_create_restore_point('rp_segment')::text"));
  await c.query("insert into t values (3)");
  const last = await c.scalar("select pg_walfile_name(pg_current_wal_insert_lsn())");
  await c.query("select pg_switch_wal()");
  while (!existsSync(join(archive, last))) await Bun.sleep(50);
  const a = segmentParse(first, SEG).segmentNo;
  const b = segmentParse(last, SEG).segmentNo;
  for (let n = a; n <= b; n++) segments.push(`00000001${(n / 256n).toString(16).toUpperCase().padStart(8, "0")}${(n % 256n).toString(16).toUpperCase().padStart(8, "0")}`);
}, 120_000);

afterAll(async () => {
  await c?.destroy();
});

describe("WalSegmentScanner on real PostgreSQL 15 WAL", () => {
  test("finds what pg_waldump finds, the page-spanning restore point included; a segment-spanning one is stitched from tail and head", () => {
    expect(segments.length).toBeGreaterThanOrEqual(2);
    const scans = segments.map((s) => scan(s));
    const records = scans.flatMap((s) => s.records);
    let stitched = 0;
    for (let i = 0; i + 1 < scans.length; i++) {
      const tail = scans[i]!.tail;
      const head = scans[i + 1]!.head;
      if (!tail || !head) continue;
      const r = stitchRecord(tail, head, pgVersion(15));
      if (r.record) {
        records.push(r.record);
        stitched++;
      }
    }
    records.sort((x, y) => (lsnParse(x.lsn) < lsnParse(y.lsn) ? -1 : 1));
    const dump = waldump(segments[0]!, segments.at(-1)!).sort((x, y) => (lsnParse(x.split(" ")[0]!) < lsnParse(y.split(" ")[0]!) ? -1 : 1));
    expect(asLines(records)).toEqual(dump);
    expect(stitched).toBe(1);
    for (const s of scans) expect(s.crcErrors).toBe(0);

    const rp = (name: string) => records.find((r) => r.event.type === "restore-point" && r.event.name === name)!;
    for (const [name, end] of points) expect({ name, end: rp(name).end }).toEqual({ name, end: lsnFormat(lsnParse(end)) });
    // The page-spanning one starts 40 bytes before a page boundary; the segment one 48 before a segment's.
    expect(Number(lsnParse(rp("rp_page").lsn) % BigInt(PAGE))).toBe(PAGE - 40);
    expect(Number(lsnParse(rp("rp_segment").lsn) % BigInt(SEG))).toBe(SEG - 48);
    // Commit times are microseconds, in order, close to now.
    const commits = records.filter((r) => r.event.type === "commit").map((r) => (r.event as { time: number }).time);
    expect(commits.length).toBeGreaterThan(3);
    expect(Math.abs(commits.at(-1)! / 1000 - Date.now())).toBeLessThan(600_000);
  });

  test("chunk sizes do not matter", () => {
    for (const s of segments.slice(0, 2)) expect(scan(s, 7777)).toEqual(scan(s));
  });

  test("a flipped byte in a restore point record fails its CRC and ends the segment's valid WAL there", () => {
    const name = segments[0]!;
    const bytes = new Uint8Array(readFileSync(join(archive, name)));
    const good = scan(name);
    const rp = good.records.find((r) => r.event.type === "restore-point")!;
    const offset = Number(lsnParse(rp.lsn) % BigInt(SEG)) + 40;
    bytes[offset] = bytes[offset]! ^ 0x20;
    const s = new WalSegmentScanner(name, SEG);
    s.push(bytes);
    const bad = s.end();
    expect(bad.crcErrors).toBe(1);
    expect(bad.endReason).toBe("bad-record");
    expect(bad.records.some((r) => r.event.type === "restore-point")).toBe(false);
  });
});
