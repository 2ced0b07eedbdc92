/**
 * Sessions with pgbunker remotes, one per (host, side, stanza) in each thread: a `pgbunker remote`
 * started over SSH, or a session of the `pgbunker server` on that host over TLS. The
 * storage and the database session of one database host share a connection; each worker thread
 * opens its own. A session that broke is dropped so the next call reconnects.
 *
 * A RemoteTarget is plain data (it travels to worker threads inside a StorageSpec) and holds no
 * secret: only where to connect, which key file to use, and how the remote finds its config.
 * Over TLS the server reads its own config (the stanza's section named in `open`): `cmd` and
 * `config` apply to SSH only.
 */
import { logDetail } from "../common/log.ts";
import { ProtocolClient, type OpenReply } from "./client.ts";
import type { Transport } from "./transport.ts";
import type { SshTarget } from "./ssh.ts";
import type { TlsTarget } from "./tls.ts";

export interface RemoteTarget {
  /** Exactly one of the two: how the remote is reached. */
  ssh?: SshTarget;
  tls?: TlsTarget;
  /** Which side the remote serves and which of our indexes it stands for (repoN / pgN). */
  role: "repo" | "pg";
  index: number;
  stanza?: string;
  /** The command on whose behalf the remote runs (PostgreSQL application_name). */
  command: string;
  /** The pgbunker executable on the remote host. */
  cmd: string;
  /** Where the remote reads its own configuration (only what was set explicitly here). */
  config: { config?: string; configIncludePath?: string; configPath?: string };
  /** protocol-timeout (seconds). */
  timeout: number;
  /** compress-level-network > 0: what would cross uncompressed is compressed for the trip. */
  networkCompress?: boolean;
  /** pgN-* values the remote uses when its own configuration does not set them. */
  fallback: Record<string, string | number>;
}

/** A session lives until the thread ends (or closeRemoteSessions): users do not close it. */
export interface RemoteSession {
  client: ProtocolClient;
  open: OpenReply;
}

const sessions = new Map<string, Promise<RemoteSession>>();

function keyOf(t: RemoteTarget): string {
  return JSON.stringify([t.ssh, t.tls, t.cmd, t.config, t.role, t.index, t.stanza]);
}

/** The remote's command line: options that locate its config and quiet its console, then `remote`. */
export function remoteArgv(t: RemoteTarget): string[] {
  const argv = [t.cmd];
  if (t.config.config) argv.push(`--config=${t.config.config}`);
  if (t.config.configIncludePath) argv.push(`--config-include-path=${t.config.configIncludePath}`);
  if (t.config.configPath) argv.push(`--config-path=${t.config.configPath}`);
  if (t.stanza) argv.push(`--stanza=${t.stanza}`);
  argv.push(`--remote-type=${t.role}`, "--log-level-console=off", "--log-level-stderr=error", "remote");
  return argv;
}

/** The transport to the remote, and the hint for a peer that turns out not to be a pgbunker remote. */
async function reach(t: RemoteTarget): Promise<{ transport: Transport; host: string; commandHint: string }> {
  if (t.tls) {
    const { tlsConnect } = await import("./tls.ts");
    return { transport: await tlsConnect(t.tls), host: t.tls.host, commandHint: `check that port ${t.tls.port} on ${t.tls.host} is a 'pgbunker server' of this version (${t.tls.option}-port).` };
  }
  const ssh = t.ssh!;
  const { sshExec } = await import("./ssh.ts");
  return { transport: await sshExec(ssh, remoteArgv(t)), host: ssh.host, commandHint: `check ${ssh.option}-cmd: it must name the pgbunker executable on ${ssh.host} (now '${t.cmd}').` };
}

async function connect(t: RemoteTarget): Promise<RemoteSession> {
  const started = performance.now();
  const { transport, host, commandHint } = await reach(t);
  const peer = `${t.role === "repo" ? "repository" : "database"} host '${host}'`;
  const client = await ProtocolClient.connect(transport, { peer, timeout: t.timeout, commandHint });
  // role and stanza tell a TLS server what to serve (an SSH remote has them on its command line).
  const open = await client.request<OpenReply>("open", { index: t.index, command: t.command, fallback: t.fallback, timeout: t.timeout, role: t.role, stanza: t.stanza }).catch(async (e) => {
    await client.close();
    throw e;
  });
  logDetail(`connected to the pgbunker remote on ${peer} in ${Math.round(performance.now() - started)}ms (${t.role} path '${open.base}')`);
  return { client, open };
}

/** A live session for this target (reused within the thread, re-established when it broke). */
export async function remoteSession(t: RemoteTarget): Promise<RemoteSession> {
  const key = keyOf(t);
  const cached = sessions.get(key);
  if (cached) {
    const s = await cached.catch(() => undefined);
    if (s?.client.alive) return s;
    sessions.delete(key);
  }
  const p = connect(t);
  sessions.set(key, p);
  p.then(
    (s) => s.client.onClose(() => sessions.get(key) === p && sessions.delete(key)),
    () => sessions.get(key) === p && sessions.delete(key),
  );
  return p;
}

/** End every session of this thread cleanly (the remotes exit). */
export async function closeRemoteSessions(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  for (const p of all) {
    const s = await p.catch(() => undefined);
    await s?.client.close();
  }
}
