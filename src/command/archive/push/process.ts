/**
 * The background half of asynchronous archive-push (`archive-push:async PG_WAL_DIR`), started by
 * the foreground when no such process runs. Holding the stanza's archive lock, it:
 *
 *  1. lists the WAL files PostgreSQL has marked .ready, and forgets the status of those it has
 *     since marked .done;
 *  2. drops the whole queue, loudly, when it exceeds archive-push-queue-max (PostgreSQL would
 *     otherwise fill its disk and stop);
 *  3. pushes what has no status yet with process-max workers, writing NAME.ok or NAME.error, at
 *     most archive-push-batch-size of it;
 *  4. looks again, and exits when a pass finds nothing new, or after a pass the batch size cut
 *     short: the next archive-push starts a new process, which checks the queue afresh.
 */
import { errorCode, errorFromWire } from "../../../common/error.ts";
import { logDetail, logInfo, logWarn } from "../../../common/log.ts";
import type { Config } from "../../../config/parse.ts";
import { spoolPath } from "../../../repo/layout.ts";
import type { Storage } from "../../../storage/storage.ts";
import type { WorkerPool } from "../../../worker/pool.ts";
import { startJobPool, type Jobs } from "../../jobs.ts";
import { storageLocal, storageSpec, storageSpool } from "../../shared/storage.ts";
import { runBackground, statusOf, statusRemove, statusWriteError, statusWriteOk } from "../spool.ts";
import { batchSegments, clusterIdentity, noValidRepo, openArchiveRepos, pushSettings, queueBytes, readyWalFiles, repoFailuresError, sizeText } from "../common.ts";
import { pushOutcome, pushTargets, pushWalFile, type JobOutcome, type PushFileJob } from "./file.ts";

export async function runPushProcess(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  const walDir = cfg.params[0] ?? `${cfg.req("pg1-path")}/pg_wal`;
  const spool = storageSpool(cfg);
  const dir = spoolPath.out(stanza);
  return runBackground(cfg, spool, dir, () => pushQueue(cfg, stanza, walDir, spool, dir));
}

async function pushQueue(cfg: Config, stanza: string, walDir: string, spool: Storage, dir: string): Promise<void> {
  const local = storageLocal(true);
  const cluster = await clusterIdentity(cfg);
  const opened = await openArchiveRepos(cfg, stanza);
  const { targets, failures } = pushTargets(opened.repos, cluster);
  failures.unshift(...opened.failures);
  if (targets.length === 0) throw noValidRepo(failures);


  const base: Omit<PushFileJob, "sourcePath" | "name"> = {
    stanza,
    ...pushSettings(cfg, cluster),
    targets: targets.map((t) => ({ repoIndex: t.repoIndex, archiveId: t.archiveId, walPass: t.walPass, spec: storageSpec(cfg, "repo", t.repoIndex) })),
  };
  const processMax = cfg.get("process-max");
  const batchMax = batchSegments(cfg.num("archive-push-batch-size"), cluster.walSegmentSize);
  let pool: WorkerPool<Jobs> | undefined;
  // Files that failed in this process wait for the foreground to ask again: no tight retry loop.
  const failed = new Set<string>();
  try {
    for (;;) {
      const ready = await readyWalFiles(local, walDir);
      const done = await forgetFinished(spool, dir, ready);
      const waiting = ready.filter((n) => !done.has(n) && !failed.has(n));
      if (waiting.length === 0) return;
      const queueMax = cfg.num("archive-push-queue-max");
      const drop = queueMax !== undefined && queueBytes(ready, cluster.walSegmentSize) > queueMax;
      // A dropped queue is dropped whole; otherwise the oldest files, up to the batch size.
      const todo = drop ? waiting : waiting.slice(0, batchMax);
      logInfo(`push ${todo.length} WAL file(s) to archive: ${todo[0]}${todo.length > 1 ? `...${todo.at(-1)}` : ""}`);

      if (drop) {
        for (const name of todo) {
          const warning = `dropped WAL file '${name}' because archive queue exceeded ${sizeText(queueMax)}`;
          logWarn(warning);
          await statusWriteOk(spool, dir, name, warning);
        }
        continue;
      }

      const jobs = todo.map((name) => ({ type: "archive-push-file" as const, params: { ...base, name, sourcePath: `${walDir}/${name}` } as PushFileJob }));
      const onResult = async (name: string, outcome: JobOutcome) => {
        // A repository that cannot take WAL fails every file, after the others have it.
        const repoFailed = outcome.ok ? [...failures, ...outcome.failures.map((f) => ({ index: f.index, error: errorFromWire(f.error) }))] : [];
        if (outcome.ok && repoFailed.length === 0) {
          for (const w of outcome.warnings) logWarn(w);
          logDetail(`pushed WAL file '${name}' to the archive`);
          await statusWriteOk(spool, dir, name, outcome.warnings[0]);
          return;
        }
        const e = outcome.ok ? repoFailuresError(cfg, repoFailed) : errorFromWire(outcome.error);
        failed.add(name);
        logWarn(`could not push WAL file '${name}' to the archive (will be retried): [${errorCode(e)}] ${e.message}`);
        await statusWriteError(spool, dir, name, e);
      };
      if (processMax > 1 && todo.length > 1) {
        pool ??= await startJobPool(Math.min(processMax, todo.length));
        await pool.runAll(jobs, (job, outcome) => onResult(job.params.name, outcome));
      } else {
        // One at a time in this process, with the storages already open.
        for (const job of jobs) await onResult(job.params.name, await pushOutcome(() => pushWalFile({ ...job.params, source: local }, targets)));
      }
      if (todo.length < waiting.length) {
        logDetail(`archive-push-batch-size reached: ${waiting.length - todo.length} WAL file(s) left for the next run`);
        return;
      }
    }
  } finally {
    await pool?.close();
  }
}

/**
 * Status files of WAL files PostgreSQL no longer lists as ready are removed (it has recorded them
 * as archived); returns the ready files already pushed.
 */
async function forgetFinished(spool: Storage, dir: string, ready: string[]): Promise<Set<string>> {
  const readySet = new Set(ready);
  const pushed = new Set<string>();
  for (const file of await spool.names(dir)) {
    const name = statusOf(file);
    if (name === undefined || name === "global") continue;
    if (!readySet.has(name)) await statusRemove(spool, dir, name);
    else if (file.endsWith(".ok")) pushed.add(name);
  }
  return pushed;
}
