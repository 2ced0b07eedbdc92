/**
 * expire removes the stale temporary files of the stanza (repo/temp-files.ts): those of killed
 * archive-pushes to directories no push has come back to (the push's own sweep covers the rest),
 * and of interrupted info-file writes. Run before the WAL is expired, so that a segment
 * directory whose WAL all goes is not kept alive by a temp file.
 */
import { logInfo } from "../../common/log.ts";
import { removeStaleTemps, stanzaTempFiles } from "../../repo/temp-files.ts";
import type { ExpireContext } from "./remove.ts";

export async function expireTempFiles(ctx: ExpireContext, staleSeconds: number): Promise<void> {
  const temps = await stanzaTempFiles(ctx.storage, ctx.stanza);
  const cutoff = Date.now() / 1000 - staleSeconds;
  const stale = ctx.dryRun ? temps.filter((t) => t.mtime < cutoff) : await removeStaleTemps(ctx.storage, temps, cutoff);
  for (const t of stale) logInfo(`${ctx.prefix}remove stale temporary file ${ctx.storage.path(t.path)}`);
}
