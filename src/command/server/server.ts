/**
 * The 'server' command: a long-running daemon that serves remote hosts over TLS, as
 * `pgbunker remote` serves them over SSH, so a database host and its repository host need no
 * sshd between them (containers, Kubernetes operators).
 *
 * Every connection is one protocol session in this process (many at once; file bytes are read
 * and filtered where they are, as the SSH remote does). Mutual TLS: the server asks for a client
 * certificate, which must be signed by a CA of tls-server-ca-file and valid, and whose CN must
 * be listed in tls-server-auth for the stanza the client names in its `open`; the stanza's
 * section of this host's configuration is read at that moment, as the SSH remote reads it when
 * it starts. A client without a certificate can only see that the server answers (server-ping).
 *
 * SIGHUP re-reads the configuration (certificates, CA, tls-server-auth) for new connections;
 * SIGTERM (or SIGINT) stops accepting and exits once the running sessions have ended; a second
 * one exits at once, aborting unfinished writes so nothing half-written stays behind.
 */
import { hostname } from "node:os";
import { createServer, type TLSSocket } from "node:tls";
import { err, PgbError } from "../../common/error.ts";
import { logDetail, logError, logInfo, logWarn } from "../../common/log.ts";
import { parseConfig, type Config } from "../../config/parse.ts";
import { readPem, tlsTransport } from "../../protocol/tls.ts";
import type { ProtocolServer } from "./../remote/server.ts";
import { remoteSession, type OpenParams, type RemoteType } from "../remote/remote.ts";
import { authorized, parseServerAuth, type ServerAuth } from "./auth.ts";

interface Settings {
  address: string;
  port: number;
  secure: { cert: string; key: string; ca: string };
  auth: ServerAuth;
  timeout: number;
}

function settingsOf(cfg: Config): Settings {
  const pem = (name: "tls-server-cert-file" | "tls-server-key-file" | "tls-server-ca-file") => readPem(cfg.req(name), name);
  return {
    address: cfg.req("tls-server-address"),
    port: cfg.num("tls-server-port") ?? 8432,
    secure: { cert: pem("tls-server-cert-file"), key: pem("tls-server-key-file"), ca: pem("tls-server-ca-file") },
    auth: parseServerAuth(cfg.hash("tls-server-auth")),
    timeout: cfg.num("protocol-timeout") ?? 1830,
  };
}

function refuse(peer: string, message: string, hint: string): never {
  logWarn(`refused client ${peer}: ${message}`);
  throw err("AccessError", message, hint);
}

export async function run(cfg: Config): Promise<number> {
  let settings = settingsOf(cfg);
  // What the server was started with (config location, overrides) also locates each session's config.
  const startArgs = cfg.cliArgs();
  const sessions = new Map<ProtocolServer, Promise<void>>();
  const host = hostname();

  /** The session's Config once the client is known to be allowed: this host's config for its stanza. */
  const admit = (socket: TLSSocket, peer: string) => async (params: OpenParams): Promise<{ cfg: Config; type: RemoteType }> => {
    const type = params.role;
    if (type !== "repo" && type !== "pg") throw err("ProtocolError", `the client asked for role '${String(type)}', expected repo or pg`, "the client and the server must run the same pgbunker version.");
    const cert = socket.getPeerCertificate();
    const rawCn = cert?.subject?.CN as string | string[] | undefined;
    const cn = Array.isArray(rawCn) ? rawCn[0] : rawCn;
    if (!cn)
      refuse(peer, "access denied: the client sent no certificate", "set repoN-host-cert-file and repoN-host-key-file (or pgN-host-...) on the client: this server serves only clients with a certificate.");
    if (!socket.authorized)
      refuse(peer, `access denied: the certificate of client '${cn}' is not trusted (${String(socket.authorizationError)})`, `it must be signed by a CA in tls-server-ca-file on ${host} and be within its validity dates (renew an expired one).`);
    const stanza = params.stanza;
    if (!authorized(settings.auth, cn, stanza))
      refuse(peer, `access denied: client '${cn}' is not authorized for ${stanza ? `stanza '${stanza}'` : "commands without a stanza"}`, `to allow it, add tls-server-auth=${cn}=${stanza ?? "*"} to the configuration on ${host} and send the server SIGHUP.`);
    logInfo(`client '${cn}' from ${peer}: ${params.command ?? "?"} on stanza '${stanza ?? "(none)"}', serving the ${type === "repo" ? `repository (repo${params.index ?? 1})` : "database"}`);
    const argv = [...startArgs, ...(stanza ? [`--stanza=${stanza}`] : []), `--remote-type=${type}`, "remote"];
    return { cfg: parseConfig({ argv, env: process.env }), type };
  };

  const accept = (socket: TLSSocket) => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const session = remoteSession(tlsTransport(socket), settings.timeout, admit(socket, peer));
    const done = session.serve().then(({ clean, error }) => {
      if (!clean && error) logDetail(`session of ${peer} ended: ${error.message}`);
      else logDetail(`session of ${peer} ended`);
    });
    sessions.set(session, done);
    void done.finally(() => sessions.delete(session));
  };

  const server = createServer({ ...settings.secure, requestCert: true, rejectUnauthorized: false }, accept);
  // A client that is not speaking TLS (or fails the handshake) never reaches a session.
  server.on("tlsClientError", (e: Error & { code?: string }, socket: TLSSocket) => logWarn(`TLS handshake with ${socket?.remoteAddress ?? "?"}:${socket?.remotePort ?? "?"} failed: ${e.code ? `${e.code}: ` : ""}${e.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: Error & { code?: string }) =>
      reject(err("HostConnectError", `unable to listen on ${settings.address}:${settings.port}: ${e.code ?? ""} ${e.message}`.trim(), "check tls-server-address and tls-server-port: the port may be in use or the address not on this host.")));
    server.listen(settings.port, settings.address, () => resolve());
  });
  server.on("error", (e: Error) => logError(`TLS server: ${e.message}`));
  logInfo(`listening for pgbunker clients over TLS on ${settings.address}:${settings.port} (pid ${process.pid})`);

  // This daemon handles its own signals (main.ts's handlers would exit at once).
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.removeAllListeners(sig);
  process.on("SIGHUP", () => {
    try {
      const next = settingsOf(parseConfig({ argv: [...startArgs, "server"], env: process.env }));
      server.setSecureContext(next.secure);
      if (next.address !== settings.address || next.port !== settings.port)
        logWarn(`tls-server-address/tls-server-port changed to ${next.address}:${next.port}: restart the server to listen there (still on ${settings.address}:${settings.port})`);
      settings = { ...next, address: settings.address, port: settings.port };
      logInfo("configuration reloaded (SIGHUP): new connections use it");
    } catch (e) {
      logError(`configuration reload failed, keeping the previous one: ${e instanceof PgbError ? e.message : String(e)}`);
    }
  });
  const abandon = () => {
    for (const s of sessions.keys()) s.abandon();
  };
  process.on("exit", abandon);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) {
        logWarn(`second ${sig}: exiting now, aborting ${sessions.size} session(s)`);
        abandon();
        process.exit(63);
      }
      stopping = true;
      server.close();
      logInfo(`${sig}: no longer accepting connections; waiting for ${sessions.size} running session(s) to end`);
      void Promise.all(sessions.values()).then(() => resolve());
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
  process.off("exit", abandon);
  return 0;
}
