/**
 * Database sessions by pgN index: the local unix socket, or a database host through the remote
 * protocol (remote-factory.ts). Commands call dbConnect and never branch on where
 * PostgreSQL runs.
 */
import type { Config } from "../../config/parse.ts";
import type { Db } from "../../postgres/client.ts";
import { openRemoteDb } from "./remote-factory.ts";
import { pgIsRemote } from "./storage.ts";

export async function dbConnect(cfg: Config, index = 1): Promise<Db> {
  if (pgIsRemote(cfg, index)) {
    return openRemoteDb(cfg, index);
  }
  // Loaded on use: the SQL client is not needed by commands that never connect (archive-push).
  const { LocalDb } = await import("../../postgres/client.ts");
  return LocalDb.connect({
    socketPath: cfg.str(`pg${index}-socket-path`),
    port: cfg.get(`pg${index}-port`),
    database: cfg.get(`pg${index}-database`),
    user: cfg.str(`pg${index}-user`),
    timeout: cfg.get("db-timeout"),
    applicationName: `pgbunker [${cfg.command}]`,
  });
}
