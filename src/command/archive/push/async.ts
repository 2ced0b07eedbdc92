/**
 * archive-push with archive-async=y, the half PostgreSQL runs: acknowledge the WAL file once the
 * background process reports it pushed (spool out/NAME.ok), starting that process when none is
 * running. The push itself, with process-max workers, happens in archive/push/process.ts.
 */
import { dirname } from "node:path";
import { err } from "../../../common/error.ts";
import { logInfo, logWarn } from "../../../common/log.ts";
import { waitFor } from "../../../common/time.ts";
import type { Config } from "../../../config/parse.ts";
import { spoolPath } from "../../../repo/layout.ts";
import { storageSpool } from "../../shared/storage.ts";
import { AsyncStarter, globalStatus, globalStatusRemove, statusRead, statusRemove, type Status } from "../spool.ts";

export async function pushAsync(cfg: Config, source: string, name: string): Promise<number> {
  const stanza = cfg.req("stanza");
  const spool = storageSpool(cfg);
  const dir = spoolPath.out(stanza);

  // Pushed by an earlier run of the background process: done. An old error is retried instead.
  let status = await statusRead(spool, dir, name);
  if (status?.kind !== "ok") {
    await statusRemove(spool, dir, name, "error");
    await globalStatusRemove(spool, dir);
    const starter = new AsyncStarter(cfg, [dirname(source)]);
    const timeout = cfg.get("archive-timeout");
    status = await waitFor(
      timeout,
      async (): Promise<Status | undefined> => {
        const s = (await statusRead(spool, dir, name)) ?? (await globalStatus(spool, dir));
        if (!s) starter.ensureRunning();
        return s;
      },
      { maxDelayMs: 100 },
    );
    if (!status)
      throw err("ArchiveTimeoutError", `unable to push WAL file '${name}' to the archive asynchronously after ${timeout} second(s)`, [
        `check '${cfg.str("log-path")}/${stanza}-archive-push-async.log' for errors.`,
        "a slow repository, or a large archive-push queue, may need a larger archive-timeout.",
      ]);
  }
  if (status.kind === "error") throw status.error;
  if (status.warning) logWarn(status.warning);
  logInfo(`pushed WAL file '${name}' to the archive asynchronously`);
  return 0;
}
