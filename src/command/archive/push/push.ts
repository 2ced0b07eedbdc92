/**
 * archive-push: PostgreSQL's archive_command (`pgbunker --stanza=NAME archive-push %p`).
 *
 * Synchronous by default: check pg_control against the stanza, then compress, checksum and store
 * the WAL file in every repository before returning. With archive-async=y the file is handed to
 * a background process through the spool (see archive/push/async.ts). The background process
 * itself runs this command with the `async` role.
 *
 * Runs once per WAL segment, so only what the synchronous path needs is loaded here.
 */
import { basename, dirname } from "node:path";
import { err } from "../../../common/error.ts";
import { logInfo, logWarn } from "../../../common/log.ts";
import type { Config } from "../../../config/parse.ts";
import { clusterIdentity, noValidRepo, openArchiveRepos, pgRelativePath, pushSettings, queueBytes, readyWalFiles, repoFailuresError, sizeText } from "../common.ts";
import { checkWalName, pushTargets, pushWalFile } from "./file.ts";
import { storageLocal } from "../../shared/storage.ts";

export async function run(cfg: Config): Promise<number> {
  if (cfg.role === "async") return (await import("./process.ts")).runPushProcess(cfg);
  const param = cfg.params[0];
  if (!param) throw err("ParamRequiredError", "WAL segment to push required", "archive_command must pass the WAL path: archive_command = 'pgbunker --stanza=NAME archive-push %p'.");
  const source = pgRelativePath(cfg, param);
  const name = basename(source);
  // Before anything else: asynchronously, the background process would never report on it.
  checkWalName(name, param);
  if (cfg.bool("archive-async")) return (await import("./async.ts")).pushAsync(cfg, source, name);
  await pushSync(cfg, source, name);
  return 0;
}

async function pushSync(cfg: Config, source: string, name: string): Promise<void> {
  const stanza = cfg.req("stanza");
  const cluster = await clusterIdentity(cfg);

  const queueMax = cfg.num("archive-push-queue-max");
  if (queueMax !== undefined) {
    if (queueBytes(await readyWalFiles(storageLocal(true), dirname(source)), cluster.walSegmentSize) > queueMax) {
      logWarn(`dropped WAL file '${name}' because archive queue exceeded ${sizeText(queueMax)}`);
      return;
    }
  }

  const opened = await openArchiveRepos(cfg, stanza);
  const { targets, failures } = pushTargets(opened.repos, cluster);
  failures.unshift(...opened.failures);
  if (targets.length === 0) throw noValidRepo(failures);

  const result = await pushWalFile(
    {
      source: storageLocal(true),
      sourcePath: source,
      name,
      stanza,
      ...pushSettings(cfg, cluster),
    },
    targets,
  );
  for (const w of result.warnings) logWarn(w);
  failures.push(...result.failures);
  if (failures.length) throw repoFailuresError(cfg, failures);
  logInfo(`pushed WAL file '${name}' to the archive`);
}
