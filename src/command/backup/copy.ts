/**
 * The copy phase: one job per file that must be stored (largest first, so the long files start
 * early and the workers finish together), run by process-max workers; the main thread records each
 * result in the manifest, shows progress and saves the resumable manifest every
 * manifest-save-threshold bytes (and no sooner than ten times the last save took).
 */
import { lockProgress } from "../../common/lock.ts";
import { logDetail, logInfo, logWarn, logWould } from "../../common/log.ts";
import { formatBytes, Progress } from "../../common/progress.ts";
import { COMPRESS_EXT } from "../../filter/compress.ts";
import type { CompressType } from "../../filter/filter.ts";
import { relationSegment } from "../../postgres/exclude.ts";
import { BLOCK_INCR_EXT, repoPath } from "../../repo/layout.ts";
import { pageErrorRanges, pageErrorText, type Manifest, type ManifestFile } from "../../repo/manifest.ts";
import { startJobPool, type Jobs } from "../jobs.ts";
import type { JobOf } from "../../worker/pool.ts";
import type { StorageSpec } from "../shared/storage.ts";
import { chunkableCompress, chunkSize, chunkThreshold, filesToSplit } from "../shared/chunk.ts";
import { BACKUP_CHUNK_HASH_JOB, BACKUP_CHUNK_JOB, BACKUP_CHUNK_JOIN_JOB, type BackupChunkJoinParams, type BackupChunkResult, type backupChunkHash } from "./chunk.ts";
import { BACKUP_BUNDLE_JOB, BACKUP_FILE_JOB, type BackupBundleParams, type BackupFileParams, type BackupFileResult } from "./file.ts";

/**
 * What a file to copy needs beyond its manifest entry, for the few that need anything: the files
 * to copy are record numbers of manifest.files (an Int32Array), so a million files cost 4 MB here.
 */
export interface CopyExtra {
  /** Set when the prior backup's copy may be referenced if the SHA-1 still matches. */
  delta?: { checksum: string; size: number; label: string; prior: ManifestFile };
  /** Set when an interrupted run of this backup stored the file already. */
  resume?: { rck: string; repoSize: number; checksum: string; size: number };
  /** Stored by blocks against the prior backup's map (repo-block): referenced if no block changed. */
  blockPrior?: { label: string; prior: ManifestFile; map: { repoFile: string; offset: number; size: number } };
}

export interface CopyOptions {
  stanza: string;
  /** Where a file (relative to the data directory) is read, and its name in the log. */
  source: (pgFile: string) => { spec: StorageSpec; display: string };
  repo: StorageSpec;
  processMax: number;
  /** Retry schedule of a job whose remote connection failed (job-retry). */
  retry: readonly number[];
  bufferSize: number;
  compressType: CompressType;
  compressLevel?: number;
  cipherPass?: string;
  /** Verify page checksums of relation files. */
  pageChecksum?: { lsnLimit: string; pageSize: number; relSegSize: number; isRelation: (pgRel: string) => boolean };
  saveThreshold: number;
  savePartial: () => Promise<void>;
  /** repo-bundle: files up to `limit` bytes stored together, about `size` bytes of them a bundle. */
  bundle?: { limit: number; size: number };
  /** repo-block: files with `blockIncr` are stored by blocks; super block size and this backup's reference index. */
  block?: { superBlockSize: number; reference: number };
  /** Referencing the prior copy of a delta-checked (or block-checked) file (its record number). */
  onUnchanged: (index: number, extra: CopyExtra) => void;
}

export interface CopyStats {
  copied: number;
  copiedBytes: number;
  unchanged: number;
  kept: number;
  missing: number;
  pageErrorFiles: number;
}

/** Time to leave after a partial save that took `took` ms: ten times that, once a save is slow (100 ms or more). */
export function saveSpacing(took: number): number {
  return took >= 100 ? 10 * took : 0;
}

/** Manifest name → path relative to the data directory ("pg_data/base/1/2" → "base/1/2"). */
export function pgRelPath(name: string): string {
  return name.startsWith("pg_data/") ? name.slice("pg_data/".length) : `pg_tblspc/${name.slice("pg_tblspc/".length)}`;
}

export async function copyFiles(manifest: Manifest, tasks: Int32Array, extras: ReadonlyMap<number, CopyExtra>, o: CopyOptions): Promise<CopyStats> {
  const stats: CopyStats = { copied: 0, copiedBytes: 0, unchanged: 0, kept: 0, missing: 0, pageErrorFiles: 0 };
  if (tasks.length === 0) return stats;
  const files = manifest.files;
  const sizeOf = (t: number) => files.sizeAt(t);
  tasks.sort((a, b) => sizeOf(b) - sizeOf(a) || files.compareNames(a, b));
  let totalBytes = 0;
  for (const t of tasks) totalBytes += sizeOf(t);
  const ext = COMPRESS_EXT[o.compressType];
  const label = manifest.backup.label;

  const paramsOf = (t: number, bundled: boolean): { params: BackupFileParams; display: string } => {
    const file = files.at(t);
    const x = extras.get(t);
    const pgFile = pgRelPath(file.name);
    const source = o.source(pgFile);
    const bi = o.block && file.blockIncr;
    const block = bi
      ? { blockSize: bi.blockSize, checksumSize: bi.checksumSize, ...o.block!, priorMap: x?.blockPrior?.map, unchanged: x?.blockPrior && x.blockPrior.prior.checksum !== undefined ? { checksum: x.blockPrior.prior.checksum, size: x.blockPrior.prior.size } : undefined }
      : undefined;
    const pc = o.pageChecksum && o.pageChecksum.isRelation(pgFile)
      ? { firstBlock: relationSegment(pgFile) * o.pageChecksum.relSegSize, lsnLimit: o.pageChecksum.lsnLimit, pageSize: o.pageChecksum.pageSize }
      : undefined;
    const params: BackupFileParams = {
      pg: source.spec,
      repo: o.repo,
      pgFile,
      repoFile: repoPath.backupFile(o.stanza, label, file.name, block ? BLOCK_INCR_EXT : ext),
      compressType: o.compressType,
      compressLevel: o.compressLevel,
      cipherPass: o.cipherPass,
      bufferSize: o.bufferSize,
      pageChecksum: pc,
      delta: x?.delta ? { checksum: x.delta.checksum, size: x.delta.size } : undefined,
      resume: x?.resume,
      block,
      // pgBackRest's block incremental backups store bundle members raw (backup-bundle-raw).
      raw: bundled && o.block !== undefined,
    };
    return { params, display: source.display };
  };

  const progress = new Progress("backup", tasks.length, totalBytes);
  const threshold = Math.max(o.saveThreshold, Math.floor(totalBytes / 100));
  let sinceSave = 0;
  // A detail line per file is built only when some sink takes it (formatting is per-file work).
  const detail = logWould("detail");
  // A save renders every file's entry: with a million small files it takes seconds, so once one is
  // slow the next waits ten times as long (saveSpacing: at most ~10 % of the copy goes to saves).
  let lastSaveEnd = performance.now();
  let lastSaveTook = 0;
  let lastPct = -1;

  // One job per large file; with repo-bundle, small files go together into bundle jobs (empty
  // ones are not stored at all). Largest jobs first. A job's params are made when a worker takes
  // it, so only the running jobs' params exist at once, whatever the number of files; the files
  // themselves are record numbers (singles, and each bundle a range of `bundled`).
  type Made = { shown: string[]; job: JobOf<Jobs, "backup-file" | "backup-bundle"> };
  type Bundle = { start: number; end: number; bytes: number; id: number };
  const singles: number[] = [];
  const bundledList: number[] = [];
  const chunkedTasks: { task: number; params: BackupFileParams; display: string }[] = [];
  // tasks are sorted largest first.
  const large: number[] = [];
  for (const t of tasks) if (sizeOf(t) >= chunkThreshold() && chunkable(t)) large.push(t);
  const split = filesToSplit(large, o.processMax);
  for (const t of tasks) {
    const size = sizeOf(t);
    if (o.bundle && size === 0) {
      recordEmpty(t);
      continue;
    }
    if (o.bundle && size <= o.bundle.limit) {
      bundledList.push(t);
      continue;
    }
    if (split.has(t)) {
      const { params, display } = paramsOf(t, false);
      chunkedTasks.push({ task: t, params, display });
      continue;
    }
    singles.push(t);
  }
  const single = Int32Array.from(singles);
  singles.length = 0;
  const bundled = Int32Array.from(bundledList);
  bundledList.length = 0;
  const bundles: Bundle[] = [];
  if (o.bundle) {
    // pgBackRest's bundle order: oldest first (files that stopped changing go together, so a later
    // incr references whole bundles rather than one member of many), then by name descending.
    bundled.sort((a, b) => files.timestampAt(a) - files.timestampAt(b) || files.compareNames(b, a));
    let start = 0;
    let bytes = 0;
    const close = (end: number) => {
      if (end === start) return;
      bundles.push({ start, end, bytes, id: bundles.length + 1 });
      start = end;
      bytes = 0;
    };
    for (let i = 0; i < bundled.length; i++) {
      bytes += sizeOf(bundled[i]!);
      if (bytes >= o.bundle.size) close(i + 1);
    }
    close(bundled.length);
    bundles.sort((a, b) => b.bytes - a.bytes);
  }
  const makeSingle = (t: number): Made => {
    const { params, display } = paramsOf(t, false);
    return { shown: [display], job: { type: BACKUP_FILE_JOB, params } };
  };
  const makeBundle = (b: Bundle): Made => {
    const made: { params: BackupFileParams; display: string }[] = [];
    for (let i = b.start; i < b.end; i++) made.push(paramsOf(bundled[i]!, true));
    const params: BackupBundleParams = { repo: o.repo, repoFile: repoPath.bundleFile(o.stanza, label, b.id), bufferSize: o.bufferSize, files: made.map((m) => m.params), bundleId: b.id };
    return { shown: made.map((m) => m.display), job: { type: BACKUP_BUNDLE_JOB, params } };
  };

  // Every job's result goes to its handler; a large file's chunks add jobs as they finish (its
  // join once all are in, or its one-job copy when the reads disagreed), handed out first.
  // Planned jobs are made when a worker takes them, so only running jobs' params exist at once.
  type AnyJob = JobOf<Jobs, "backup-file" | "backup-bundle" | "backup-chunk" | "backup-chunk-hash" | "backup-chunk-join">;
  const handlers = new Map<AnyJob, (result: unknown) => Promise<void>>();
  const planned: (() => AnyJob)[] = [];
  for (const c of chunkedTasks) planChunks(c.task, c.params, c.display);
  // Then the single files and the bundles, largest first (a single before a bundle of its size).
  let nextSingle = 0;
  let nextBundle = 0;
  const nextUnit = (): AnyJob | undefined => {
    const b = bundles[nextBundle];
    const takeSingle = nextSingle < single.length && (b === undefined || sizeOf(single[nextSingle]!) >= b.bytes);
    if (!takeSingle && b === undefined) return undefined;
    const members = takeSingle ? [single[nextSingle++]!] : undefined;
    if (!takeSingle) nextBundle++;
    const { job, shown } = takeSingle ? makeSingle(members![0]!) : makeBundle(b!);
    handlers.set(job, async (result) => {
      handlers.delete(job);
      const results = (Array.isArray(result) ? result : [result]) as BackupFileResult[];
      if (members) return record(members[0]!, shown[0]!, results[0]!, undefined);
      for (let i = b!.start; i < b!.end; i++) await record(bundled[i]!, shown[i - b!.start]!, results[i - b!.start]!, b!.id);
    });
    return job;
  };
  const ready: AnyJob[] = [];
  let next = 0;
  // Not a generator: one that has ended stays ended, and a join may become ready after the
  // planned jobs ran out (the worker that finished the last chunk then asks again and gets it).
  const queue: IterableIterator<AnyJob> = {
    next: () => {
      if (ready.length) return { value: ready.shift()!, done: false };
      if (next < planned.length) return { value: planned[next++]!(), done: false };
      const job = nextUnit();
      return job ? { value: job, done: false } : { value: undefined, done: true };
    },
    [Symbol.iterator]() {
      return this;
    },
  };

  const jobCount = planned.length + single.length + bundles.length;
  const pool = await startJobPool(Math.max(1, Math.min(o.processMax, jobCount)), { retry: o.retry });
  try {
    await pool.runAll(queue, async (job, result) => handlers.get(job)!(result));
  } finally {
    progress.done();
    await pool.close();
  }
  const secs = progress.elapsedSeconds();
  logInfo(`copied ${stats.copied} files (${formatBytes(stats.copiedBytes)}) in ${secs.toFixed(1)}s (${formatBytes(secs > 0 ? stats.copiedBytes / secs : 0)}/s); ${stats.unchanged + stats.kept} verified unchanged`);
  return stats;

  /**
   * A large file worked on by several workers (backup/chunk.ts): lz4/zstd frames need no state
   * across chunks; encryption (one cipher stream), block incremental (maps) and the delta and
   * resume checks (a read of the whole file decides first) keep the one-job path.
   */
  function chunkable(t: number): boolean {
    const x = extras.get(t);
    return chunkableCompress(o.compressType) && !o.cipherPass && !(o.block && files.at(t).blockIncr) && !x?.delta && !x?.resume && sizeOf(t) >= chunkThreshold();
  }

  /** The chunk jobs and the hash job of one large file; their results decide its join (or its one-job copy). */
  function planChunks(t: number, params: BackupFileParams, shown: string): void {
    const size = chunkSize();
    const fileSize = sizeOf(t);
    const count = Math.ceil(fileSize / size);
    const chunks: (BackupChunkResult | undefined)[] = new Array(count);
    let hash: Awaited<ReturnType<typeof backupChunkHash>> | undefined;
    let left = count + 1;
    const join: BackupChunkJoinParams = { repo: params.repo, repoFile: params.repoFile, count, bufferSize: params.bufferSize };
    const settle = async () => {
      if (--left > 0) return;
      const all = chunks as BackupChunkResult[];
      if (hash === null || all.some((c) => c.status === "missing")) {
        dropParts();
        return record(t, shown, { status: "missing", size: 0 }, undefined);
      }
      const agree = hash!.size === fileSize && all.every((c, i) => c.status === "copied" && c.crc === hash!.crcs[i]);
      if (!agree) {
        // Written, truncated or extended between the two reads: copy it as one job (one read).
        logDetail(`file ${shown} changed while read in chunks: copied as one job`);
        dropParts();
        const single: AnyJob = { type: BACKUP_FILE_JOB, params };
        handlers.set(single, async (r) => record(t, shown, r as BackupFileResult, undefined));
        ready.push(single);
        return;
      }
      const joinJob: AnyJob = { type: BACKUP_CHUNK_JOIN_JOB, params: join };
      handlers.set(joinJob, async (r) => {
        const stored = r as { repoSize: number; rck: string };
        const last = all[count - 1]!;
        await record(t, shown, {
          status: "copied",
          size: hash!.size,
          checksum: hash!.checksum,
          repoSize: stored.repoSize,
          rck: stored.rck,
          pageErrors: params.pageChecksum ? all.flatMap((c) => c.pageErrors ?? []) : undefined,
          pageAlign: params.pageChecksum ? last.pageAlign : undefined,
        }, undefined);
      });
      ready.push(joinJob);
    };
    const dropParts = () => {
      const drop: AnyJob = { type: BACKUP_CHUNK_JOIN_JOB, params: { ...join, drop: true } };
      handlers.set(drop, async () => {});
      ready.push(drop);
    };
    // The hash job first: it is the longest (the whole file), the chunks fill the other workers.
    const hashJob: AnyJob = { type: BACKUP_CHUNK_HASH_JOB, params: { pg: params.pg, pgFile: params.pgFile, chunkSize: size, bufferSize: params.bufferSize } };
    handlers.set(hashJob, async (r) => {
      hash = r as typeof hash;
      await settle();
    });
    planned.push(() => hashJob);
    for (let i = 0; i < count; i++) {
      const offset = i * size;
      const job: AnyJob = { type: BACKUP_CHUNK_JOB, params: { file: params, index: i, count, offset, length: Math.min(size, fileSize - offset) } };
      handlers.set(job, async (r) => {
        chunks[i] = r as BackupChunkResult;
        await settle();
      });
      planned.push(() => job);
    }
  }

  /** An empty file in a bundled backup: recorded, nothing stored (as pgBackRest does). */
  function recordEmpty(t: number): void {
    const f = files.at(t);
    f.checksum = f.rck = f.repoSize = f.reference = undefined;
    if (o.pageChecksum?.isRelation(pgRelPath(f.name))) f.checksumPage = true;
    files.setAt(t, f);
    progress.add(0);
  }

  async function record(t: number, shown: string, r: BackupFileResult, bundleId: number | undefined): Promise<void> {
    const f = files.at(t);
    const pct = totalBytes ? ((progress.bytes + f.size) * 100) / totalBytes : 100;
    switch (r.status) {
      case "missing":
        manifest.files.delete(f.name);
        stats.missing++;
        logDetail(`skip file removed by database ${shown}`);
        break;
      case "unchanged":
        o.onUnchanged(t, extras.get(t)!);
        stats.unchanged++;
        if (detail) logDetail(`match file from prior backup ${shown} (${formatBytes(r.size)}, ${pct.toFixed(2)}%) checksum ${r.checksum}`);
        break;
      case "kept":
      case "copied": {
        f.size = r.size;
        f.checksum = r.size > 0 ? r.checksum : undefined;
        f.repoSize = r.repoSize;
        f.rck = r.rck;
        f.reference = undefined;
        f.bundleId = r.bundleOffset !== undefined ? bundleId : undefined;
        // pgBackRest leaves out an offset of 0 (the bundle's first member).
        f.bundleOffset = r.bundleOffset ? r.bundleOffset : undefined;
        // A resumed (kept) file keeps the map its interrupted run stored (planTasks copied it).
        if (r.status === "copied" && f.blockIncr) f.blockIncr = r.blockMapSize !== undefined ? { ...f.blockIncr, mapSize: r.blockMapSize } : undefined;
        if (r.status === "kept") stats.kept++;
        else {
          stats.copied++;
          stats.copiedBytes += r.size;
        }
        if (r.pageErrors !== undefined) {
          const ok = r.pageErrors.length === 0 && r.pageAlign !== false;
          f.checksumPage = ok;
          f.checksumPageError = r.pageErrors.length ? pageErrorRanges(r.pageErrors) : undefined;
          if (!ok) {
            stats.pageErrorFiles++;
            if (r.pageErrors.length)
              logWarn(`invalid page checksums found in file ${shown} at pages ${pageErrorText(f.checksumPageError!)}`);
            else logWarn(`page misalignment in file ${shown}: file size ${r.size} is not divisible by page size ${o.pageChecksum!.pageSize}`);
          }
        }
        if (detail) logDetail(`${r.status === "kept" ? "checksum resumed file" : "backup file"} ${shown} (${formatBytes(r.size)}, ${pct.toFixed(2)}%) checksum ${r.checksum ?? ""}`);
        files.setAt(t, f);
        break;
      }
    }
    progress.add(f.size);
    // The lock file carries the percentage, so `info` (ours or pgBackRest's) shows a running backup's progress.
    const pctDone = totalBytes ? Math.floor((progress.bytes * 100) / totalBytes) : 100;
    if (pctDone !== lastPct) {
      lastPct = pctDone;
      lockProgress((progress.bytes * 100) / Math.max(totalBytes, 1));
    }
    sinceSave += f.size;
    if (sinceSave >= threshold && performance.now() - lastSaveEnd >= saveSpacing(lastSaveTook)) {
      sinceSave = 0;
      const start = performance.now();
      await o.savePartial();
      lastSaveEnd = performance.now();
      lastSaveTook = lastSaveEnd - start;
    }
  }
}
