/**
 * A real S3 engine for tests: Ceph's RADOS Gateway on 127.0.0.1 with TLS, backed by one monitor
 * and one in-memory OSD (recipe: /work/shared/recipes/ceph-rgw-s3.md). Everything lives in one
 * temp dir: ceph.conf, the mon/osd data, logs, pid files, and a CA made here that signs the
 * gateway's certificate (so clients can verify TLS with `caFile`). Ports are free ones picked at
 * start; authentication between the Ceph daemons is off (one machine, nothing else talks to them).
 *
 * Start once per test file (about 12 s): `const rgw = await Rgw.start()` in beforeAll,
 * `await rgw.stop()` in afterAll. A start that fails stops what it started and removes the dir.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { S3Http } from "../../src/storage/s3/client.ts";
import { freePort, tempDir } from "./cluster.ts";
import { makeCertificate } from "./test-certificate.ts";

const ACCESS_KEY = "pgbunkertestkey";
const SECRET_KEY = "pgbunkertestsecret0123456789";
export const RGW_REGION = "us-east-1";

function run(cmd: string[], what: string): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${what} failed (exit ${r.exitCode}): ${cmd.join(" ")}\n${r.stdout.toString()}${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** Whether the Ceph packages are installed (scripts/setup.sh installs them). */
export function rgwAvailable(): boolean {
  return ["/usr/bin/ceph-mon", "/usr/bin/ceph-osd", "/usr/bin/radosgw", "/usr/bin/radosgw-admin", "/usr/bin/monmaptool"].every(existsSync);
}

export class Rgw {
  readonly dir: string;
  readonly host = "127.0.0.1";
  readonly httpsPort: number;
  readonly httpPort: number;
  readonly monPort: number;
  readonly accessKey = ACCESS_KEY;
  readonly secretKey = SECRET_KEY;
  readonly region = RGW_REGION;
  /** The CA that signed the gateway's certificate (PEM). */
  readonly caFile: string;
  /** For the fault proxy (fault-proxy.ts): the gateway's TLS identity and its plain HTTP port. */
  readonly tlsKeyFile: string;
  readonly tlsCertFile: string;
  readonly #conf: string;

  private constructor(dir: string, monPort: number, httpPort: number, httpsPort: number) {
    this.dir = dir;
    this.monPort = monPort;
    this.httpPort = httpPort;
    this.httpsPort = httpsPort;
    this.caFile = join(dir, "ca.pem");
    this.tlsKeyFile = join(dir, "rgw.key");
    this.tlsCertFile = join(dir, "rgw.crt");
    this.#conf = join(dir, "ceph.conf");
  }

  /**
   * Start a fresh gateway. Now and then (about one start in five here) the new OSD's first command
   * to the monitor is refused with "wrong fsid" and the OSD exits; a second start, with new dirs
   * and ports, has always worked. So a start is tried up to three times; any other failure is final.
   */
  static async start(opts: { memstoreBytes?: number } = {}): Promise<Rgw> {
    if (!rgwAvailable()) throw new Error("Ceph RGW is not installed: run scripts/setup.sh (ceph-mon ceph-osd ceph-mgr radosgw ceph-common)");
    for (let attempt = 1; ; attempt++) {
      const g = new Rgw(tempDir("pgbunker-rgw-"), await freePort(), await freePort(), await freePort());
      try {
        await g.#start(opts.memstoreBytes ?? 4 * 1024 ** 3);
        return g;
      } catch (e) {
        await g.stop();
        if (attempt >= 3 || !/wrong fsid/.test((e as Error).message)) throw e;
        console.warn(`rgw harness: OSD refused at start ("wrong fsid"), starting again (attempt ${attempt + 1} of 3)`);
      }
    }
  }

  async #start(memstoreBytes: number): Promise<void> {
    const d = this.dir;
    this.#makeCertificates();
    const fsid = crypto.randomUUID();
    const mon = `v1:127.0.0.1:${this.monPort}`;
    writeFileSync(this.#conf, [
      "[global]",
      `fsid = ${fsid}`,
      `mon host = ${mon}`,
      "mon initial members = a",
      "auth cluster required = none",
      "auth service required = none",
      "auth client required = none",
      "auth supported = none",
      "osd pool default size = 1",
      "osd pool default min size = 1",
      "osd pool default pg num = 8",
      "osd pool default pgp num = 8",
      "mon allow pool size one = true",
      "mon warn on pool no redundancy = false",
      "osd objectstore = memstore",
      `memstore device bytes = ${memstoreBytes}`,
      "osd crush chooseleaf type = 0",
      "ms bind ipv6 = false",
      `run dir = ${d}/run`,
      `log file = ${d}/log/$name.log`,
      `admin socket = ${d}/run/$name.asok`,
      `pid file = ${d}/run/$name.pid`,
      `osd data = ${d}/osd/$name`,
      `mon data = ${d}/mon/$name`,
      "",
      "[client.rgw]",
      // tcp_nodelay: without it a small response's body waits for the client's delayed ACK of its
      // headers (Nagle), 40 ms on every GET here.
      `rgw frontends = beast endpoint=127.0.0.1:${this.httpPort} ssl_endpoint=127.0.0.1:${this.httpsPort} ssl_certificate=${d}/rgw.pem tcp_nodelay=1`,
      "rgw dns name = localhost",
      "",
    ].join("\n"));
    for (const sub of ["run", "log", "osd/osd.0", "mon/mon.a"]) run(["mkdir", "-p", join(d, sub)], "mkdir");
    const as = ["--setuser", "root", "--setgroup", "root"];
    const c = ["-c", this.#conf];
    run(["monmaptool", "--create", "--add", "a", mon, "--fsid", fsid, join(d, "monmap")], "monmaptool");
    run(["ceph-mon", ...c, "--mkfs", "-i", "a", "--monmap", join(d, "monmap"), ...as], "ceph-mon --mkfs");
    run(["ceph-mon", ...c, "-i", "a", ...as], "ceph-mon");
    // The OSD registers with the uuid its --mkfs records, or the monitor refuses it ("wrong fsid").
    const osdUuid = crypto.randomUUID();
    run(["ceph", ...c, "--connect-timeout", "30", "osd", "create", osdUuid], "ceph osd create");
    run(["ceph-osd", ...c, "-i", "0", "--mkfs", "--osd-uuid", osdUuid, ...as], "ceph-osd --mkfs");
    run(["ceph-osd", ...c, "-i", "0", ...as], "ceph-osd");
    this.#startGateway();
    await this.#waitReady();
    run(["radosgw-admin", ...c, "user", "create", "--uid=test", "--display-name=test", `--access-key=${ACCESS_KEY}`, `--secret=${SECRET_KEY}`], "radosgw-admin user create");
  }

  #startGateway(): void {
    run(["radosgw", "-c", this.#conf, "-n", "client.rgw", "--setuser", "root", "--setgroup", "root"], "radosgw");
  }

  /** The gateway's pid (from its pid file). */
  #gatewayPid(): number {
    return Number(readFileSync(join(this.dir, "run", "client.rgw.pid"), "utf8").trim());
  }

  /**
   * Kill the gateway alone (SIGKILL, as a crash): its connections drop at once. The monitor and the
   * OSD keep running, so what the gateway had stored is still there when it starts again.
   */
  async killGateway(): Promise<void> {
    const pid = this.#gatewayPid();
    process.kill(pid, "SIGKILL");
    const deadline = Date.now() + 10_000;
    while (alive(pid)) {
      if (Date.now() > deadline) throw new Error(`radosgw (pid ${pid}) still alive 10s after SIGKILL`);
      await Bun.sleep(20);
    }
  }

  /** Start the gateway again after killGateway (same ports, same users and buckets). */
  async restartGateway(): Promise<void> {
    rmSync(join(this.dir, "run", "client.rgw.pid"), { force: true });
    this.#startGateway();
    await this.#waitReady();
  }

  /** A CA, and a certificate for 127.0.0.1/localhost it signs (the gateway's, key and cert in one file). */
  #makeCertificates(): void {
    makeCertificate(this.dir, "rgw");
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${this.httpPort}/`);
        await r.arrayBuffer();
        if (r.status < 500) return;
      } catch {}
      if (Date.now() > deadline) throw new Error(`radosgw did not answer on port ${this.httpPort} within 90s:\n${this.log()}`);
      await Bun.sleep(200);
    }
  }

  get upstreamPort(): number {
    return this.httpPort;
  }

  /** The tail of the gateway's log (for failure messages). */
  log(): string {
    try {
      return readFileSync(join(this.dir, "log", "client.rgw.log"), "utf8").split("\n").slice(-40).join("\n");
    } catch {
      return "(no rgw log)";
    }
  }

  /** A client of this gateway over TLS, verifying with the harness's CA. */
  client(bucket: string): S3Http {
    return new S3Http({
      bucket, endpoint: this.host, port: this.httpsPort, region: this.region, uriStyle: "path",
      credentials: { accessKeyId: this.accessKey, secretAccessKey: this.secretKey }, verifyTls: true, caFile: this.caFile,
    });
  }

  async createBucket(bucket: string): Promise<void> {
    await this.client(bucket).createBucket();
  }

  /** The repoN-* options that reach a bucket of this gateway (repoN-path is the caller's). */
  repoOptions(index: number, bucket: string): Record<string, string | number> {
    const r = `repo${index}`;
    return {
      [`${r}-type`]: "s3",
      [`${r}-s3-endpoint`]: this.host,
      [`${r}-storage-port`]: this.httpsPort,
      [`${r}-s3-bucket`]: bucket,
      [`${r}-s3-region`]: this.region,
      [`${r}-s3-key`]: this.accessKey,
      [`${r}-s3-key-secret`]: this.secretKey,
      [`${r}-s3-uri-style`]: "path",
      [`${r}-storage-ca-file`]: this.caFile,
    };
  }

  /** Pids of the gateway, OSD and monitor now (from their pid files). */
  pids(): number[] {
    const runDir = join(this.dir, "run");
    if (!existsSync(runDir)) return [];
    return readdirSync(runDir).filter((n) => n.endsWith(".pid")).map((f) => Number(readFileSync(join(runDir, f), "utf8").trim())).filter((pid) => pid > 0);
  }

  /** Kill the gateway, OSD and monitor by their pid files, then remove the temp dir. */
  async stop(): Promise<void> {
    const pids = this.pids();
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    // Wait for them to be gone before removing their files (memstore: nothing to flush).
    const deadline = Date.now() + 10_000;
    while (pids.some(alive) && Date.now() < deadline) await Bun.sleep(50);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
