/**
 * The SFTP driver over a real OpenSSH sshd (internal-sftp) on 127.0.0.1: the storage conformance
 * suite, what the driver says it can do (the OpenSSH extensions it found), and that a file is
 * never visible under its final name before it is complete.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { SftpDriver } from "../../src/storage/sftp/sftp.ts";
import { Storage } from "../../src/storage/storage.ts";
import type { SshTarget } from "../../src/protocol/ssh.ts";
import { storageConformance, testBytes } from "../conformance/storage.ts";
import { mkdirAsPostgres, tempDir } from "../harness/cluster.ts";
import { Sshd } from "../harness/sshd.ts";

let sshd: Sshd;
let dir: string;
const opened: Storage[] = [];

beforeAll(async () => {
  sshd = await Sshd.start();
  dir = tempDir("pgbunker-sftp-");
});

afterAll(async () => {
  for (const s of opened) await s.close();
  await sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function target(over: Partial<SshTarget> = {}): SshTarget {
  return {
    host: sshd.host, port: sshd.port, user: "postgres", keyFile: sshd.clientKey, knownHostsFiles: [sshd.knownHosts],
    keyCheck: "strict", connectTimeout: 10, option: "repo1-sftp-host", ...over,
  };
}

async function storageAt(sub: string): Promise<Storage> {
  const base = mkdirAsPostgres(join(dir, sub));
  const s = new Storage(await SftpDriver.open(target(), 30), base);
  opened.push(s);
  return s;
}

storageConformance("sftp over a real sshd", async () => {
  const storage = await storageAt("conformance");
  return { storage, cleanup: async () => {} };
});

describe("sftp driver", () => {
  test("features follow OpenSSH's extensions: fsync, hard links, no tree sync, no owners", async () => {
    const s = await storageAt("features");
    expect(s.features).toEqual({ link: true, pathSync: true, owner: false, hardLink: true, truncate: true, syncTree: false, move: true, path: true, attributes: true });
    await s.put("f", "x");
    expect((await s.info("f"))!).toMatchObject({ user: "postgres", group: "postgres" });
    // The files belong to the SSH user, made with the driver's modes.
    const st = statSync(join(dir, "features", "f"));
    expect(st.mode & 0o777).toBe(0o640);
  });

  test("a file being written is only under its temp name; abort leaves nothing", async () => {
    const s = await storageAt("atomic");
    const data = testBytes(3 * 1024 * 1024, 9);
    const w = await s.openWrite("deep/dir/file");
    await w.write(data.subarray(0, 1024 * 1024));
    expect(readdirSync(join(dir, "atomic", "deep", "dir"))).toEqual(["file.pgbunker.tmp"]);
    await w.write(data.subarray(1024 * 1024));
    await w.close();
    expect(readdirSync(join(dir, "atomic", "deep", "dir"))).toEqual(["file"]);
    expect(new Bun.CryptoHasher("sha1").update(readFileSync(join(dir, "atomic", "deep", "dir", "file"))).digest("hex"))
      .toBe(new Bun.CryptoHasher("sha1").update(data).digest("hex"));
    // Replacing keeps the old bytes readable until the new ones are complete.
    const w2 = await s.openWrite("deep/dir/file");
    await w2.write(testBytes(1000, 3));
    expect(readFileSync(join(dir, "atomic", "deep", "dir", "file")).byteLength).toBe(data.byteLength);
    await w2.abort();
    expect(readdirSync(join(dir, "atomic", "deep", "dir"))).toEqual(["file"]);
  });
});
