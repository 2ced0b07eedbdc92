/**
 * The background half of asynchronous archive-get (`archive-get:async SEGMENT...`), started by
 * the foreground with the segments it will ask for next. Holding the stanza's archive lock, it:
 *
 *  1. removes from the spool what this queue no longer wants (segments of an abandoned queue,
 *     old status files, temporary files of a killed run);
 *  2. looks up each queued segment not yet in the spool in every repository (in order), stopping
 *     at the first one the archive does not have;
 *  3. fetches the found ones into the spool with process-max workers, each verified and written
 *     atomically, or NAME.error when a copy cannot be had;
 *  4. last, NAME.ok for the first segment not found ("not found", the end of the archive for now).
 *
 * A repository that fails while another can answer is a warning, logged here once per repository
 * and relayed to the foreground in NAME.ok ("0\nwarnings"), as pgBackRest relays it: that file is
 * written before the segment is put in place, so the foreground that takes the segment finds it.
 */
import { startJobPool } from "../../jobs.ts";
import { errorFromWire, errorToWire } from "../../../common/error.ts";
import { logDetail, logInfo, logWarn } from "../../../common/log.ts";
import type { Config } from "../../../config/parse.ts";
import { spoolPath } from "../../../repo/layout.ts";
import type { Storage } from "../../../storage/storage.ts";
import { storageSpec, storageSpool, type StorageSpec } from "../../shared/storage.ts";
import { runBackground, statusOf, statusRemove, statusWriteError, statusWriteOk } from "../spool.ts";
import { clusterIdentity, noValidRepo, openArchiveRepos, repoWarning, type RepoFailure } from "../common.ts";
import { findWalFile, getOutcome, getWalFile, type GetFileJob, type GetOutcome, type GetSource } from "./file.ts";

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

  const warned = new Set<string>();
  const warningsOf = (more: RepoFailure[]): string[] => {
    const lines = [...new Set([...failures, ...more].map(repoWarning))];
    for (const line of lines.filter((l) => !warned.has(l))) {
      warned.add(line);
      logWarn(line);
    }
    return lines;
  };

  const todo: { name: string; sources: GetSource[]; warnings: string[] }[] = [];
  let missing: { name: string; warnings: string[] } | undefined;
  for (const name of queue) {
    if (await spool.exists(`${dir}/${name}`)) continue;
    const found = await findWalFile(repos, stanza, cluster, name);
    if (found.sources.length === 0 && found.failures.length === repos.length) {
      await statusWriteError(spool, dir, name, noValidRepo([...failures, ...found.failures]));
      break;
    }
    const warnings = warningsOf(found.failures);
    if (found.sources.length === 0) {
      missing = { name, warnings };
      break; // the archive ends here for now: do not fetch past a gap
    }
    todo.push({ name, sources: found.sources, warnings });
  }
  await fetchAll(cfg, spool, dir, cluster.walSegmentSize, todo);
  if (missing) {
    logDetail(`unable to find ${missing.name} in the archive`);
    await statusWriteOk(spool, dir, missing.name, missing.warnings.join("\n"));
  }
}

/** Fetch the found segments into the spool (in workers when process-max > 1), each with its warnings first. */
async function fetchAll(cfg: Config, spool: Storage, dir: string, walSegmentSize: number, todo: { name: string; sources: GetSource[]; warnings: string[] }[]): Promise<void> {
  for (const { name, warnings } of todo) if (warnings.length > 0) await statusWriteOk(spool, dir, name, warnings.join("\n"));

  const spoolSpec: StorageSpec = { kind: "posix", base: spool.base, role: spool.role };
  const onResult = async (name: string, outcome: GetOutcome) => {
    if (outcome.ok) {
      for (const w of outcome.warnings) logWarn(w);
      logDetail(`found ${name} in the repo${outcome.repoIndex}: ${outcome.archiveId} archive`);
      return;
    }
    const e = errorFromWire(outcome.error);
    logWarn(`could not get WAL file '${name}' from the archive (will be retried): [${e.code}] ${e.message}`);
    await statusRemove(spool, dir, name, "ok");
    await statusWriteError(spool, dir, name, e);
  };
  const dest = (name: string) => ({ path: `${dir}/${name}`, sync: true });
  const processMax = cfg.get("process-max");
  if (processMax > 1 && todo.length > 1) {
    const pool = await startJobPool(Math.min(processMax, todo.length));
    try {
      const jobs = todo.map(({ name, sources }) => ({
        type: "archive-get-file" as const,
        params: {
          name,
          sources: sources.map((s) => ({ repoIndex: s.repoIndex, archiveId: s.archiveId, path: s.path, walPass: s.walPass, spec: storageSpec(cfg, "repo", s.repoIndex, true) })),
          dest: { ...dest(name), spec: spoolSpec },
          walSegmentSize,
          bufferSize: cfg.num("buffer-size"),
        } as GetFileJob,
      }));
      await pool.runAll(jobs, (job, outcome) => onResult(job.params.name, outcome));
    } finally {
      await pool.close();
    }
    return;
  }
  for (const { name, sources } of todo) {
    let outcome: GetOutcome;
    try {
      outcome = getOutcome(await getWalFile(name, sources, { ...dest(name), storage: spool }, { walSegmentSize, bufferSize: cfg.num("buffer-size") }));
    } catch (e) {
      outcome = { ok: false, error: errorToWire(e) };
    }
    await onResult(name, outcome);
  }
}
