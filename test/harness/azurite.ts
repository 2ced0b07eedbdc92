/**
 * A real Azure Blob engine for tests: Azurite (npm `azurite`, Microsoft's Azure Storage server)
 * on 127.0.0.1 over HTTPS with a certificate signed by a CA made here, in memory, with one
 * account of our own (AZURITE_ACCOUNTS). Azurite serves path-style URIs
 * (https://127.0.0.1:PORT/account/container/blob): repoN-azure-uri-style=path.
 *
 * Start once per test file (about 2 s): `const az = await Azurite.start()` in beforeAll,
 * `await az.stop()` in afterAll. It runs under node (Azurite is a Node program).
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { stopChild } from "./child.ts";
import { AzureHttp, type AzureSettings } from "../../src/storage/azure/client.ts";
import { freePort, ROOT, tempDir } from "./cluster.ts";
import { makeCertificate } from "./test-certificate.ts";

export const AZURE_ACCOUNT = "bunkeracct1";
/** The account's Shared Key (base64 of 64 bytes, as Azure's are). */
export const AZURE_KEY = Buffer.from("pgbunker test key, 64 bytes long, for Azurite only. 0123456789ab").toString("base64");

/**
 * Where Azurite's blob server is: the project's node_modules (a devDependency), or
 * AZURITE_PACKAGE_DIR (a directory with node_modules/azurite) when the shared tree lacks it.
 */
export function azuriteMain(): string | undefined {
  const dirs = [ROOT, process.env.AZURITE_PACKAGE_DIR].filter((d): d is string => !!d);
  return dirs.map((d) => join(d, "node_modules/azurite/dist/src/blob/main.js")).find(existsSync);
}

export class Azurite {
  readonly dir: string;
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly account = AZURE_ACCOUNT;
  readonly key = AZURE_KEY;
  readonly caFile: string;
  readonly tlsKeyFile: string;
  readonly tlsCertFile: string;
  readonly upstreamTls = true;
  #proc: ReturnType<typeof Bun.spawn> | undefined;
  #log = "";

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    // The account host name too, for host-style URIs (ACCOUNT.localhost, connected to 127.0.0.1).
    const cert = makeCertificate(dir, "azurite", [`${AZURE_ACCOUNT}.localhost`]);
    this.caFile = cert.caFile;
    this.tlsKeyFile = cert.keyFile;
    this.tlsCertFile = cert.certFile;
  }

  /** The fault proxy relays to Azurite's own (TLS) port. */
  get upstreamPort(): number {
    return this.port;
  }

  static async start(): Promise<Azurite> {
    const main = azuriteMain();
    if (!main) throw new Error("Azurite is not installed: run `npm ci` (azurite is a devDependency), or set AZURITE_PACKAGE_DIR");
    const a = new Azurite(tempDir("pgbunker-azurite-"), await freePort());
    try {
      await a.#start(main);
      return a;
    } catch (e) {
      await a.stop();
      throw e;
    }
  }

  async #start(main: string): Promise<void> {
    this.#proc = Bun.spawn(
      ["node", main, "--blobHost", this.host, "--blobPort", String(this.port), "--cert", this.tlsCertFile, "--key", this.tlsKeyFile, "--inMemoryPersistence", "--extentMemoryLimit", "1024", "--disableTelemetry", "--loose", "--silent"],
      { cwd: this.dir, env: { ...process.env, AZURITE_ACCOUNTS: `${this.account}:${this.key}` }, stdout: "pipe", stderr: "pipe" },
    );
    void this.#collect(this.#proc.stdout as ReadableStream<Uint8Array>);
    void this.#collect(this.#proc.stderr as ReadableStream<Uint8Array>);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (this.#proc.exitCode !== null) throw new Error(`azurite exited ${this.#proc.exitCode}:\n${this.#log}`);
      try {
        const r = await fetch(`https://${this.host}:${this.port}/`, { tls: { rejectUnauthorized: false } } as RequestInit);
        await r.arrayBuffer();
        return;
      } catch {}
      if (Date.now() > deadline) throw new Error(`azurite did not answer on port ${this.port} within 60s:\n${this.#log}`);
      await Bun.sleep(100);
    }
  }

  async #collect(s: ReadableStream<Uint8Array>): Promise<void> {
    const d = new TextDecoder();
    for await (const c of s) this.#log = (this.#log + d.decode(c)).slice(-20_000);
  }

  /** What Azurite printed (access log lines; for failure messages). */
  log(): string {
    return this.#log;
  }

  settings(container: string): AzureSettings {
    return { account: this.account, container, endpoint: this.host, port: this.port, uriStyle: "path", key: this.key, keyType: "shared", verifyTls: true, caFile: this.caFile };
  }

  /** A client of a container, over TLS verified with the harness CA. */
  client(container: string): AzureHttp {
    return new AzureHttp(this.settings(container));
  }

  async createContainer(container: string): Promise<void> {
    await this.client(container).createContainer();
  }

  /** The repoN-* options that reach a container here (repoN-path is the caller's). */
  repoOptions(index: number, container: string): Record<string, string | number> {
    const r = `repo${index}`;
    return {
      [`${r}-type`]: "azure",
      [`${r}-azure-account`]: this.account,
      [`${r}-azure-container`]: container,
      [`${r}-azure-key`]: this.key,
      [`${r}-azure-endpoint`]: this.host,
      [`${r}-azure-uri-style`]: "path",
      [`${r}-storage-port`]: this.port,
      [`${r}-storage-ca-file`]: this.caFile,
    };
  }

  async stop(): Promise<void> {
    await stopChild(this.#proc, "SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
