/**
 * SSH transport (npm `ssh2`): connect to a host as a user, check its host key against
 * known_hosts, authenticate with a key, run `pgbunker ... remote` there, and carry the protocol on
 * the session's stdin/stdout. The remote's stderr is kept for error messages.
 *
 * What an OpenSSH user expects holds: identities from ~/.ssh (id_ed25519, id_ecdsa, id_rsa) or
 * the ssh-agent, unless a key file is configured (then only that key, like IdentitiesOnly);
 * host keys checked against ~/.ssh/known_hosts (or the configured file) and
 * /etc/ssh/ssh_known_hosts; an unknown host is refused unless key checking is `accept-new`,
 * which records the key on first connection; a changed key is always refused.
 *
 * `sshConnect` is the connection alone (the SFTP repository driver opens its subsystem on it);
 * `sshExec` runs the remote on top. SFTP adds pgBackRest's other checks: `fingerprint` (the host
 * key's digest must equal a configured one) and `none` (no check: the caller warns).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Client, utils, type AnyAuthMethod, type CipherAlgorithm, type ClientChannel, type ConnectConfig, type ParsedKey, type ServerHostKeyAlgorithm } from "ssh2";
import { concatBytes } from "../common/bytes.ts";
import { err, PgbError } from "../common/error.ts";
import { logDebug, logWarn } from "../common/log.ts";
import { userHome } from "../common/user.ts";
import { checkHostKey, fingerprint, hostKeyDigest, hostKeyName, keyTypeOf, knownHostsLine, knownKeyTypes, parseKnownHosts, type KnownHostEntry } from "./known-hosts.ts";
import { LinkLostError, type Transport } from "./transport.ts";

export type HostKeyCheck = "strict" | "accept-new" | "fingerprint" | "none";
export type HostKeyHash = "md5" | "sha1" | "sha256";

/** Option names the hints point at. */
export interface SshOptionNames {
  port: string;
  user: string;
  keyFile: string;
  keyCheck: string;
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** Private key file (else ~/.ssh defaults and the agent). */
  keyFile?: string;
  /** Passphrase of keyFile (repoN-sftp-private-key-passphrase). */
  passphrase?: string;
  /** A public key file that must be keyFile's (repoN-sftp-public-key-file; ssh2 derives it from the private key). */
  publicKeyFile?: string;
  /** known_hosts file (else ~/.ssh/known_hosts); /etc/ssh/ssh_known_hosts is read too. */
  knownHosts?: string;
  /** When set, exactly these known_hosts files are read and accept-new records in the first (repoN-sftp-known-host). */
  knownHostsFiles?: readonly string[];
  keyCheck: HostKeyCheck;
  /** For keyCheck `fingerprint`: the hex digest the host key must have. */
  fingerprint?: { hash: HostKeyHash; value: string };
  /** Seconds to wait for the TCP connection and the SSH handshake. */
  connectTimeout: number;
  /** Option prefix for hints: `repo1-host`, `pg1-host`, `repo1-sftp-host`. */
  option: string;
  /** Option names for hints when they are not `${option}-port`, `-user`, `-key-file`, `-key-check`. */
  names?: SshOptionNames;
}

function optionNames(t: SshTarget): SshOptionNames {
  return t.names ?? { port: `${t.option}-port`, user: `${t.option}-user`, keyFile: `${t.option}-key-file`, keyCheck: `${t.option}-key-check` };
}

const SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts";
const DEFAULT_IDENTITIES = ["id_ed25519", "id_ecdsa", "id_rsa"];
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
/** AES-GCM first: ssh2 runs it through OpenSSL (AES-NI); the others are fallbacks for old servers. */
const CIPHERS: CipherAlgorithm[] = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"];

function sshDir(): string {
  return join(userHome() ?? "/", ".ssh");
}

function where(t: SshTarget): string {
  return `${t.user}@${t.host}:${t.port}`;
}

interface Identity {
  file: string;
  key: ReturnType<typeof utils.parseKey>;
}

/** The keys to offer: the configured one (which must work), or the usable defaults. */
function identities(t: SshTarget): Identity[] {
  if (t.keyFile) return [{ file: t.keyFile, key: configuredKey(t, t.keyFile) }];
  const out: Identity[] = [];
  for (const name of DEFAULT_IDENTITIES) {
    const file = join(sshDir(), name);
    if (!existsSync(file)) continue;
    try {
      const key = utils.parseKey(readFileSync(file));
      if (key instanceof Error) logDebug(`ssh: skipping ${file}: ${key.message}`);
      else out.push({ file, key });
    } catch (e) {
      logDebug(`ssh: skipping ${file}: ${(e as Error).message}`);
    }
  }
  return out;
}

function readKeyFile(t: SshTarget, file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw err("FileOpenError", `unable to read SSH key file '${file}' (${option}): ${(e as Error).message}`, "the key must be readable by the user running pgbunker.");
  }
}

/** The key file an option names, decrypted with the passphrase if any, and matching the public key file if one is named. */
function configuredKey(t: SshTarget, file: string): Identity["key"] {
  const keyOption = optionNames(t).keyFile;
  const key = utils.parseKey(readKeyFile(t, file, keyOption), t.passphrase);
  if (key instanceof Error || Array.isArray(key)) {
    const why = key instanceof Error ? key.message : "it holds more than one key";
    throw err(
      "HostConnectError",
      `unable to use SSH key file '${file}' (${keyOption}): ${why}`,
      t.passphrase !== undefined
        ? "check that the passphrase belongs to this key."
        : "pgbunker runs unattended and cannot ask for a passphrase: use a key without one for this service user, or an ssh-agent (SFTP: set the key's passphrase option).",
    );
  }
  if (t.publicKeyFile) {
    const pub = utils.parseKey(readKeyFile(t, t.publicKeyFile, "public key file"));
    if (pub instanceof Error || Array.isArray(pub) || !pub.getPublicSSH().equals(key.getPublicSSH()))
      throw err("HostConnectError", `public key file '${t.publicKeyFile}' is not the public key of '${file}'`, "name the .pub file made with the private key, or leave the public key file unset (it is derived from the private key).");
  }
  return key;
}

const DEFAULT_KNOWN_HOSTS = () => [join(sshDir(), "known_hosts"), SYSTEM_KNOWN_HOSTS];

function loadKnownHosts(t: SshTarget): { entries: KnownHostEntry[]; files: readonly string[] } {
  const files = t.knownHostsFiles ?? (t.knownHosts ? [t.knownHosts, SYSTEM_KNOWN_HOSTS] : DEFAULT_KNOWN_HOSTS());
  const entries: KnownHostEntry[] = [];
  for (const file of files) {
    try {
      entries.push(...parseKnownHosts(readFileSync(file, "utf8"), file));
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") logWarn(`unable to read known hosts file '${file}': ${(e as Error).message}`);
    }
  }
  return { entries, files };
}

/** Prefer host key types we have an entry for, so a host listed with one key type can be checked. */
function hostKeyOrder(known: string[]): ServerHostKeyAlgorithm[] {
  const wanted = new Set<string>();
  for (const type of known) for (const alg of type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type]) wanted.add(alg);
  return [...HOST_KEY_ALGORITHMS.filter((a) => wanted.has(a)), ...HOST_KEY_ALGORITHMS.filter((a) => !wanted.has(a))];
}

/** Check the key the host presented; the error to report when it must be refused. */
function verifyHostKey(t: SshTarget, entries: KnownHostEntry[], files: readonly string[], key: Buffer): PgbError | undefined {
  const name = hostKeyName(t.host, t.port);
  const fp = `${keyTypeOf(key)} ${fingerprint(key)}`;
  if (t.keyCheck === "none") return undefined;
  if (t.keyCheck === "fingerprint") {
    const want = t.fingerprint;
    if (!want) return err("AssertError", `host key check 'fingerprint' for '${name}' has no fingerprint to compare`);
    const got = hostKeyDigest(key, want.hash);
    if (got === want.value.toLowerCase().replace(/:/g, "")) return undefined;
    return err(
      "HostConnectError",
      `host key verification failed: '${name}' presented ${fp}, whose ${want.hash} digest ${got} is not the configured fingerprint ${want.value}`,
      ["someone may be intercepting the connection, or the host has a new key.", `once you have verified the host's key, set the fingerprint to: awk '{print $2}' /etc/ssh/ssh_host_*_key.pub | base64 -d | ${want.hash}sum`],
    );
  }
  const check = checkHostKey(entries, t.host, t.port, key);
  switch (check.status) {
    case "known":
      return undefined;
    case "revoked":
      return err("HostConnectError", `host key of '${name}' (${fp}) is revoked in '${check.entry.file}' line ${check.entry.line}`, "the host presents a key marked @revoked: do not connect until it has a new key.");
    case "changed":
      return err(
        "HostConnectError",
        `host key verification failed: '${name}' presented ${fp}, which differs from the key in '${check.entry.file}' line ${check.entry.line}`,
        [
          "someone may be intercepting the connection, or the host was reinstalled with a new key.",
          `once you have verified the new key, remove the old one with: ssh-keygen -R '${name}' -f ${check.entry.file}`,
        ],
      );
  }
  const userFile = files[0]!;
  if (t.keyCheck !== "accept-new")
    return err(
      "HostConnectError",
      `host key verification failed: '${name}' (${fp}) is not in ${files.map((f) => `'${f}'`).join(" or ")}`,
      [
        `compare the fingerprint with 'ssh-keygen -lf' of the host's /etc/ssh/ssh_host_*_key.pub, then add the key as the user running pgbunker: ssh-keyscan -p ${t.port} ${t.host} >> ${userFile}`,
        `or set ${optionNames(t).keyCheck}=accept-new to record it on the first connection.`,
      ],
    );
  try {
    mkdirSync(dirname(userFile), { recursive: true, mode: 0o700 });
    appendFileSync(userFile, knownHostsLine(t.host, t.port, key), { mode: 0o600 });
  } catch (e) {
    return err("HostConnectError", `unable to record the host key of '${name}' in '${userFile}': ${(e as Error).message}`);
  }
  logWarn(`permanently added '${name}' (${fp}) to the list of known hosts in '${userFile}'`);
  return undefined;
}

/** Quote one word for the remote user's shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_\-+=/.,:@%]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Connect and authenticate. Failures are HostConnectError with what to do. `keepalive`: the
 * connection is declared lost when the server stays silent this many seconds (ssh keepalives).
 */
export async function sshConnect(t: SshTarget, opts: { keepalive?: number } = {}): Promise<Client> {
  const ids = identities(t);
  const agent = t.keyFile ? undefined : process.env.SSH_AUTH_SOCK;
  const { entries, files } = loadKnownHosts(t);
  let hostKeyError: PgbError | undefined;
  const hostVerifier = (key: Buffer): boolean => {
    hostKeyError = verifyHostKey(t, entries, files, key);
    return hostKeyError === undefined;
  };

  if (ids.length === 0 && !agent)
    throw err("HostConnectError", `no SSH key to authenticate to ${where(t)}: none of ${DEFAULT_IDENTITIES.map((n) => `~/.ssh/${n}`).join(", ")} is usable and no ssh-agent is running`, `create a key (ssh-keygen -t ed25519) and authorize it on ${t.host}, or set ${optionNames(t).keyFile}.`);

  const auth: AnyAuthMethod[] = [];
  if (agent) auth.push({ type: "agent", username: t.user, agent });
  for (const id of ids) auth.push({ type: "publickey", username: t.user, key: id.key as ParsedKey });

  const client = new Client();
  const config: ConnectConfig = {
    host: t.host,
    port: t.port,
    username: t.user,
    readyTimeout: t.connectTimeout * 1000,
    hostVerifier,
    authHandler: auth,
    algorithms: { cipher: CIPHERS, serverHostKey: hostKeyOrder(knownKeyTypes(entries, t.host, t.port)) },
  };
  if (opts.keepalive) {
    config.keepaliveInterval = Math.max(1000, Math.round((opts.keepalive * 1000) / KEEPALIVE_COUNT));
    config.keepaliveCountMax = KEEPALIVE_COUNT;
  }

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    client.once("ready", () => {
      settled = true;
      resolve();
    });
    // ssh2 may emit several errors for one failure (timeout, then connection lost): only the first
    // decides; the listener stays so a later one is never an unhandled 'error' event.
    client.on("error", (e: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(connectError(t, e, hostKeyError, ids, agent));
    });
    client.connect(config);
  });
  return client;
}

/** Unanswered keepalives before a silent server counts as gone. */
const KEEPALIVE_COUNT = 3;

/** Connect, authenticate and start `argv` on the host; the returned transport carries its stdin and stdout. */
export async function sshExec(t: SshTarget, argv: string[]): Promise<Transport> {
  return execTransport(await sshConnect(t), t, argv);
}

function connectError(t: SshTarget, e: Error & { level?: string; code?: string }, hostKeyError: PgbError | undefined, ids: Identity[], agent: string | undefined): PgbError {
  if (hostKeyError) return hostKeyError;
  const names = optionNames(t);
  if (e.level === "client-authentication")
    return err(
      "HostConnectError",
      `unable to authenticate to ${where(t)}: the server refused ${[agent ? "the ssh-agent's keys" : "", ...ids.map((i) => `key '${i.file}'`)].filter(Boolean).join(" and ")}`,
      `append the public key (${ids[0] ? `${ids[0].file}.pub` : "~/.ssh/id_ed25519.pub"}) to ~${t.user}/.ssh/authorized_keys on ${t.host}, or set ${names.keyFile} and ${names.user}.`,
    );
  const reason = e.code ? `${e.code}: ${e.message}` : e.message;
  return err("HostConnectError", `unable to connect to ${where(t)}: ${reason}`, `check that ${t.host} is reachable and runs sshd on port ${t.port} (${t.option} and ${names.port}).`);
}

/** Run the command and wrap its session as a Transport. */
function execTransport(client: Client, t: SshTarget, argv: string[]): Promise<Transport> {
  const command = argv.map(shellQuote).join(" ");
  logDebug(`ssh ${where(t)}: ${command}`);
  return new Promise<Transport>((resolve, reject) => {
    client.exec(command, (e, channel: ClientChannel) => {
      if (e) {
        client.end();
        return reject(err("HostConnectError", `unable to run the pgbunker remote on ${where(t)}: ${e.message}`));
      }
      resolve(new SshTransport(client, channel, `${t.host}:${t.port}`));
    });
  });
}

class SshTransport implements Transport {
  readonly #client: Client;
  readonly #channel: ClientChannel;
  #stderr = "";
  #exit: string | undefined;
  #closed = false;

  /** `host:port`, for messages about the link. */
  readonly #where: string;

  constructor(client: Client, channel: ClientChannel, where: string) {
    this.#client = client;
    this.#channel = channel;
    this.#where = where;
    channel.stderr.on("data", (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-4000);
    });
    channel.on("exit", (code: number | null, signal?: string) => {
      this.#exit = signal ? `terminated by signal ${signal}` : `exit code ${code}`;
    });
  }

  write(parts: readonly Uint8Array[]): void {
    // ssh2 may hold on to what it is given until the window opens: give it a copy.
    if (!this.#closed) this.#channel.write(concatBytes(parts));
  }

  start(onData: (chunk: Uint8Array) => void, onClose: (error?: Error) => void): void {
    let reported = false;
    const report = (e?: Error) => {
      if (reported) return;
      reported = true;
      this.#closed = true;
      this.#client.end();
      onClose(e);
    };
    this.#channel.on("data", (d: Buffer) => onData(d));
    // A channel that closes with an exit status is the remote command ending; the connection
    // failing, or the channel closing with no exit status (sshd never saw the command end), is the
    // link going away under it.
    const lost = (cause: string) => new LinkLostError("SSH", this.#where, cause);
    this.#channel.on("close", () => {
      if (this.#exit === undefined) report(this.#closed ? undefined : lost("the SSH channel closed without an exit status"));
      else report(this.#exit !== "exit code 0" ? new Error(`remote ${this.#exit}`) : undefined);
    });
    this.#client.on("error", (e: Error & { code?: string }) => report(lost(e.message)));
    this.#client.on("close", () => report(lost("the SSH connection closed")));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.end();
    this.#client.end();
  }

  diagnostics(): string {
    const said = this.#stderr.trim();
    return [said, this.#exit && this.#exit !== "exit code 0" ? `(remote ${this.#exit})` : ""].filter(Boolean).join(" ");
  }
}
