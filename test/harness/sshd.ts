/**
 * A private OpenSSH sshd on 127.0.0.1 for tests: its own config, port, host key and
 * authorized_keys in a temp dir, run in the foreground (`sshd -D -f cfg`) as root and stopped by
 * pid. The system sshd and its configuration are never touched.
 *
 * The login user is `postgres` (pgbunker's commands run as postgres in tests); its client key is
 * made by the harness and authorized only for this sshd. `knownHosts` holds the host key as
 * OpenSSH writes it (`[127.0.0.1]:PORT ssh-ed25519 ...`).
 *
 * It also serves SFTP (`Subsystem sftp internal-sftp`) for SFTP repositories. With
 * `legacyClients`, a client as old as pgBackRest 2.59.1's libssh2 (Debian 1.10) can log in too:
 * that libssh2 signs user authentication with `ssh-rsa` only and cannot use an ed25519 host key,
 * so the sshd gets an ecdsa host key as well, accepts ssh-rsa signatures, and authorizes an RSA
 * client key (`rsaKey`). pgbunker still negotiates ed25519 and modern signatures.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stopChild } from "./child.ts";
import { freePort, PG_GID, PG_UID, tempDir } from "./cluster.ts";

export interface SshdOptions {
  /** Extra sshd_config lines (e.g. `MaxStartups 1`). */
  config?: string[];
  /** Also let pgBackRest 2.59.1's libssh2 log in (see above). */
  legacyClients?: boolean;
}

function keygen(file: string, comment: string, type: "ed25519" | "ecdsa" | "rsa" = "ed25519"): void {
  const r = Bun.spawnSync(["ssh-keygen", "-q", "-t", type, ...(type === "rsa" ? ["-b", "3072", "-m", "PEM"] : []), "-N", "", "-C", comment, "-f", file]);
  if (r.exitCode !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.toString()}`);
}

function chownPg(path: string, mode: number): void {
  chownSync(path, PG_UID, PG_GID);
  chmodSync(path, mode);
}

export class Sshd {
  readonly dir: string;
  readonly port: number;
  readonly host = "127.0.0.1";
  /** Private key of the postgres user, authorized on this sshd. */
  readonly clientKey: string;
  /** A second key that is NOT authorized (refused-key tests). */
  readonly otherKey: string;
  /** known_hosts with this sshd's host key. */
  readonly knownHosts: string;
  readonly hostKey: string;
  /** ecdsa host key (legacyClients). */
  readonly hostKeyEcdsa: string;
  /** RSA client key of the postgres user, authorized (legacyClients). */
  readonly rsaKey: string;
  readonly logFile: string;
  #proc: ReturnType<typeof Bun.spawn> | undefined;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    this.clientKey = join(dir, "id_ed25519");
    this.otherKey = join(dir, "id_other");
    this.knownHosts = join(dir, "known_hosts");
    this.hostKey = join(dir, "ssh_host_ed25519_key");
    this.hostKeyEcdsa = join(dir, "ssh_host_ecdsa_key");
    this.rsaKey = join(dir, "id_rsa");
    this.logFile = join(dir, "sshd.log");
  }

  static async start(opts: SshdOptions = {}): Promise<Sshd> {
    const s = new Sshd(tempDir("pgbunker-sshd-"), await freePort());
    const legacy = opts.legacyClients ?? false;
    keygen(s.hostKey, "pgbunker-test-host");
    if (legacy) keygen(s.hostKeyEcdsa, "pgbunker-test-host", "ecdsa");
    const clients: [string, "ed25519" | "rsa"][] = [[s.clientKey, "ed25519"], [s.otherKey, "ed25519"]];
    if (legacy) clients.push([s.rsaKey, "rsa"]);
    for (const [key, type] of clients) {
      keygen(key, "pgbunker-test-client", type);
      chownPg(key, 0o600);
      chownPg(`${key}.pub`, 0o644);
    }
    const authorized = join(s.dir, "authorized_keys");
    writeFileSync(authorized, [s.clientKey, ...(legacy ? [s.rsaKey] : [])].map((k) => readFileSync(`${k}.pub`, "utf8")).join(""));
    chownPg(authorized, 0o644);
    const hostKeys = [s.hostKey, ...(legacy ? [s.hostKeyEcdsa] : [])];
    writeFileSync(s.knownHosts, hostKeys.map((k) => `[${s.host}]:${s.port} ${s.hostPublicKey(k)}\n`).join(""));
    chownPg(s.knownHosts, 0o644);

    const cfg = join(s.dir, "sshd_config");
    writeFileSync(cfg, [
      `Port ${s.port}`,
      `ListenAddress ${s.host}`,
      ...hostKeys.map((k) => `HostKey ${k}`),
      `PidFile ${join(s.dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${authorized}`,
      "StrictModes no",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM yes",
      "PermitRootLogin no",
      "AllowUsers postgres",
      "X11Forwarding no",
      "AllowTcpForwarding no",
      "PrintMotd no",
      "LogLevel VERBOSE",
      "Subsystem sftp internal-sftp",
      ...(legacy ? ["PubkeyAcceptedAlgorithms +ssh-rsa"] : []),
      ...(opts.config ?? []),
      "",
    ].join("\n"));
    // sshd needs its privilege separation directory (the Debian package creates it at boot).
    if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });

    await s.#run();
    return s;
  }

  /** Start sshd on this instance's config and port; ready when the port accepts connections. */
  async #run(): Promise<void> {
    const log = Bun.file(this.logFile);
    const proc = Bun.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", join(this.dir, "sshd_config"), "-p", String(this.port)], { stdout: log, stderr: log, stdin: "ignore" });
    this.#proc = proc;
    // Ready when the port accepts connections (or the process died: show its log).
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`sshd exited ${proc.exitCode}:\n${this.log()}`);
      if (await this.#accepts()) break;
      if (Date.now() > deadline) throw new Error(`sshd did not start on port ${this.port}:\n${this.log()}`);
      await Bun.sleep(50);
    }
  }

  /**
   * SIGKILL sshd and every session process it started (found by parent pid in /proc), as a
   * crashed or rebooted server would go: clients see their connections drop.
   */
  async kill(): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null) return;
    const children = new Map<number, number[]>();
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
      } catch {}
    }
    const tree: number[] = [];
    const walk = (pid: number) => {
      tree.push(pid);
      for (const c of children.get(pid) ?? []) walk(c);
    };
    walk(p.pid);
    for (const pid of tree) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await p.exited;
  }

  /** Start sshd again after kill(): same port, host keys and users. */
  async restart(): Promise<void> {
    await this.#run();
  }

  /** `TYPE BASE64` of a host key's public half, as known_hosts lists it. */
  hostPublicKey(key = this.hostKey): string {
    return readFileSync(`${key}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
  }

  /** The hex digest of a host key, as repoN-sftp-host-fingerprint is written. */
  hostFingerprint(hash: "md5" | "sha1" | "sha256", key = this.hostKey): string {
    const blob = Buffer.from(this.hostPublicKey(key).split(" ")[1]!, "base64");
    return new Bun.CryptoHasher(hash).update(blob).digest("hex");
  }

  /** Options a config needs for an SFTP repository `repoN` on this sshd (strict host key check). */
  sftpOptions(repo: `repo${number}`, path: string, key = this.clientKey): Record<string, string | number> {
    return {
      [`${repo}-type`]: "sftp",
      [`${repo}-path`]: path,
      [`${repo}-sftp-host`]: this.host,
      [`${repo}-sftp-host-port`]: this.port,
      [`${repo}-sftp-host-user`]: "postgres",
      [`${repo}-sftp-private-key-file`]: key,
      [`${repo}-sftp-known-host`]: this.knownHosts,
      [`${repo}-sftp-host-key-hash-type`]: "sha256",
    };
  }

  async #accepts(): Promise<boolean> {
    try {
      const sock = await Bun.connect({ hostname: this.host, port: this.port, socket: { data() {} } });
      sock.end();
      return true;
    } catch {
      return false;
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "(no log)";
    }
  }

  /** Options a pgbunker config needs to reach this sshd as `repo1-host` or `pg1-host`. */
  hostOptions(kind: `repo${number}` | `pg${number}`, cmd: string, remoteConfig: string): Record<string, string | number> {
    return {
      [`${kind}-host`]: this.host,
      [`${kind}-host-port`]: this.port,
      [`${kind}-host-user`]: "postgres",
      [`${kind}-host-cmd`]: cmd,
      [`${kind}-host-config`]: remoteConfig,
      [`${kind}-host-key-file`]: this.clientKey,
      [`${kind}-host-known-hosts`]: this.knownHosts,
    };
  }

  /** Also trust this sshd's host keys on another port (a TcpProxy in front of it). */
  trustPort(port: number): void {
    const lines = readFileSync(this.knownHosts, "utf8").split("\n").filter((l) => l.startsWith(`[${this.host}]:${this.port} `));
    const more = lines.map((l) => `${l.replace(/^\[[^\]]+\]:\d+/, `[${this.host}]:${port}`)}\n`).join("");
    writeFileSync(this.knownHosts, `${readFileSync(this.knownHosts, "utf8")}${more}`);
  }

  /** Kill sshd and every session it started (its process group), then remove the temp dir. */
  async stop(): Promise<void> {
    const p = this.#proc;
    this.#proc = undefined;
    await stopChild(p, "SIGTERM");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP relay in front of sshd, so a test can break the network under a running command: `cut()`
 * resets every connection (a dropped link), `freeze()` stops forwarding without closing (a
 * silent peer). Runs in the test process: commands must be spawned asynchronously meanwhile.
 */
export class TcpProxy {
  readonly port: number;
  /** Bytes relayed from the server to the clients so far. */
  downstream = 0;
  #frozen = false;
  readonly #server: Bun.TCPSocketListener<Pair>;
  readonly #pairs: Set<Pair>;

  private constructor(server: Bun.TCPSocketListener<Pair>, pairs: Set<Pair>) {
    this.#server = server;
    this.#pairs = pairs;
    this.port = server.port;
  }

  static start(targetPort: number, host = "127.0.0.1"): TcpProxy {
    const pairs = new Set<Pair>();
    let proxy: TcpProxy | undefined;
    const server = Bun.listen<Pair>({
      hostname: host,
      port: 0,
      socket: {
        open(client) {
          const pair: Pair = { client: new Pipe(client), upstream: undefined };
          client.data = pair;
          pairs.add(pair);
          void Bun.connect<Pair>({
            hostname: host,
            port: targetPort,
            data: pair,
            socket: {
              open(up) {
                pair.upstream = new Pipe(up);
                pair.upstream.flush();
              },
              data(_up, chunk) {
                if (proxy!.#frozen) return;
                proxy!.downstream += chunk.byteLength;
                pair.client.send(chunk);
              },
              drain() {
                pair.upstream?.flush();
              },
              close() {
                pair.client.socket.end();
              },
              error() {
                pair.client.socket.end();
              },
            },
          }).catch(() => client.end());
        },
        data(client, chunk) {
          if (proxy!.#frozen) return;
          const pair = client.data;
          if (pair.upstream) pair.upstream.send(chunk);
          else (pair.early ??= []).push(new Uint8Array(chunk));
        },
        drain(client) {
          client.data.client.flush();
        },
        close(client) {
          client.data.upstream?.socket.end();
          pairs.delete(client.data);
        },
      },
    });
    proxy = new TcpProxy(server, pairs);
    return proxy;
  }

  /** Drop every connection now (both ends see the link go away). */
  cut(): void {
    for (const p of this.#pairs) {
      p.client.socket.terminate();
      p.upstream?.socket.terminate();
    }
    this.#pairs.clear();
  }

  /** Stop relaying in both directions, keeping the connections open. */
  freeze(): void {
    this.#frozen = true;
  }

  stop(): void {
    this.cut();
    this.#server.stop(true);
  }
}

interface Pair {
  client: Pipe;
  upstream: Pipe | undefined;
  /** Client bytes that arrived before the upstream connection opened. */
  early?: Uint8Array[];
}

/** One direction of the relay: Bun sockets write what they can; the rest waits for drain. */
class Pipe {
  readonly socket: Bun.Socket<Pair>;
  #queue: Uint8Array[] = [];

  constructor(socket: Bun.Socket<Pair>) {
    this.socket = socket;
  }

  send(chunk: Uint8Array): void {
    this.#queue.push(new Uint8Array(chunk));
    this.flush();
  }

  flush(): void {
    const early = this.socket.data?.early;
    if (early && this.socket.data.upstream === this) {
      this.#queue.unshift(...early);
      this.socket.data.early = undefined;
    }
    while (this.#queue.length) {
      const head = this.#queue[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      if (n < head.byteLength) {
        this.#queue[0] = head.subarray(n);
        return;
      }
      this.#queue.shift();
    }
  }
}
