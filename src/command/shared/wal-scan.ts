/**
 * Reading the records of interest out of a stanza's WAL archive (recovery-targets, and restore
 * --type=name checking its target): list the stored segments of an archive id by timeline, scan
 * each in a worker (command/recovery-targets/file.ts), and join the records that cross from one
 * segment into the next. Memory: one buffer per worker while scanning, then the records.
 */
import { err } from "../../common/error.ts";
import { logDetail } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import { compressTypeOfName } from "../../filter/compress.ts";
import { type SegmentScan, stitchRecord, type WalRecord } from "../../postgres/wal-records.ts";
import { pgVersion } from "../../postgres/version.ts";
import { lsnParse, segmentNext, timelineOfName, WAL_SEGMENT_RE } from "../../postgres/wal.ts";
import { repoPath } from "../../repo/layout.ts";
import { walListDir } from "../../repo/wal-find.ts";
import type { Storage } from "../../storage/storage.ts";
import { startJobPool } from "../jobs.ts";
import { WAL_SCAN_JOB, type WalScanParams } from "../recovery-targets/file.ts";
import { jobRetry } from "./job-retry.ts";
import { storageSpec } from "./storage.ts";

export interface TimelineWal {
  timeline: number;
  /** Segments read, oldest first. */
  segments: string[];
  /** Segments missing between the first and the last (recovery cannot cross them). */
  gaps: string[];
  /** Records of interest, in LSN order. */
  records: WalRecord[];
  /** Records whose CRC failed (each ends its segment's readable WAL). */
  crcErrors: number;
  segmentSize: number;
}

export interface ArchiveScanOptions {
  /** Skip segments of a timeline before this one (a backup's first segment: recovery reads nothing earlier). */
  from?: string;
}

/** Scan every stored segment of an archive id; timelines oldest first. */
export async function scanArchiveId(cfg: Config, repo: Storage, repoIndex: number, stanza: string, archiveId: string, walPass: string | undefined, opts: ArchiveScanOptions = {}): Promise<TimelineWal[]> {
  const version = pgVersion(archiveId.split("-")[0]!);
  const base = repoPath.archiveIdPath(stanza, archiveId);
  const spec = storageSpec(cfg, "repo", repoIndex, true);
  const jobs: WalScanParams[] = [];
  for (const dir of (await repo.names(base, /^[0-9A-F]{16}$/)).sort()) {
    for (const [wal, stored] of [...(await walListDir(repo, stanza, archiveId, dir))].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!WAL_SEGMENT_RE.test(wal)) continue;
      if (opts.from && timelineOfName(wal) === timelineOfName(opts.from) && wal < opts.from) continue;
      jobs.push({ storage: spec, path: stored.path, segment: wal, compressType: compressTypeOfName(stored.file), cipherPass: walPass, bufferSize: cfg.num("buffer-size") });
    }
  }
  logDetail(`repo${repoIndex}: reading ${jobs.length} WAL segment(s) of archive ${archiveId}`);

  const scans = new Map<string, SegmentScan>();
  const pool = await startJobPool(cfg.get("process-max"), { retry: jobRetry(cfg) });
  try {
    await pool.runAll(jobs.map((params) => ({ type: WAL_SCAN_JOB, params }) as const), (job, result) => {
      scans.set((job.params as WalScanParams).segment, result);
    });
  } finally {
    await pool.close();
  }

  const byTimeline = new Map<number, string[]>();
  for (const j of jobs) {
    const tl = timelineOfName(j.segment);
    byTimeline.set(tl, [...(byTimeline.get(tl) ?? []), j.segment]);
  }
  const out: TimelineWal[] = [];
  for (const [timeline, names] of [...byTimeline].sort((a, b) => a[0] - b[0])) {
    const t: TimelineWal = { timeline, segments: names, gaps: [], records: [], crcErrors: 0, segmentSize: scans.get(names[0]!)!.segmentSize };
    for (let i = 0; i < names.length; i++) {
      const scan = scans.get(names[i]!)!;
      if (scan.timeline !== timeline)
        throw err("FormatError", `WAL segment '${names[i]}' in archive ${archiveId} says it is on timeline ${scan.timeline}`, "the file was stored under the wrong name or is corrupt: run 'pgbunker verify'.");
      t.records.push(...scan.records);
      t.crcErrors += scan.crcErrors;
      const next = names[i + 1];
      if (next === undefined) continue;
      const expected = segmentNext(names[i]!, scan.segmentSize);
      if (next !== expected) {
        for (let g = expected; g < next; g = segmentNext(g, scan.segmentSize)) t.gaps.push(g);
        continue;
      }
      const nextScan = scans.get(next)!;
      if (scan.tail && nextScan.head) {
        const joined = stitchRecord(scan.tail, nextScan.head, version);
        if (joined.record) t.records.push(joined.record);
        if (joined.crcError) t.crcErrors++;
      }
    }
    t.records.sort((a, b) => (lsnParse(a.lsn) < lsnParse(b.lsn) ? -1 : 1));
    out.push(t);
  }
  return out;
}
