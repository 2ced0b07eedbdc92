/**
 * start and stop: a stop file in lock-path (STANZA.stop, or all.stop without --stanza) makes every
 * pgbunker command for the stanza refuse to run (main.ts checks it), so maintenance can proceed
 * without archive-push or a scheduled backup touching the repository. `stop --force` also
 * terminates the processes that hold the stanza's locks.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { err } from "../../common/error.ts";
import { writeFileAtomic } from "../../common/fs.ts";
import { lockHolders, stopFile } from "../../common/lock.ts";
import { logInfo, logWarn } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";

function target(cfg: Config): { lockPath: string; stanza?: string; file: string; what: string } {
  const lockPath = cfg.req("lock-path");
  const stanza = cfg.str("stanza");
  return { lockPath, stanza, file: stopFile(lockPath, stanza), what: stanza ? `stanza ${stanza}` : "all stanzas" };
}

export async function runStop(cfg: Config): Promise<number> {
  const t = target(cfg);
  try {
    mkdirSync(t.lockPath, { recursive: true, mode: 0o770 });
  } catch (e) {
    throw err("PathCreateError", `unable to create lock path '${t.lockPath}': ${(e as Error).message}`, "check lock-path and its permissions.");
  }
  if (existsSync(t.file)) logWarn(`stop file already exists for ${t.what}`);
  else writeFileAtomic(t.file, "");
  if (cfg.bool("force")) {
    for (const holder of lockHolders(t.lockPath, t.stanza)) {
      if (holder.pid === process.pid) continue;
      try {
        process.kill(holder.pid, "SIGTERM");
        logInfo(`sent term signal to process ${holder.pid}`);
      } catch (e) {
        logWarn(`unable to send term signal to process ${holder.pid}: ${(e as Error).message}`);
      }
    }
  }
  return 0;
}

export async function runStart(cfg: Config): Promise<number> {
  const t = target(cfg);
  if (!existsSync(t.file)) {
    logWarn(`stop file does not exist for ${t.what}`);
    return 0;
  }
  rmSync(t.file, { force: true });
  return 0;
}
