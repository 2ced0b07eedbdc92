/**
 * archive-get: PostgreSQL's restore_command (`pgbunker --stanza=NAME archive-get %f "%p"`).
 *
 * Finds the WAL file in the archive of the cluster that asks (pg_control of pg1-path), checks it
 * and writes it atomically to the destination. A file that is not in the archive is not an
 * error: exit code 1 tells PostgreSQL that recovery has reached the end of the archive.
 * With archive-async=y, segments are prefetched into the spool (see archive/get/async.ts).
 */
import { err } from "../../../common/error.ts";
import { logInfo, logWarn } from "../../../common/log.ts";
import type { Config } from "../../../config/parse.ts";
import { walFileKind } from "../../../postgres/wal.ts";
import { clusterIdentity, noValidRepo, openArchiveRepos, pgRelativePath, repoWarning } from "../common.ts";
import { findWalFile, getWalFile } from "./file.ts";
import { storageLocal } from "../../shared/storage.ts";

/** Exit code for "not in the archive": PostgreSQL takes any code from 1 to 125 as "not found". */
export const WAL_NOT_FOUND = 1;

export async function run(cfg: Config): Promise<number> {
  if (cfg.role === "async") return (await import("./process.ts")).runGetProcess(cfg);
  const [name, destParam] = cfg.params;
  if (!name) throw err("ParamRequiredError", "WAL segment to get required", "restore_command must pass the file name: restore_command = 'pgbunker --stanza=NAME archive-get %f \"%p\"'.");
  if (!destParam) throw err("ParamRequiredError", "path to copy WAL segment required", "restore_command must pass the destination: restore_command = 'pgbunker --stanza=NAME archive-get %f \"%p\"'.");
  const dest = pgRelativePath(cfg, destParam);
  if (cfg.bool("archive-async") && walFileKind(name) === "segment") return (await import("./async.ts")).getAsync(cfg, name, dest);
  return (await getSync(cfg, name, dest)) ? 0 : WAL_NOT_FOUND;
}

/** Copy one WAL file to dest; false when no repository has it. */
async function getSync(cfg: Config, name: string, dest: string): Promise<boolean> {
  const stanza = cfg.req("stanza");
  const cluster = await clusterIdentity(cfg);
  const { repos, failures } = await openArchiveRepos(cfg, stanza);
  const found = await findWalFile(repos, stanza, cluster, name);
  failures.push(...found.failures);
  // Only when no repository could be searched is this an error; otherwise say what was skipped.
  if (repos.length === found.failures.length) throw noValidRepo(failures);
  for (const f of failures) logWarn(repoWarning(f));
  if (found.sources.length === 0) {
    logInfo(`unable to find ${name} in the archive`);
    return false;
  }
  const { used, skipped } = await getWalFile(name, found.sources, { storage: storageLocal(), path: dest, sync: false }, { walSegmentSize: cluster.walSegmentSize, bufferSize: cfg.num("buffer-size") });
  for (const f of skipped) logWarn(repoWarning(f));
  logInfo(`found ${name} in the repo${used.repoIndex}: ${used.archiveId} archive`);
  return true;
}
