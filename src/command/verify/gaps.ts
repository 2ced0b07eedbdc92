/**
 * WAL gaps, pure: holes in the segments stored for each timeline of an archive id, and whether a
 * hole matters. A hole inside a backup's start..stop makes that backup unrestorable; a hole in WAL
 * that archive retention keeps breaks point-in-time recovery across it. A hole that archive
 * retention made on purpose (repo-retention-archive), or one before the oldest backup, is expected.
 */
import { segmentName, segmentParse } from "../../postgres/wal.ts";
import type { ArchiveIdPlan } from "../expire/plan.ts";

export interface WalGap {
  timeline: number;
  /** First and last missing segment. */
  start: string;
  stop: string;
  /** Backups whose start..stop range the hole cuts into: they cannot be restored. */
  neededBy: string[];
  /** Archive retention removed this on purpose (or nothing could ever use it). */
  expected: boolean;
}

export interface BackupRange {
  label: string;
  start: string;
  stop: string;
}

/** Holes between stored segments (24-character names, any order), per timeline. */
export function findGaps(segments: readonly string[], segmentSize: number): { timeline: number; start: string; stop: string }[] {
  const byTimeline = new Map<number, bigint[]>();
  for (const s of segments) {
    const p = segmentParse(s, segmentSize);
    let list = byTimeline.get(p.timeline);
    if (!list) byTimeline.set(p.timeline, (list = []));
    list.push(p.segmentNo);
  }
  const out: { timeline: number; start: string; stop: string }[] = [];
  for (const [timeline, nos] of [...byTimeline].sort((a, b) => a[0] - b[0])) {
    const sorted = [...new Set(nos)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i]! > sorted[i - 1]! + 1n)
        out.push({ timeline, start: segmentName(timeline, sorted[i - 1]! + 1n, segmentSize), stop: segmentName(timeline, sorted[i]! - 1n, segmentSize) });
  }
  return out;
}

/**
 * Classify holes. `plan` is what archive retention keeps in this archive id (undefined when no
 * retention applies: then everything from the oldest backup on is kept).
 */
export function classifyGaps(gaps: readonly { timeline: number; start: string; stop: string }[], backups: readonly BackupRange[], plan: ArchiveIdPlan | undefined): WalGap[] {
  const oldestStart = backups.map((b) => b.start).sort()[0];
  return gaps.map((g) => {
    const overlaps = (start: string, stop: string) => g.start <= stop && g.stop >= start;
    const neededBy = backups.filter((b) => overlaps(b.start, b.stop)).map((b) => b.label);
    // Before the oldest backup (or with none in this archive id) no backup can replay across it.
    const beforeBackups = oldestStart === undefined || g.stop < oldestStart;
    const kept = !plan || (!plan.removeAll && (plan.keepAll === true || (plan.keepFrom !== undefined && g.stop >= plan.keepFrom.start) || plan.ranges.some((r) => overlaps(r.start, r.stop))));
    return { ...g, neededBy, expected: neededBy.length === 0 && (beforeBackups || !kept) };
  });
}
