/**
 * archive-get with archive-async=y, the half PostgreSQL runs: hand over the segment when the
 * background process has prefetched it into the spool (in/NAME), start that process (with the
 * next archive-get-queue-max worth of segments) when it has not, and report "not in the archive"
 * when it says so (in/NAME.ok). The prefetching happens in archive/get/process.ts.
 */
import { err } from "../../../common/error.ts";
import { lockState } from "../../../common/lock.ts";
import { logInfo, logWarn } from "../../../common/log.ts";
import { waitFor } from "../../../common/time.ts";
import type { Config } from "../../../config/parse.ts";
import { segmentNext } from "../../../postgres/wal.ts";
import { spoolPath } from "../../../repo/layout.ts";
import type { Storage } from "../../../storage/storage.ts";
import { storageLocal, storageSpool } from "../../shared/storage.ts";
import { AsyncStarter, globalStatus, globalStatusRemove, statusRead, statusRemove, type Status } from "../spool.ts";
import { clusterIdentity } from "../common.ts";

const WAL_NOT_FOUND = 1;

export async function getAsync(cfg: Config, name: string, dest: string): Promise<number> {
  const stanza = cfg.req("stanza");
  const spool = storageSpool(cfg);
  const dir = spoolPath.in(stanza);
  const take = async (): Promise<boolean> => {
    if (!(await spool.exists(`${dir}/${name}`))) return false;
    // Warnings about other repositories were written beside the segment before it was put there.
    const status = await statusRead(spool, dir, name);
    await moveOut(spool, `${dir}/${name}`, dest);
    if (status?.kind === "ok") {
      relayWarnings(status);
      await statusRemove(spool, dir, name, "ok");
    }
    logInfo(`found ${name} in the archive asynchronously`);
    return true;
  };
  if (await take()) {
    await topUp(cfg, spool, dir, name);
    return 0;
  }

  // A "missing" answer left from before this request may be stale (WAL archived since, or a
  // previous restore): with archive-missing-retry it is asked again rather than trusted. While a
  // background process runs, NAME.ok may be its warnings for a segment on the way: left to the wait.
  const running = backgroundRunning(cfg);
  const earlier = await statusRead(spool, dir, name);
  await statusRemove(spool, dir, name, running ? "error" : "both");
  if (!running && earlier?.kind === "ok" && !cfg.bool("archive-missing-retry")) return notFound(name, earlier);
  await globalStatusRemove(spool, dir);

  const starter = new AsyncStarter(cfg, await queueFrom(cfg, name));
  const timeout = cfg.get("archive-timeout");
  const outcome = await waitFor(
    timeout,
    async (): Promise<"found" | Status | undefined> => {
      if (await take()) return "found";
      const s = (await statusRead(spool, dir, name)) ?? (await globalStatus(spool, dir));
      if (!s) starter.ensureRunning();
      // NAME.ok without the segment means "not in the archive" only once the background process
      // is done: while it runs, the file may carry warnings for a segment it is still fetching.
      if (s?.kind === "ok" && backgroundRunning(cfg)) return undefined;
      if (s?.kind === "ok" && (await take())) return "found";
      return s;
    },
    { maxDelayMs: 100 },
  );
  if (outcome === "found") return 0;
  if (!outcome)
    throw err("ArchiveTimeoutError", `unable to get WAL file '${name}' from the archive asynchronously after ${timeout} second(s)`, [
      `check '${cfg.str("log-path")}/${stanza}-archive-get-async.log' for errors.`,
    ]);
  await statusRemove(spool, dir, name);
  if (outcome.kind === "error") throw outcome.error;
  return notFound(name, outcome);
}

/** The background process for this stanza holds the archive lock while it works. */
function backgroundRunning(cfg: Config): boolean {
  return lockState(cfg.req("lock-path"), cfg.req("stanza"), "archive").held;
}

/** The background process's warnings about repositories it could not search (NAME.ok content). */
function relayWarnings(status: Extract<Status, { kind: "ok" }>): void {
  for (const line of status.warning?.split("\n") ?? []) if (line.trim() !== "") logWarn(line);
}

/**
 * Keep the queue full: after handing over a prefetched segment, start the background process for
 * the segments after it unless they are all in the spool already (or it is still running).
 */
async function topUp(cfg: Config, spool: Storage, dir: string, name: string): Promise<void> {
  const { walSegmentSize } = await clusterIdentity(cfg);
  const queue = await queueFrom(cfg, segmentNext(name, walSegmentSize));
  const present = new Set(await spool.names(dir));
  if (queue.every((n) => present.has(n))) return;
  new AsyncStarter(cfg, queue).ensureRunning();
}

function notFound(name: string, status: Extract<Status, { kind: "ok" }>): number {
  relayWarnings(status);
  logInfo(`unable to find ${name} in the archive asynchronously`);
  return WAL_NOT_FOUND;
}

/** The segment asked for and the ones after it, as many as archive-get-queue-max holds. */
async function queueFrom(cfg: Config, name: string): Promise<string[]> {
  const { walSegmentSize } = await clusterIdentity(cfg);
  const count = Math.max(1, Math.floor((cfg.get("archive-get-queue-max")) / walSegmentSize));
  const queue = [name];
  while (queue.length < count) queue.push(segmentNext(queue.at(-1)!, walSegmentSize));
  return queue;
}

/** Rename out of the spool; copy when the spool is on another file system than pg_wal. */
async function moveOut(spool: Storage, file: string, dest: string): Promise<void> {
  const local = storageLocal();
  try {
    await local.move(spool.path(file), dest);
  } catch {
    await spool.copyTo(file, local, dest, { write: { sync: false } });
    await spool.remove(file);
  }
}
