/**
 * Certificates made with openssl for TLS tests, and `pgbunker server` processes run as postgres.
 *
 * Certs: a CA, a server certificate for 127.0.0.1 and localhost, client certificates with the CN
 * a test asks for (signed by the CA, by another CA, or expired years ago), all in a temp dir
 * readable by postgres. TlsServer: `pgbunker --config=F server` started in the background, ready
 * once its log says it listens, stopped (or killed) by pid; the test's afterAll stops it, and a
 * server left running by a failed test is killed when the test process exits.
 */
import { appendFileSync, chownSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stopChild } from "./child.ts";
import { PG_GID, PG_UID, spawnAsPostgres, tempDir } from "./cluster.ts";
import { BINARY } from "./pgbunker.ts";

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

export interface CertPair {
  cert: string;
  key: string;
}

export class Certs {
  readonly dir: string;
  readonly ca: string;
  readonly caKey: string;
  /** A second CA that signed nothing the server trusts. */
  readonly otherCa: string;
  readonly server: CertPair;
  #serial = 1;

  private constructor(dir: string) {
    this.dir = dir;
    this.ca = join(dir, "ca.crt");
    this.caKey = join(dir, "ca.key");
    this.otherCa = join(dir, "other-ca.crt");
    this.server = { cert: join(dir, "server.crt"), key: join(dir, "server.key") };
  }

  static make(): Certs {
    const c = new Certs(tempDir("pgbunker-certs-"));
    for (const name of ["ca", "other-ca"])
      openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "30", "-subj", `/CN=pgbunker test ${name}`], c.dir);
    c.#sign("server", "localhost", { san: "DNS:localhost,IP:127.0.0.1" });
    c.#chown();
    return c;
  }

  /** A client certificate with this CN: signed by our CA, by the other CA, or expired. */
  client(cn: string, opts: { by?: "ca" | "other-ca"; expired?: boolean } = {}): CertPair {
    const name = `client-${cn}-${opts.by ?? "ca"}${opts.expired ? "-expired" : ""}`;
    const pair = this.#sign(name, cn, opts);
    this.#chown();
    return pair;
  }

  #sign(name: string, cn: string, opts: { by?: "ca" | "other-ca"; expired?: boolean; san?: string }): CertPair {
    const by = opts.by ?? "ca";
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`], this.dir);
    const ext = `${name}.ext`;
    writeFileSync(join(this.dir, ext), opts.san ? `subjectAltName=${opts.san}\n` : "basicConstraints=CA:FALSE\n");
    if (opts.expired) {
      // `openssl ca` is the 3.0 way to set validity dates in the past (x509 -days cannot).
      const db = join(this.dir, `${name}.db`);
      writeFileSync(db, "");
      const cnf = join(this.dir, `${name}.cnf`);
      writeFileSync(cnf, [
        "[ca]", "default_ca=test", "[test]", `database=${db}`, `new_certs_dir=${this.dir}`, `certificate=${by}.crt`, `private_key=${by}.key`,
        `serial=${join(this.dir, `${name}.serial`)}`, "default_md=sha256", "policy=any", "[any]", "commonName=supplied", "",
      ].join("\n"));
      writeFileSync(join(this.dir, `${name}.serial`), `${(this.#serial++).toString(16).padStart(4, "0")}\n`);
      openssl(["ca", "-batch", "-config", cnf, "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-in", `${name}.csr`, "-out", `${name}.crt`, "-notext", "-extfile", ext], this.dir);
    } else {
      openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${by}.crt`, "-CAkey", `${by}.key`, "-set_serial", String(1000 + this.#serial++), "-days", "30", "-out", `${name}.crt`, "-extfile", ext], this.dir);
    }
    return { cert: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`) };
  }

  #chown(): void {
    const ls = Bun.spawnSync(["find", this.dir, "-type", "f"]).stdout.toString().trim().split("\n");
    for (const f of ls) chownSync(f, PG_UID, PG_GID);
  }

  /** Client options (repo1-host-*, pg1-host-*) to reach a server on this port with this client pair. */
  hostOptions(kind: `repo${number}` | `pg${number}`, port: number, client: CertPair): Record<string, string | number> {
    return {
      [`${kind}-host`]: "127.0.0.1",
      [`${kind}-host-type`]: "tls",
      [`${kind}-host-port`]: port,
      [`${kind}-host-cert-file`]: client.cert,
      [`${kind}-host-key-file`]: client.key,
      [`${kind}-host-ca-file`]: this.ca,
    };
  }

  /** [global] options of a server on 127.0.0.1:port allowing these CN=STANZA entries (one each). */
  serverOptions(port: number, auth: string): Record<string, string | number> {
    return {
      "tls-server-address": "127.0.0.1",
      "tls-server-port": port,
      "tls-server-cert-file": this.server.cert,
      "tls-server-key-file": this.server.key,
      "tls-server-ca-file": this.ca,
      "tls-server-auth": auth,
    };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const running = new Set<ReturnType<typeof spawnAsPostgres>>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** `pgbunker server` as postgres, its output in `logFile`. */
export class TlsServer {
  readonly config: string;
  readonly logFile: string;
  readonly port: number;
  #proc: ReturnType<typeof spawnAsPostgres> | undefined;
  #output = "";

  private constructor(config: string, port: number, logFile: string) {
    this.config = config;
    this.port = port;
    this.logFile = logFile;
  }

  /** Start and wait until it listens (its console log says so) or fail with what it printed. */
  static async start(config: string, port: number, logFile: string): Promise<TlsServer> {
    const s = new TlsServer(config, port, logFile);
    await s.restart();
    return s;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Everything the server printed so far (its console at info). */
  output(): string {
    return this.#output;
  }

  async restart(): Promise<void> {
    const p = spawnAsPostgres([BINARY, `--config=${this.config}`, "--log-level-console=info", "server"], { output: "pipe" });
    this.#proc = p;
    running.add(p);
    void p.exited.then(() => running.delete(p));
    let ready!: () => void;
    const listening = new Promise<void>((r) => (ready = r));
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const dec = new TextDecoder();
      for await (const chunk of stream) {
        const text = dec.decode(chunk, { stream: true });
        this.#output += text;
        appendFileSync(this.logFile, text);
        if (this.#output.includes(`listening for pgbunker clients over TLS on 127.0.0.1:${this.port}`)) ready();
      }
    };
    void pump(p.stdout as ReadableStream<Uint8Array>);
    void pump(p.stderr as ReadableStream<Uint8Array>);
    const exited = p.exited.then((code) => {
      throw new Error(`pgbunker server exited ${code} before listening:\n${this.#output}`);
    });
    const timeout = Bun.sleep(30_000).then(() => {
      throw new Error(`pgbunker server did not listen within 30s:\n${this.#output}`);
    });
    await Promise.race([listening, exited, timeout]);
  }

  signal(sig: "SIGHUP" | "SIGTERM" | "SIGKILL"): void {
    this.#proc?.kill(sig);
  }

  /** Wait for the process to exit; its exit code. */
  async exited(): Promise<number> {
    return (await this.#proc?.exited) ?? 0;
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    this.#proc = undefined;
    await stopChild(p, "SIGKILL");
  }
}
