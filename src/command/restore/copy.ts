/**
 * The parallel part of a restore: the files go to the workers as jobs (largest first, small ones
 * in batches), each result is logged as pgBackRest logs it and counted for the progress line,
 * and every file not fsynced by its job is fsynced in a second pass over the same workers.
 */
import { logDetail, logWould } from "../../common/log.ts";
import { formatBytes, Progress } from "../../common/progress.ts";
import type { Config } from "../../config/parse.ts";
import type { JobOf, WorkerPool } from "../../worker/pool.ts";
import { startJobPool, type Jobs } from "../jobs.ts";
import { jobRetry } from "../shared/job-retry.ts";
import { storageSpec } from "../shared/storage.ts";
import { scanFrames, type Frame } from "../../filter/frames.ts";
import { chunkableCompress, chunkThreshold, filesToSplit } from "../shared/chunk.ts";
import { RESTORE_FRAME_FINISH_JOB, RESTORE_FRAME_JOB } from "./chunk.ts";
import { RESTORE_FILES_JOB, RESTORE_SYNC_JOB, type RestoreAction, type RestoreCommon, type RestoreFileEntry, type RestoreFileResult } from "./file.ts";
import type { PlanFile, RestorePlan } from "./plan.ts";
import { blockSource, repoLocation, type RestoreSource } from "./source.ts";
import { PG_CONTROL, type ownerResolver } from "./target.ts";

/** pg_control is restored under this name and put in place after everything else. */
export function pgControlTemp(pgPath: string): string {
  return `${pgPath}/${PG_CONTROL}.pgbunker.tmp`;
}

const isPgControl = (f: PlanFile) => f.name === `pg_data/${PG_CONTROL}`;

export interface CopyOptions {
  delta: RestoreCommon["delta"];
  /** Destinations kept when they exist (--type=preserve). */
  preserved: Set<string>;
  owners: ReturnType<typeof ownerResolver>;
}

export interface FileStats {
  bytes: number;
  copied: number;
  kept: number;
  zeroed: number;
  /**
   * Manifest record numbers (PlanFiles.indexOf) of the files the jobs did not fsync themselves
   * (small ones, kept ones): the final pass syncs them.
   */
  unsynced: number[];
}

const ACTION_TEXT: Record<RestoreAction, string> = {
  copy: "",
  match: " - exists and matches backup",
  "match-time": " - exists and matches size and modification time",
  "zero-size": " - exists and is zero size",
  zero: "",
  preserve: " - preserved",
};

/** Restore and fsync every file of the plan in process-max workers. */
export async function copyFiles(cfg: Config, src: RestoreSource, plan: RestorePlan, opts: CopyOptions): Promise<FileStats> {
  const pool = await startJobPool(cfg.get("process-max"), { retry: jobRetry(cfg) });
  try {
    const stats = await restoreFiles(pool, cfg, src, plan, opts);
    await syncFiles(pool, cfg, stats.unsynced, (index) => restoredAt(plan, plan.files.nameAt(index)));
    return stats;
  } finally {
    await pool.close();
  }
}

async function restoreFiles(pool: WorkerPool<Jobs>, cfg: Config, src: RestoreSource, plan: RestorePlan, opts: CopyOptions): Promise<FileStats> {
  const repoSpec = storageSpec(cfg, "repo", src.repoIndex, true);
  const pgSpec = storageSpec(cfg, "pg", 1);
  const m = src.manifest;
  const copyStart = m.backup.timestampCopyStart ?? m.backup.timestampStart;
  const dataDir = plan.targets[0]!.path;
  const common: RestoreCommon = {
    repo: repoSpec,
    pg: pgSpec,
    compressType: src.compressType,
    cipherPass: src.filePass,
    delta: opts.delta,
    copyStart,
    bufferSize: cfg.num("buffer-size"),
  };
  const entry = (f: PlanFile): RestoreFileEntry => ({
    name: f.name,
    ...repoLocation(src, f),
    dest: f.dest,
    writeTo: isPgControl(f) ? pgControlTemp(dataDir) : undefined,
    size: f.size,
    checksum: f.checksum,
    timestamp: f.timestamp,
    mode: f.mode,
    ...opts.owners(f.user, f.group),
    zero: f.zero,
    preserve: opts.preserved.has(f.dest),
    syncNow: f.size >= BATCH_BYTES,
    block: f.blockIncr ? blockSource(src, f.blockIncr) : undefined,
    // pgBackRest stores bundle members raw in a block incremental backup (backup-bundle-raw).
    raw: f.bundleId !== undefined && m.backup.bundleRaw === true,
  });
  // Large files stored as several frames go to several workers (restore/chunk.ts); the rest as before.
  type AnyJob = JobOf<Jobs, typeof RESTORE_FILES_JOB | typeof RESTORE_FRAME_JOB | typeof RESTORE_FRAME_FINISH_JOB>;
  const handlers = new Map<AnyJob, (result: unknown) => void | Promise<void>>();
  const planned: AnyJob[] = [];
  const ready: AnyJob[] = [];
  /** The frame jobs of `f` into `into` (its finish follows the last frame), or false: one stream. */
  const planFrames = async (f: PlanFile, into: AnyJob[]): Promise<boolean> => {
    const frames = await framesOf(src, f);
    if (!frames) return false;
    const file = entry(f);
    let left = frames.length;
    let at = 0;
    for (const [index, frame] of frames.entries()) {
      const job: AnyJob = { type: RESTORE_FRAME_JOB, params: { common, file, frame, at, index, count: frames.length } };
      at += frame.contentSize;
      handlers.set(job, () => {
        if (--left > 0) return;
        const finish: AnyJob = { type: RESTORE_FRAME_FINISH_JOB, params: { common, file, count: frames.length } };
        handlers.set(finish, (r) => report(f, r as RestoreFileResult));
        ready.push(finish);
      });
      into.push(job);
    }
    return true;
  };
  const oneJob = (files: PlanFile[], checkOnly = false): AnyJob => {
    const job: AnyJob = { type: RESTORE_FILES_JOB, params: { common, files: files.map((f) => ({ ...entry(f), checkOnly: checkOnly || undefined })) } };
    handlers.set(job, (results) => (results as RestoreFileResult[]).forEach((r, i) => report(files[i]!, r)));
    return job;
  };
  /** Names of the files restored by frames (or checked first): few, the large ones. */
  const framed = new Set<string>();
  for (const f of filesToSplit(frameCandidates(src, plan, opts).sort((a, b) => b.size - a.size), pool.size)) {
    if (opts.delta === "none") {
      if (await planFrames(f, planned)) framed.add(f.name);
      continue;
    }
    // Delta: the file in place is checked first (one job); only if it must be written, by frames.
    framed.add(f.name);
    const check = oneJob([f], true);
    handlers.set(check, async (results) => {
      const r = (results as RestoreFileResult[])[0]!;
      if (!r.pending) return report(f, r);
      if (!(await planFrames(f, ready))) ready.push(oneJob([f]));
    });
    planned.push(check);
  }
  // The other files' jobs are made as the workers take them (issue 19): only the order (one
  // reference per manifest file) is held, not a plan, a job and its params for every file up front.
  const small = batches(notFramed(plan.files.inOrder(), framed));
  let next = 0;
  const take = (): IteratorResult<AnyJob> => {
    if (ready.length) return { value: ready.shift()!, done: false };
    if (next < planned.length) return { value: planned[next++]!, done: false };
    const batch = small.next();
    return batch.done ? { value: undefined, done: true } : { value: oneJob(batch.value), done: false };
  };
  // Not a generator (one that ended stays ended): a finish may become ready after the planned jobs
  // ran out, and the worker that wrote the file's last frame then asks again and gets it.
  const queue: IterableIterator<AnyJob> = {
    next: take,
    [Symbol.iterator]() {
      return this;
    },
  };
  // A job's handler is dropped once it ran: only the jobs in flight are held.
  const onResult = (job: AnyJob, result: unknown) => {
    const handle = handlers.get(job)!;
    handlers.delete(job);
    return handle(result);
  };

  const progress = new Progress("restore", plan.files.count, plan.files.bytes);
  // The detail line per file is built only when some sink takes it.
  const detail = logWould("detail");
  const stats: FileStats = { bytes: 0, copied: 0, kept: 0, zeroed: 0, unsynced: [] };
  try {
    await pool.runAll(queue, onResult);
  } finally {
    progress.done();
  }
  return stats;

  function report(f: PlanFile, r: RestoreFileResult): void {
    stats.bytes += f.size;
    if (!r.synced) stats.unsynced.push(plan.files.indexOf(f.name));
    if (r.action === "copy") stats.copied++;
    else if (r.action === "zero") stats.zeroed++;
    else stats.kept++;
    progress.add(f.size);
    if (!detail) return;
    const total = plan.files.bytes;
    const pct = total > 0 ? ((stats.bytes * 100) / total).toFixed(2) : "100.00";
    const what = r.action === "zero" ? "restore zeroed file" : "restore file";
    const sum = r.action === "zero" || f.checksum === undefined ? "" : ` checksum ${f.checksum}`;
    logDetail(`${what} ${isPgControl(f) ? pgControlTemp(dataDir) : f.dest}${ACTION_TEXT[r.action]} (${formatBytes(f.size)}, ${pct}%)${sum}`);
  }
}

/**
 * The files that may be restored by frames: large (shared/chunk.ts), stored alone as lz4/zstd,
 * unencrypted, not by blocks, not zeroed or preserved, with a checksum to verify the whole by.
 */
function frameCandidates(src: RestoreSource, plan: RestorePlan, opts: CopyOptions): PlanFile[] {
  if (!chunkableCompress(src.compressType) || src.filePass !== undefined) return [];
  const out: PlanFile[] = [];
  for (const f of plan.files) if (isFrameCandidate(f, opts)) out.push(f);
  return out;
}

function isFrameCandidate(f: PlanFile, opts: CopyOptions): boolean {
  return f.size >= chunkThreshold() && f.bundleId === undefined && !f.blockIncr && !f.zero && !isPgControl(f) && f.checksum !== undefined && !opts.preserved.has(f.dest);
}

/** Its frames when stored as several that carry content sizes adding up to its size; only headers are read (filter/frames.ts). */
async function framesOf(src: RestoreSource, f: PlanFile): Promise<Frame[] | null> {
  const { repoFile } = repoLocation(src, f);
  const stored = f.repoSize ?? (await src.repo.info(repoFile))!.size;
  const frames = await scanFrames(src.compressType, stored, async (offset, length) => (await src.repo.get(repoFile, { offset, limit: length }))!);
  return frames && frames.reduce((n, fr) => n + fr.contentSize, 0) === f.size ? frames : null;
}

/** The files not restored by frames, in the order given. */
function* notFramed(files: Iterable<PlanFile>, framed: ReadonlySet<string>): Generator<PlanFile> {
  for (const f of files) if (!framed.has(f.name)) yield f;
}

/**
 * Large files one per job, fsynced as soon as written (their write-back overlaps the next
 * files); small ones (the many catalog files) grouped, so workers are not idle between them, and
 * fsynced in one pass at the end (a journal commit each, one after the other, is what costs).
 */
const BATCH_FILES = 32;
const BATCH_BYTES = 1024 * 1024;

/** The batches in order, one at a time: made as the workers ask for jobs, not all up front. */
export function* batches(files: Iterable<PlanFile>): Generator<PlanFile[]> {
  let cur: PlanFile[] = [];
  let bytes = 0;
  for (const f of files) {
    if (cur.length > 0 && (cur.length >= BATCH_FILES || bytes + f.size > BATCH_BYTES)) {
      yield cur;
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += f.size;
  }
  if (cur.length) yield cur;
}

/** Files a final-fsync job syncs at most. */
const SYNC_BATCH = 4096;

/** Where a file of the plan was written (pg_control: under its temp name). */
function restoredAt(plan: RestorePlan, name: string): string {
  return name === `pg_data/${PG_CONTROL}` ? pgControlTemp(plan.targets[0]!.path) : plan.files.dest(name)!;
}

/**
 * fsync every restored file (`names`: manifest record numbers), spread over the workers in
 * batches, each made (and its destinations found) as a worker takes it.
 */
async function syncFiles(pool: WorkerPool<Jobs>, cfg: Config, names: number[], destOf: (index: number) => string): Promise<void> {
  const pg = storageSpec(cfg, "pg", 1);
  // At most SYNC_BATCH paths a job: a million files in eight jobs made each a list of 125,000 path
  // strings, and their copies in the workers, for a 150 MiB step of RSS at the end of a restore.
  const per = Math.min(SYNC_BATCH, Math.max(64, Math.ceil(names.length / (pool.size * 4))));
  function* jobs(): Generator<JobOf<Jobs, typeof RESTORE_SYNC_JOB>> {
    for (let i = 0; i < names.length; i += per) yield { type: RESTORE_SYNC_JOB, params: { pg, paths: names.slice(i, i + per).map(destOf) } };
  }
  logDetail(`sync ${names.length} restored files`);
  await pool.runAll(jobs(), () => {});
}
