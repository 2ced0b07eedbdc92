/**
 * Remote operation behind the role-based factories (storage.ts, db.ts): with repoN-host or
 * pgN-host set, storageRepo/storagePg/dbConnect/openStorage return the same interfaces backed by
 * a pgbunker remote over SSH (repoN-/pgN-host-type=ssh) or TLS (=tls), so commands never branch
 * on local vs remote, nor on the transport.
 *
 * It loads nothing heavy itself (type imports only): ssh2, TLS and the protocol are imported on
 * the first remote call, so archive-push without a repository host pays nothing.
 */
import type { Config } from "../../config/parse.ts";
import { err } from "../../common/error.ts";
import type { RemoteTarget } from "../../protocol/connection.ts";
import type { TlsTarget } from "../../protocol/tls.ts";
import type { Storage } from "../../storage/storage.ts";
import type { Db } from "../../postgres/client.ts";
import type { StorageSpec } from "./storage.ts";

type Role = "repo" | "pg";

/** Everything needed to reach the remote for repoN or pgN (plain data: it travels to workers). */
export function remoteTarget(cfg: Config, role: Role, index: number): RemoteTarget {
  const opt = `${role}${index}-host` as const;
  type HostOption = "cmd" | "config" | "config-include-path" | "config-path" | "key-check" | "key-file" | "known-hosts" | "port" | "type" | "user";
  const key = (name: HostOption) => `${opt}-${name}` as const;
  const str = (name: HostOption) => cfg.str(key(name));
  const explicit = (name: HostOption) => (cfg.source(key(name)) !== undefined && cfg.source(key(name)) !== "default" ? str(name) : undefined);
  const fallback: Record<string, string | number> = {};
  if (role === "pg") {
    for (const name of ["path", "port", "socket-path", "database", "user"] as const) {
      const v = cfg.str(`pg${index}-${name}`);
      if (v !== undefined) fallback[name] = v;
    }
    const dbTimeout = cfg.num("db-timeout");
    if (dbTimeout !== undefined) fallback["db-timeout"] = dbTimeout;
  }
  return {
    ...(cfg.str(key("type")) === "tls" ? { tls: tlsTarget(cfg, opt) } : {
      ssh: {
        host: cfg.req(opt),
        port: cfg.num(key("port")) ?? 22,
        user: str("user") ?? (role === "repo" ? "pgbackrest" : "postgres"),
        keyFile: str("key-file"),
        knownHosts: str("known-hosts"),
        keyCheck: str("key-check") === "accept-new" ? "accept-new" : "strict",
        connectTimeout: cfg.get("io-timeout"),
        option: opt,
      },
    }),
    role,
    index,
    stanza: cfg.str("stanza"),
    command: cfg.command,
    cmd: str("cmd") ?? cfg.str("cmd") ?? process.execPath,
    config: {
      config: explicit("config"),
      configIncludePath: explicit("config-include-path"),
      configPath: explicit("config-path"),
    },
    timeout: cfg.get("protocol-timeout"),
    networkCompress: (cfg.get("compress-level-network")) > 0,
    fallback,
  };
}

/** pgBackRest's default port of its TLS server, kept so its configurations work unchanged. */
const TLS_PORT = 8432;

/** How to reach `pgbunker server` on repoN-host / pgN-host: a client certificate is required (mutual TLS). */
function tlsTarget(cfg: Config, opt: `repo${number}-host` | `pg${number}-host`): TlsTarget {
  const need = (name: "cert-file" | "key-file") => {
    const v = cfg.str(`${opt}-${name}`);
    if (!v)
      throw err("OptionRequiredError", `${opt}-type=tls requires option: ${opt}-${name}`, [
        `set ${opt}-cert-file and ${opt}-key-file to this host's client certificate and key (PEM);`,
        `the certificate's CN must be listed for the stanza in tls-server-auth on ${cfg.str(opt) ?? "that host"}.`,
      ]);
    return v;
  };
  return {
    host: cfg.req(opt),
    port: cfg.num(`${opt}-port`) ?? TLS_PORT,
    certFile: need("cert-file"),
    keyFile: need("key-file"),
    caFile: cfg.str(`${opt}-ca-file`),
    caPath: cfg.str(`${opt}-ca-path`),
    connectTimeout: cfg.num("io-timeout") ?? 60,
    option: opt,
  };
}

/** A Storage served by the remote `target` describes (also inside a worker, from a StorageSpec). */
export async function openRemote(target: RemoteTarget, readOnly: boolean): Promise<Storage> {
  const [{ remoteSession }, { RemoteDriver }, { Storage }] = await Promise.all([
    import("../../protocol/connection.ts"), import("../../storage/remote/remote.ts"), import("../../storage/storage.ts"),
  ]);
  const session = await remoteSession(target);
  const role = target.role === "repo" ? "repository" : "data directory";
  const driver = new RemoteDriver(session.client, session.open.features, { networkCompress: target.networkCompress });
  return new Storage(driver, session.open.base, { readOnly, role });
}

/** How a worker reaches the same remote storage: connection settings only, never secrets in clear. */
export function remoteSpec(cfg: Config, role: "repo" | "pg", index: number, readOnly: boolean): StorageSpec {
  return { kind: "remote", role, index, readOnly, target: remoteTarget(cfg, role, index) };
}

/** A database session on a database host, through its `pgbunker remote`. */
export async function openRemoteDb(cfg: Config, index: number): Promise<Db> {
  const [{ remoteSession }, { RemoteDb }] = await Promise.all([import("../../protocol/connection.ts"), import("../../postgres/remote-db.ts")]);
  return RemoteDb.open((await remoteSession(remoteTarget(cfg, "pg", index))).client);
}
