/**
 * The 'verify' command: is everything in the repository still what was recorded?
 *   1. info files: backup.info and archive.info, main and copy, load and agree;
 *   2. list every WAL file and every file of every backup (manifest, falling back to its copy),
 *      and what nothing refers to (orphans);
 *   3. read every file in process-max workers (verify/file.ts): size and SHA-1 of the stored
 *      bytes and of the original file;
 *   4. WAL: holes per timeline, classified against the backups and the archive retention policy;
 *      each backup's start..stop WAL must be there and valid;
 *   5. report (text in pgBackRest's layout, or json) and exit non-zero when anything is wrong.
 * With --set only that backup set is verified (verify/scope.ts).
 */
import { startJobPool, type Jobs } from "../jobs.ts";
import type { JobOf } from "../../worker/pool.ts";
import { err } from "../../common/error.ts";
import { log, type LogLevel } from "../../common/log.ts";
import { Progress } from "../../common/progress.ts";
import type { Config } from "../../config/parse.ts";
import { segmentRange, WAL_SEGMENT_DEFAULT } from "../../postgres/wal.ts";
import { loadArchiveInfo } from "../../repo/archive-info.ts";
import { loadBackupInfo } from "../../repo/backup-info.ts";
import { isLabel } from "../../repo/label.ts";
import { repoPath } from "../../repo/layout.ts";
import { repoCipherPass, staleTempSeconds } from "../archive/common.ts";
import { retentionPolicy } from "../expire/expire.ts";
import { planArchive, type PlanBackup } from "../expire/plan.ts";
import { archiveIdOfDb } from "../shared/repos.ts";
import { jobRetry } from "../shared/job-retry.ts";
import { storageRepo, storageSpec } from "../shared/storage.ts";
import {
  archiveStrays, backupDirOrphans, backupFiles as manifestFiles, backupStrays, fileJob, infoFileProblems, isBlockIncremental, locateFile, storedSize, listArchiveId, loadManifestChecked,
  type ArchiveListing, type ManifestLoad, type StoredFile,
} from "./collect.ts";
import { VERIFY_FILE_JOB, type VerifyFileParams, type VerifyFileResult } from "./file.ts";
import { classifyGaps, findGaps } from "./gaps.ts";
import { checkSetLabel, setScope, walInScope, type SetScope } from "./scope.ts";
import { tempFileWarnings } from "./temps.ts";
import { countResult, problemCount, verifyJson, verifyText, zeroCounts, type ArchiveReport, type BackupReport, type FileProblem, type VerifyReport } from "./report.ts";

export async function run(cfg: Config): Promise<number> {
  const stanza = cfg.str("stanza");
  if (!stanza) throw err("OptionRequiredError", "verify command requires option: stanza", "add --stanza=NAME.");
  const repoKey = cfg.repoIndex;
  const output = cfg.str("output") ?? "none";
  // json on stdout must stay parseable: what would log at info there logs at detail.
  infoLevel = output === "json" ? "detail" : "info";
  const report = await verifyRepo(cfg, stanza, repoKey);

  if (output === "text") process.stdout.write(verifyText(report, cfg.bool("verbose")));
  else if (output === "json") process.stdout.write(verifyJson(report));
  const problems = problemCount(report);
  if (problems > 0)
    throw err(
      "RepoInvalidError",
      `verify found ${problems} problem(s) in stanza '${stanza}' on repo${repoKey}`,
      output === "none" ? "run verify with --output=text to see them." : "see the report above: damaged or missing files cannot be restored from this repository.",
    );
  log(infoLevel, `repo${repoKey}: ${report.backups.filter((b) => b.status === "valid").length} backup(s) and ${report.archives.reduce((n, a) => n + a.counts.valid, 0)} WAL file(s) verified: no problem found`);
  return 0;
}

/** Level of the per-file problem lines and the summary (detail when stdout carries json). */
let infoLevel: LogLevel = "info";

interface Planned {
  report: VerifyReport;
  listings: ArchiveListing[];
  manifests: Map<string, ManifestLoad>;
  /** Labels read (listed, with a loadable manifest), in report order. */
  read: string[];
  stanza: string;
  listed: Set<string>;
  plan: PlanBackup[];
  archiveIds: string[];
}

async function verifyRepo(cfg: Config, stanza: string, repoKey: number): Promise<VerifyReport> {
  const storage = await storageRepo(cfg, { repo: repoKey, readOnly: true });
  const spec = storageSpec(cfg, "repo", repoKey, true);
  const cipherPass = repoCipherPass(cfg, repoKey);
  const report: VerifyReport = { stanza, repoKey, archives: [], backups: [], orphans: [], infoProblems: [], warnings: [] };

  // 1. Info files (then load them the normal way: copy as fallback, error when both are bad).
  for (const path of [repoPath.backupInfo(stanza), repoPath.archiveInfo(stanza)]) {
    const found = await infoFileProblems(storage, path, cipherPass);
    report.infoProblems.push(...found.problems);
    report.warnings.push(...found.warnings);
  }
  const backupInfo = (await loadBackupInfo(storage, stanza, { cipherPass }))!;
  const archiveInfo = (await loadArchiveInfo(storage, stanza, { cipherPass }))!;

  // 2. What there is to read.
  const listed = new Set(backupInfo.labels());
  const dirs = (await storage.names(repoPath.backupStanza(stanza))).filter(isLabel);
  const manifests = new Map<string, ManifestLoad>();
  const set = cfg.str("set");
  let scope: SetScope | undefined;
  if (set !== undefined) {
    checkSetLabel(set, dirs);
    manifests.set(set, await loadManifestChecked(storage, stanza, set, backupInfo));
    scope = setScope(set, manifests.get(set)!);
  }
  for (const label of scope?.manifests ?? dirs)
    if (dirs.includes(label) && !manifests.has(label)) manifests.set(label, await loadManifestChecked(storage, stanza, label, backupInfo));
  const labels = scope?.labels ?? [...new Set([...listed, ...dirs])].sort();

  const listings: ArchiveListing[] = [];
  // A set's WAL is in its own cluster's archive id (any, for a backup backup.info does not list).
  const record = scope && backupInfo.backups.get(scope.label);
  const setArchiveId = record && archiveIdOfDb(backupInfo, archiveInfo, record.dbId);
  for (const id of archiveInfo.archiveIds()) {
    if (setArchiveId !== undefined && id !== setArchiveId) continue;
    const l = await listArchiveId(storage, spec, stanza, id, archiveInfo.cipherPass);
    listings.push(scope ? { ...l, wal: l.wal.filter((w) => walInScope(w.segment, scope)), orphans: [] } : l);
  }
  if (!scope) {
    report.orphans.push(...(await archiveStrays(storage, stanza, archiveInfo)), ...listings.flatMap((l) => l.orphans), ...(await backupStrays(storage, stanza)));
    // Temporary files: warnings, which do not change the exit code (verify/temps.ts says why).
    report.warnings.push(...(await tempFileWarnings(storage, stanza, staleTempSeconds(cfg))));
  }
  const read: string[] = [];
  for (const label of labels) {
    const m = manifests.get(label);
    // Only what backup.info lists is a backup; without a manifest there is nothing to read.
    if (!m || m.missing || !listed.has(label)) continue;
    read.push(label);
    report.orphans.push(...(await backupDirOrphans(storage, stanza, label, m)));
  }
  const plan: PlanBackup[] = [...backupInfo.backups.values()].map((r) => ({ ...r, archiveId: archiveIdOfDb(backupInfo, archiveInfo, r.dbId) }));

  // 3. Read everything, each stored file once.
  const results = await readAll(cfg, listings, { stanza, manifests, read }, (f) => fileJob(spec, stanza, f, manifests));

  // 4-5. Put the report together.
  const planned: Planned = { report, listings, manifests, read, stanza, listed, plan, archiveIds: archiveInfo.archiveIds() };
  assembleBackups(planned, labels, results, assembleArchives(cfg, planned, results));
  report.orphans.sort();
  return report;
}

/** Small files travel to the workers in batches: one message per file would cost more than the file. */
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_FILES = 256;

/**
 * Order of the reads. Largest first, so that the last job to finish is not a big file read by one
 * worker while the others wait; but sorting every file by size would hold every file's params (or
 * key) at once, which is what bounds verify's memory by the file count. So: a first pass over the
 * manifests keeps only the files of at least BIG_FILE bytes (a batch to themselves; there are at
 * most repository-bytes / 4 MiB of them, 256 per GiB, however many files there are), and those are
 * read first, largest first; the rest is read in manifest order, where the last job is a batch of
 * at most BATCH_BYTES, which is as short as a job gets anyway.
 */
const BIG_FILE = BATCH_BYTES;

/** The backups to read and the manifests that say where their files are. */
interface ReadSet {
  stanza: string;
  manifests: ReadonlyMap<string, ManifestLoad>;
  /** Labels read, in report order. */
  read: string[];
}

/** One stored file to read: WAL (its params are the listing's own object) or a backup file (params made when taken). */
interface ReadItem {
  key: string;
  size: number;
  wal?: VerifyFileParams;
  file?: StoredFile;
}

const sizeOfParams = (p: VerifyFileParams) => p.repoSize ?? p.size ?? WAL_SEGMENT_DEFAULT;
/** Same as sizeOfParams(fileJob(f)) without making the params. */
const sizeOfFile = (f: StoredFile) => storedSize(f) ?? (isBlockIncremental(f.file) ? undefined : f.file.size) ?? WAL_SEGMENT_DEFAULT;

/**
 * Does another backup being read store this file under the same key, so that it reads it? Then a
 * file referenced by many backups is read once, by the backup that owns it (the label in its
 * reference), without a set of every key read. When the owner is not read (not listed, no
 * manifest, outside --set) or its manifest disagrees, the referencing backup reads it itself.
 */
function ownerReads(s: StoredFile, label: string, rs: ReadSet, reading: ReadonlySet<string>): boolean {
  if (s.stored === label || !reading.has(s.stored)) return false;
  const g = s.holder.manifest!.files.get(s.file.name);
  if (!g || (g.reference ?? s.stored) !== s.stored) return false;
  return locateFile(rs.stanza, s.stored, g, rs.manifests).key === s.key;
}

/**
 * Every stored file once, made from the listings and manifests as it is taken: WAL, then each
 * backup's files in manifest order. Only files referenced from backups whose owner does not read
 * them are remembered by key (to read them once): normally none.
 */
function* readItems(listings: ArchiveListing[], rs: ReadSet): Generator<ReadItem> {
  for (const l of listings) for (const w of l.wal) yield { key: w.job.path, size: sizeOfParams(w.job), wal: w.job };
  const reading = new Set(rs.read);
  const unowned = new Set<string>();
  for (const label of rs.read)
    for (const f of manifestFiles(rs.stanza, label, rs.manifests)) {
      if (f.empty || ownerReads(f, label, rs, reading)) continue;
      if (f.stored !== label) {
        if (unowned.has(f.key)) continue;
        unowned.add(f.key);
      }
      yield { key: f.key, size: sizeOfFile(f), file: f };
    }
}

/**
 * Read every stored file; returns the result of every WAL file (the archive report needs them all)
 * and of the backup files that are not ok only: a backup file without a result is valid.
 */
async function readAll(cfg: Config, listings: ArchiveListing[], rs: ReadSet, jobOf: (f: StoredFile) => VerifyFileParams): Promise<Map<string, VerifyFileResult>> {
  const bufferSize = cfg.num("buffer-size");
  // First pass: totals for the progress line, and the big files (BIG_FILE says why).
  let totalFiles = 0, totalBytes = 0;
  const big: ReadItem[] = [];
  for (const item of readItems(listings, rs)) {
    totalFiles++;
    totalBytes += item.size;
    if (item.size >= BIG_FILE) big.push(item);
  }
  big.sort((a, b) => b.size - a.size);
  function* ordered(): Generator<ReadItem> {
    yield* big;
    big.length = 0;
    for (const item of readItems(listings, rs)) if (item.size < BIG_FILE) yield item;
  }

  type Batch = { items: ReadItem[]; files: VerifyFileParams[]; bytes: number };
  const batchOf = new Map<readonly VerifyFileParams[], Batch>();
  // Batches are made as the workers take them, so only the running ones exist with their params.
  function* batches(): Generator<JobOf<Jobs, typeof VERIFY_FILE_JOB>> {
    let b: Batch = { items: [], files: [], bytes: 0 };
    for (const item of ordered()) {
      if (b.files.length && (b.bytes + item.size > BATCH_BYTES || b.files.length >= BATCH_FILES)) {
        batchOf.set(b.files, b);
        yield { type: VERIFY_FILE_JOB, params: b.files };
        b = { items: [], files: [], bytes: 0 };
      }
      b.items.push(item);
      b.files.push({ ...(item.wal ?? jobOf(item.file!)), bufferSize });
      b.bytes += item.size;
    }
    if (b.files.length) {
      batchOf.set(b.files, b);
      yield { type: VERIFY_FILE_JOB, params: b.files };
    }
  }

  const progress = new Progress("verify", totalFiles, totalBytes);
  const results = new Map<string, VerifyFileResult>();
  const pool = await startJobPool(cfg.get("process-max"), { retry: jobRetry(cfg) });
  try {
    await pool.runAll(batches(), (job, batchResults) => {
      const b = batchOf.get(job.params)!;
      batchOf.delete(job.params);
      b.items.forEach((item, i) => {
        const r = batchResults[i]!;
        if (item.wal || r.status !== "ok") results.set(item.key, r);
      });
      progress.add(b.bytes, b.files.length);
    });
  } finally {
    progress.done();
    await pool.close();
  }
  return results;
}

function problemOf(file: string, r: VerifyFileResult): FileProblem | undefined {
  if (r.status === "ok") return undefined;
  const text = { missing: "file missing", checksum: "invalid checksum", size: "invalid size", other: "invalid result" }[r.status];
  log(infoLevel, `${text} '${file}'${r.detail ? `: ${r.detail}` : ""}`);
  return { file, problem: r.status, detail: r.detail };
}

/** Archive reports; returns, per backup, the segments of its start..stop that are missing or damaged. */
function assembleArchives(cfg: Config, p: Planned, results: Map<string, VerifyFileResult>): Map<string, string[]> {
  // The segment size is in every segment's header; take the one most segments agree on.
  const votes = new Map<number, number>();
  for (const r of results.values()) if (r.segmentSize) votes.set(r.segmentSize, (votes.get(r.segmentSize) ?? 0) + 1);
  const segmentSize = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? WAL_SEGMENT_DEFAULT;
  const archivePlan = planArchive(p.plan, retentionPolicy(cfg, p.report.repoKey), p.archiveIds);

  for (const l of p.listings) {
    const a: ArchiveReport = { archiveId: l.archiveId, counts: zeroCounts(), problems: [], gaps: [], duplicates: [] };
    const seen = new Map<string, number>();
    for (const w of l.wal) {
      let r = results.get(w.job.path)!;
      if (r.status === "ok" && !w.partial && r.size !== undefined && r.size !== segmentSize) r = { status: "size", detail: `size is ${r.size}, expected ${segmentSize}` };
      countResult(a.counts, r.status);
      const prob = problemOf(w.file, r);
      if (prob) a.problems.push(prob);
      if (!w.partial) seen.set(w.segment, (seen.get(w.segment) ?? 0) + 1);
    }
    a.duplicates = [...seen].filter(([, n]) => n > 1).map(([s]) => s).sort();
    const segments = [...seen.keys()].sort();
    a.min = segments[0];
    a.max = segments.at(-1);
    const ranges = p.plan
      .filter((b) => b.archiveId === l.archiveId && b.archiveStart !== undefined && b.archiveStop !== undefined)
      .map((b) => ({ label: b.label, start: b.archiveStart!, stop: b.archiveStop! }));
    a.gaps = classifyGaps(findGaps(segments, segmentSize), ranges, archivePlan.ids.find((i) => i.archiveId === l.archiveId));
    p.report.archives.push(a);
  }

  // Each backup's own WAL: every segment from start to stop, present and valid.
  const walMissing = new Map<string, string[]>();
  for (const b of p.plan) {
    if (!b.archiveStart || !b.archiveStop || !b.archiveId) continue;
    const l = p.listings.find((x) => x.archiveId === b.archiveId);
    const valid = new Set(l?.wal.filter((w) => !w.partial && results.get(w.job.path)?.status === "ok").map((w) => w.segment));
    const needed = b.archiveStart.slice(0, 8) === b.archiveStop.slice(0, 8) ? segmentRange(b.archiveStart, b.archiveStop, segmentSize) : [b.archiveStart, b.archiveStop];
    walMissing.set(b.label, needed.filter((s) => !valid.has(s)));
  }
  return walMissing;
}

const OK: VerifyFileResult = { status: "ok" };

function assembleBackups(p: Planned, labels: string[], results: Map<string, VerifyFileResult>, walMissing: Map<string, string[]>): void {
  for (const label of labels) {
    const load = p.manifests.get(label);
    const b: BackupReport = { label, status: "valid", counts: zeroCounts(), problems: [], walMissing: walMissing.get(label) ?? [], notes: [] };
    p.report.backups.push(b);
    if (!load) {
      b.status = "missing";
      b.notes.push("listed in backup.info but its directory is missing");
      continue;
    }
    if (!p.listed.has(label)) {
      // Not a backup (yet, or any more): a backup running now, or what an interrupted backup or
      // expire left behind. The next backup or expire removes it; nothing restores from it.
      b.status = load.copyOnly ? "in-progress" : "unlisted";
      if (b.status === "unlisted") p.report.warnings.push(`${repoPath.backupDir(p.report.stanza, label)} is not in backup.info: left by an interrupted backup or expire, the next expire removes it`);
      continue;
    }
    if (load.missing) {
      b.status = "manifest missing";
      b.notes.push(...load.notes);
      continue;
    }
    b.notes.push(...load.notes);
    p.report.warnings.push(...load.warnings.map((w) => `${label}: ${w}`));
    // A file is read once but counted in every backup that lists it: walk the manifest again and
    // look up only the failures (no result: valid), so no result per file is kept.
    for (const f of manifestFiles(p.stanza, label, p.manifests)) {
      const r = (!f.empty && results.get(f.key)) || OK;
      countResult(b.counts, r.status);
      const prob = r.status === "ok" ? undefined : { file: f.display, problem: r.status, detail: r.detail } as FileProblem;
      if (prob) b.problems.push(prob);
    }
    if (b.counts.valid !== b.counts.checked || b.walMissing.length > 0) b.status = "invalid";
  }
  // Log each damaged file once (a file shared by several backups is one problem).
  const logged = new Set<string>();
  for (const b of p.report.backups)
    for (const prob of b.problems)
      if (!logged.has(prob.file)) {
        logged.add(prob.file);
        problemOf(prob.file, { status: prob.problem, detail: prob.detail });
      }
}
