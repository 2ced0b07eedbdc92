/**
 * The PostgreSQL clusters a stanza names (pg1..pgN): connect to each, learn which one is the
 * primary and which are standbys, and read what pg_control says about the cluster. Used by the
 * commands that need a running primary (stanza-create/upgrade, check) or its identity.
 */
import { realpathSync } from "node:fs";
import { err, PgbError } from "../../common/error.ts";
import { logWarn } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import type { Db } from "../../postgres/client.ts";
import { readPgControl, type PgControl } from "../../postgres/control.ts";
import { pgInfo, type PgInfo } from "../../postgres/queries.ts";
import { dbConnect } from "./db.ts";
import { pgIsRemote, storagePg } from "./storage.ts";

export interface PgConnection {
  index: number;
  db: Db;
  info: PgInfo;
}

export interface PgClusters {
  primary?: PgConnection;
  standbys: PgConnection[];
  close(): Promise<void>;
}

/** pgN indexes that are configured (have a path or a host). */
export function pgIndexes(cfg: Config): number[] {
  return cfg.indexes("pg").filter((i) => cfg.has(`pg${i}-path`) || cfg.has(`pg${i}-host`));
}

/**
 * Connect to every configured cluster. One that cannot be reached is reported as a warning (a
 * standby may be down); none reachable, or no primary when one is needed, is an error.
 */
export async function connectClusters(cfg: Config, opts: { primaryRequired: boolean }): Promise<PgClusters> {
  const conns: PgConnection[] = [];
  const close = async () => {
    for (const c of conns) await c.db.close();
  };
  for (const index of pgIndexes(cfg)) {
    let db: Db | undefined;
    try {
      db = await dbConnect(cfg, index);
      const info = await pgInfo(db);
      checkDataDirectory(cfg, index, info);
      conns.push({ index, db, info });
    } catch (e) {
      await db?.close();
      if (e instanceof PgbError && e.kind === "DbConnectError") {
        logWarn(`unable to check pg${index}: [${e.kind}] ${e.message}`);
        continue;
      }
      await close();
      throw e;
    }
  }
  const primaries = conns.filter((c) => !c.info.inRecovery);
  if (primaries.length > 1) {
    await close();
    throw err("DbMismatchError", `more than one primary cluster found: ${primaries.map((c) => `pg${c.index}`).join(", ")}`, "only one configured cluster may be a primary: check the pgN-* options.");
  }
  if (conns.length === 0) {
    // As pgBackRest: commands that need the primary report a connection failure (56), others a configuration one.
    if (opts.primaryRequired) throw err("DbConnectError", "unable to find primary cluster - cannot proceed", ["are all available clusters in recovery?", "is PostgreSQL running? the warnings above say why each cluster could not be reached."]);
    throw err("ConfigError", "no database found", "check indexed pg-path/pg-host configurations.");
  }
  if (opts.primaryRequired && primaries.length === 0) {
    await close();
    throw err("ConfigError", "primary database not found", "check indexed pg-path/pg-host configurations.");
  }
  return { primary: primaries[0], standbys: conns.filter((c) => c.info.inRecovery), close };
}

/** The cluster we connected to must be the one whose files pgN-path names. */
function checkDataDirectory(cfg: Config, index: number, info: PgInfo): void {
  const path = cfg.str(`pg${index}-path`);
  if (!path || pgIsRemote(cfg, index)) return;
  if (canonical(path) !== canonical(info.dataDirectory))
    throw err(
      "DbMismatchError",
      `version '${info.facts.version}' and path '${info.dataDirectory}' queried from cluster do not match version '${info.facts.version}' and '${path}' of option pg${index}-path`,
      `is pg${index}-path the data directory of the cluster on pg${index}-port/pg${index}-socket-path?`,
    );
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path.replace(/\/+$/, "");
  }
}

/**
 * pg_control of the cluster a stanza command works on: the primary when --online (checking that
 * the running server is the same major), else pg1-path of a stopped cluster.
 */
export async function stanzaControl(cfg: Config): Promise<PgControl> {
  if (!cfg.bool("online")) return readPgControl(await storagePg(cfg, 1, { readOnly: true }));
  const clusters = await connectClusters(cfg, { primaryRequired: true });
  try {
    const primary = clusters.primary!;
    const control = await readPgControl(await storagePg(cfg, primary.index, { readOnly: true }));
    if (control.version !== primary.info.facts.version)
      throw err(
        "DbMismatchError",
        `version '${primary.info.facts.version}' queried from cluster does not match version '${control.version}' read from pg_control of pg${primary.index}-path`,
        `is pg${primary.index}-path the data directory of the running cluster?`,
      );
    return control;
  } finally {
    await clusters.close();
  }
}
