/**
 * The 'remote' command: started by pgbunker on another host over SSH (never by a person), it
 * serves the protocol on stdin/stdout until the caller says goodbye or goes away. The TLS server
 * (command/server/) serves each of its connections with the same session.
 *
 * It serves the storage of ITS OWN configuration: --remote-type=repo serves repoN-path (N as the
 * caller numbers its repository host), --remote-type=pg serves pg1-path and connects to the local
 * PostgreSQL over its unix socket (the cluster on this host is pg1 of this host's config, as on
 * every database host). pgN-* values the caller sent fill in only what this config leaves unset.
 */
import { hostname } from "node:os";
import { err } from "../../common/error.ts";
import { logConfigure } from "../../common/log.ts";
import { Config } from "../../config/parse.ts";
import { ProtocolServer } from "./server.ts";
import { stdioTransport, type Transport } from "../../protocol/transport.ts";
import { posix } from "../../storage/posix/posix.ts";
import { dbConnect } from "../shared/db.ts";
import { storageRepo } from "../shared/storage.ts";

export interface OpenParams {
  index?: number;
  /** Over TLS: which side and stanza the client wants served. */
  role?: string;
  stanza?: string;
  command?: string;
  fallback?: Record<string, string | number>;
  timeout?: number;
}

/** This host's config with the caller's pgN-* values where ours are unset, as the caller's command. */
export function remoteConfig(cfg: Config, params: OpenParams): Config {
  const data = cfg.toJSON();
  const local = Config.fromJSON({ ...data, command: (params.command as Config["command"]) ?? "remote" });
  // This host reaches its own storage and database directly: never through another remote.
  for (const [key] of data.values) if (/^(repo|pg)\d+-host/.test(key)) local.unset(key);
  for (const [name, value] of Object.entries(params.fallback ?? {})) {
    const key = name === "db-timeout" ? name : `pg1-${name}`;
    if (!local.has(key)) local.set(key, value, "default");
  }
  return local;
}

export type RemoteType = "repo" | "pg";

/**
 * A protocol session serving this host's storage (and database, for pg) as the config that
 * `configFor` returns at the client's `open` says: the SSH remote knows it from its command
 * line, the TLS server only once the client has said which stanza and side it wants.
 */
export function remoteSession(transport: Transport, timeout: number, configFor: (params: OpenParams) => Promise<{ cfg: Config; type: RemoteType }>): ProtocolServer {
  let local: Config | undefined;
  let type: RemoteType | undefined;
  return new ProtocolServer(transport, {
    driver: posix,
    timeout,
    hostname: hostname(),
    open: async (params: OpenParams) => {
      const served = await configFor(params);
      type = served.type;
      local = remoteConfig(served.cfg, params);
      if (type === "repo") {
        const index = params.index ?? 1;
        // The repository as this host reaches it: a directory here, or a bucket (repoN-type=s3).
        const repo = await storageRepo(local, { repo: index });
        return { base: repo.base || "/", timeout: params.timeout, driver: repo.driver };
      }
      const base = local.str("pg1-path");
      if (!base)
        throw err("OptionRequiredError", `remote on ${hostname()} requires option: pg1-path`, `set pg1-path in the [${served.cfg.str("stanza") ?? "stanza"}] section of the configuration on ${hostname()}.`);
      return { base, timeout: params.timeout };
    },
    dbConnect: () => (type === "pg" && local ? dbConnect(local, 1) : undefined),
  });
}

export async function run(cfg: Config): Promise<number> {
  const type = cfg.str("remote-type");
  if (type !== "repo" && type !== "pg")
    throw err("OptionRequiredError", "remote command requires option: remote-type", "the remote command is started by pgbunker over SSH; it is not run by hand.");
  // stdout carries protocol frames only.
  logConfigure({ console: "off" });

  const server = remoteSession(stdioTransport(), cfg.get("protocol-timeout"), async () => ({ cfg, type }));
  // Killed by a signal (main.ts exits at once): no half-written file stays behind.
  const abandon = () => server.abandon();
  process.on("exit", abandon);
  try {
    const { clean, error } = await server.serve();
    if (!clean && error) throw error;
    return 0;
  } finally {
    process.off("exit", abandon);
  }
}
