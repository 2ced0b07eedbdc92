/**
 * The background half of asynchronous archive-get (`archive-get:async SEGMENT...`), started by
 * the foreground with the segments it will ask for next. Holding the stanza's archive lock, it:
 *
 *  1. removes from the spool what this queue no longer wants (segments of an abandoned queue,
 *     old status files, temporary files of a killed run);
 *  2. looks up each queued segment not yet in the spool, stopping at the first one the archive
 *     does not have (NAME.ok: "not found", the end of the archive for now);
 *  3. fetches the found ones into the spool with process-max workers, each verified and written
 *     atomically, or NAME.error when a copy cannot be had.
 */
import { logDetail, logInfo, logWarn } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import { spoolPath } from "../../repo/layout.ts";
import type { Storage } from "../../storage/storage.ts";
import { deserializeError, serializeError } from "../../worker/protocol.ts";
import { WorkerPool } from "../../worker/pool.ts";
import { storageSpec, storageSpool, type StorageSpec } from "../storage.ts";
import { runBackground, statusOf, statusWriteError, statusWriteOk } from "./async.ts";
import { clusterIdentity, noValidRepo, openArchiveRepos } from "./common.ts";
import { findWalFile, getWalFile, type GetFileJob, type GetOutcome, type GetSource } from "./get-file.ts";

export async function runGetProcess(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  const spool = storageSpool(cfg);
  const dir = spoolPath.in(stanza);
  return runBackground(cfg, spool, dir, () => fetchQueue(cfg, stanza, [...cfg.params], spool, dir));
}

async function fetchQueue(cfg: Config, stanza: string, queue: string[], spool: Storage, dir: string): Promise<void> {
  const wanted = new Set(queue);
  for (const file of await spool.names(dir)) {
    const name = statusOf(file) ?? file;
    if (!wanted.has(name) || file.endsWith(".tmp")) await spool.remove(`${dir}/${file}`);
  }
  logInfo(`get ${queue.length} WAL file(s) from archive: ${queue[0]}${queue.length > 1 ? `...${queue.at(-1)}` : ""}`);

  const cluster = await clusterIdentity(cfg);
  const { repos, failures } = await openArchiveRepos(cfg, stanza);
  if (repos.length === 0) throw noValidRepo(failures);

  const todo: { name: string; sources: GetSource[] }[] = [];
  for (const name of queue) {
    if (await spool.exists(`${dir}/${name}`)) continue;
    const found = await findWalFile(repos, stanza, cluster, name);
    if (found.sources.length === 0) {
      if (found.failures.length === repos.length) await statusWriteError(spool, dir, name, noValidRepo([...failures, ...found.failures]));
      else {
        logDetail(`unable to find ${name} in the archive`);
        await statusWriteOk(spool, dir, name);
      }
      break; // the archive ends here for now: do not fetch past a gap
    }
    todo.push({ name, sources: found.sources });
  }

  const spoolSpec: StorageSpec = { kind: "posix", base: spool.base, role: spool.role };
  const onResult = async (name: string, outcome: GetOutcome) => {
    if (outcome.ok) {
      logDetail(`found ${name} in the repo${outcome.repoIndex}: ${outcome.archiveId} archive`);
      return;
    }
    const e = deserializeError(outcome.error);
    logWarn(`could not get WAL file '${name}' from the archive (will be retried): [${e.code}] ${e.message}`);
    await statusWriteError(spool, dir, name, e);
  };
  const dest = (name: string) => ({ path: `${dir}/${name}`, sync: true });
  const processMax = cfg.num("process-max") ?? 1;
  if (processMax > 1 && todo.length > 1) {
    const pool = await WorkerPool.start(Math.min(processMax, todo.length));
    try {
      const jobs = todo.map(({ name, sources }) => ({
        type: "archive-get-file",
        params: {
          name,
          sources: sources.map((s) => ({ repoIndex: s.repoIndex, archiveId: s.archiveId, path: s.path, walPass: s.walPass, spec: storageSpec(cfg, "repo", s.repoIndex, true) })),
          dest: { ...dest(name), spec: spoolSpec },
          walSegmentSize: cluster.walSegmentSize,
          bufferSize: cfg.num("buffer-size"),
        } as GetFileJob,
      }));
      await pool.runAll(jobs, (job, outcome: GetOutcome) => onResult(job.params.name, outcome));
    } finally {
      await pool.close();
    }
    return;
  }
  for (const { name, sources } of todo) {
    let outcome: GetOutcome;
    try {
      const used = await getWalFile(name, sources, { ...dest(name), storage: spool }, { walSegmentSize: cluster.walSegmentSize, bufferSize: cfg.num("buffer-size") });
      outcome = { ok: true, repoIndex: used.repoIndex, archiveId: used.archiveId };
    } catch (e) {
      outcome = { ok: false, error: serializeError(e) };
    }
    await onResult(name, outcome);
  }
}
