/**
 * What verify found, and its two renderings. The text follows pgBackRest's verify output (an
 * archiveId line and a backup line with their counters, problems only unless --verbose) and adds
 * the checks pgBackRest does not make: WAL gaps, WAL a backup needs, orphaned files, info files.
 * The json is pgbunker's own (pgBackRest 2.45 has none), with the same names in kebab-case.
 */
import { jsonRender } from "../../common/json.ts";
import type { VerifyStatus } from "./file.ts";
import type { WalGap } from "./gaps.ts";

export interface Counts {
  checked: number;
  valid: number;
  missing: number;
  checksum: number;
  size: number;
  other: number;
}

export const zeroCounts = (): Counts => ({ checked: 0, valid: 0, missing: 0, checksum: 0, size: 0, other: 0 });

export function countResult(c: Counts, status: VerifyStatus): void {
  c.checked++;
  if (status === "ok") c.valid++;
  else c[status]++;
}

export interface FileProblem {
  /** Path relative to the stanza's backup or archive directory. */
  file: string;
  problem: Exclude<VerifyStatus, "ok">;
  detail?: string;
}

export interface ArchiveReport {
  archiveId: string;
  counts: Counts;
  problems: FileProblem[];
  /** First and last segment stored (for the range line). */
  min?: string;
  max?: string;
  gaps: WalGap[];
  /** Segments stored more than once with different content. */
  duplicates: string[];
}

/**
 * in-progress: only the manifest copy of a backup not in backup.info (a backup running now);
 * unlisted: any other directory not in backup.info, left by an interrupted backup or expire (the
 * next backup or expire removes it). Neither is an error, and neither is read.
 */
export type BackupStatus = "valid" | "invalid" | "manifest missing" | "in-progress" | "unlisted" | "missing";

export interface BackupReport {
  label: string;
  status: BackupStatus;
  counts: Counts;
  problems: FileProblem[];
  /** Segments of the backup's start..stop range that are missing or damaged. */
  walMissing: string[];
  /** Other problems: directory or manifest (or its copy) missing or invalid. */
  notes: string[];
}

export interface VerifyReport {
  stanza: string;
  repoKey: number;
  archives: ArchiveReport[];
  backups: BackupReport[];
  /** Files and directories nothing refers to (relative to the repository). */
  orphans: string[];
  /** backup.info / archive.info main or copy missing or damaged. */
  infoProblems: string[];
  /** Findings that are not damage: what an interrupted write or expire leaves, expected WAL gaps aside. */
  warnings: string[];
}

function archiveErrors(a: ArchiveReport): number {
  return a.counts.checked - a.counts.valid + a.gaps.filter((g) => !g.expected).length + a.duplicates.length;
}

function backupErrors(b: BackupReport): number {
  if (b.status === "in-progress" || b.status === "unlisted") return 0;
  return (b.status === "valid" ? 0 : 1) + b.walMissing.length + b.notes.length;
}

/** Number of problems: 0 means the repository is good. */
export function problemCount(r: VerifyReport): number {
  return r.archives.reduce((n, a) => n + archiveErrors(a), 0) + r.backups.reduce((n, b) => n + backupErrors(b), 0) + r.orphans.length + r.infoProblems.length;
}

function countLine(c: Counts, verbose: boolean): string | undefined {
  const parts: [string, number][] = [["missing", c.missing], ["checksum invalid", c.checksum], ["size invalid", c.size], ["other", c.other]];
  const shown = verbose ? parts : parts.filter(([, n]) => n > 0);
  return shown.length ? shown.map(([k, n]) => `${k}: ${n}`).join(", ") : undefined;
}

export function verifyText(r: VerifyReport, verbose: boolean): string {
  const out = [`stanza: ${r.stanza}`, `status: ${problemCount(r) === 0 ? "ok" : "error"}`];
  for (const p of r.infoProblems) out.push(`  info file: ${p}`);
  for (const a of r.archives) {
    const errors = archiveErrors(a);
    if (!verbose && errors === 0) continue;
    out.push(`  archiveId: ${a.archiveId}, total WAL checked: ${a.counts.checked}, total valid WAL: ${a.counts.valid}`);
    const counts = countLine(a.counts, verbose);
    if (counts) out.push(`    ${counts}`);
    for (const p of a.problems) out.push(`    ${p.problem === "checksum" ? "checksum invalid" : p.problem === "size" ? "size invalid" : p.problem}: ${p.file}${p.detail ? ` (${p.detail})` : ""}`);
    for (const d of a.duplicates) out.push(`    duplicate: ${d} is stored more than once`);
    for (const g of a.gaps) {
      if (!verbose && g.expected) continue;
      const why = g.neededBy.length ? `needed by backup ${g.neededBy.join(", ")}` : g.expected ? "expected: removed by archive retention" : "breaks point-in-time recovery";
      out.push(`    wal gap: ${g.start} - ${g.stop} (timeline ${g.timeline}, ${why})`);
    }
  }
  for (const b of r.backups) {
    if (!verbose && backupErrors(b) === 0) continue;
    out.push(`  backup: ${b.label}, status: ${b.status}, total files checked: ${b.counts.checked}, total valid files: ${b.counts.valid}`);
    const counts = b.status === "valid" || b.status === "invalid" ? countLine(b.counts, verbose) : undefined;
    if (counts) out.push(`    ${counts}`);
    for (const p of b.problems) out.push(`    ${p.problem === "checksum" ? "checksum invalid" : p.problem === "size" ? "size invalid" : p.problem}: ${p.file}${p.detail ? ` (${p.detail})` : ""}`);
    if (b.walMissing.length) out.push(`    wal missing for consistency: ${b.walMissing.join(", ")}`);
    for (const n of b.notes) out.push(`    ${n}`);
  }
  for (const o of r.orphans) out.push(`  orphaned: ${o}`);
  for (const w of r.warnings) out.push(`  warning: ${w}`);
  return out.join("\n") + "\n";
}

function countsJson(c: Counts) {
  return { checked: c.checked, valid: c.valid, missing: c.missing, "checksum-invalid": c.checksum, "size-invalid": c.size, other: c.other };
}

export function verifyJson(r: VerifyReport): string {
  return jsonRender([{
    name: r.stanza,
    repo: r.repoKey,
    status: { code: problemCount(r) === 0 ? 0 : 1, message: problemCount(r) === 0 ? "ok" : "error", errors: problemCount(r) },
    "info-file": r.infoProblems,
    archive: r.archives.map((a) => ({
      id: a.archiveId,
      min: a.min ?? null,
      max: a.max ?? null,
      ...countsJson(a.counts),
      problems: a.problems,
      duplicates: a.duplicates,
      gaps: a.gaps.map((g) => ({ timeline: g.timeline, start: g.start, stop: g.stop, expected: g.expected, "needed-by": g.neededBy })),
    })),
    backup: r.backups.map((b) => ({
      label: b.label,
      status: b.status,
      ...countsJson(b.counts),
      problems: b.problems,
      "wal-missing": b.walMissing,
      notes: b.notes,
    })),
    orphans: r.orphans,
    warnings: r.warnings,
  }]);
}
