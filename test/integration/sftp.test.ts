/**
 * An SFTP repository (repo1-type=sftp) on a real OpenSSH sshd with internal-sftp, end to end:
 * stanza-create, archive-push (PostgreSQL's archive_command) and archive-get, full and incremental
 * backups, restores compared by row counts and table checksums, info, verify, expire. One config
 * file serves pgbunker and pgBackRest 2.59.1, and each restores the other's backups.
 *
 * The sshd also admits pgBackRest 2.59.1's libssh2 (Harness: legacyClients): both tools log in
 * with the same RSA key; pgbunker still negotiates an ed25519 host key and rsa-sha2 signatures.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { listFiles, tempDir } from "../harness/cluster.ts";
import { backupLabel, PGBACKREST_259 } from "../harness/pgbunker.ts";
import { Sshd } from "../harness/sshd.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let sshd: Sshd;
let env: StanzaEnv;
let repo: string;
const pgbr = { bin: PGBACKREST_259 };

/** Every file under the repository as the server holds it, relative to it. */
const repoFiles = () => listFiles(repo);

const sha1 = (b: Uint8Array) => new Bun.CryptoHasher("sha1").update(b).digest("hex");

beforeAll(async () => {
  sshd = await Sshd.start({ legacyClients: true });
  repo = tempDir("pgbunker-sftp-repo-");
  env = await StanzaEnv.create({ global: { ...sshd.sftpOptions("repo1", repo, sshd.rsaKey), "process-max": 2 } });
  await env.cluster.query("create table t as select g, md5(g::text) as v from generate_series(1, 20000) g");
});

afterAll(async () => {
  await env?.destroy();
  await sshd?.stop();
  rmSync(repo, { recursive: true, force: true });
});

async function expectSameData(c: { scalar(q: string): Promise<string>; tableChecksum(t: string): Promise<string> }, table = "t"): Promise<void> {
  expect(await c.scalar(`select count(*) from ${table}`)).toBe(await env.cluster.scalar(`select count(*) from ${table}`));
  expect(await c.tableChecksum(table)).toBe(await env.cluster.tableChecksum(table));
}

describe("sftp repository", () => {
  let full: string;
  let incr: string;

  test("stanza-create and archive-push wrote the repository over SFTP: info files and WAL, no temp files", async () => {
    const seg = await env.archiveNow();
    const files = repoFiles();
    expect(files).toContain("archive/demo/archive.info");
    expect(files).toContain("backup/demo/backup.info");
    expect(files.some((f) => f.startsWith(`archive/demo/15-1/${seg.slice(0, 16)}/${seg}-`) && f.endsWith(".lz4"))).toBe(true);
    expect(files.filter((f) => f.includes(".tmp"))).toEqual([]);
    // sshd's log says the files came through the sftp subsystem.
    expect(sshd.log()).toContain("Starting session: subsystem 'sftp' for postgres");
  });

  test("full and incr backups, info and verify", async () => {
    full = backupLabel(await env.runOkAsync(["--type=full", "--log-level-console=info", "backup"]));
    await env.cluster.query("insert into t select g, md5(g::text) from generate_series(20001, 25000) g");
    incr = backupLabel(await env.runOkAsync(["--type=incr", "--log-level-console=info", "backup"]));
    expect(incr).toMatch(new RegExp(`^${full}_\\d{8}-\\d{6}I$`));
    expect(repoFiles()).toContain(`backup/demo/${incr}/backup.manifest`);
    expect(repoFiles().filter((f) => f.includes(".tmp"))).toEqual([]);

    const info = JSON.parse(await env.runOkAsync(["info", "--output=json"]))[0];
    expect(info.status.code).toBe(0);
    expect(info.backup.map((b: { label: string }) => b.label)).toEqual([full, incr]);
    // pgBackRest 2.59.1 reads the same repository over its own SFTP client.
    const theirs = JSON.parse(await env.backrestOkAsync(["info", "--output=json"], pgbr))[0];
    expect(theirs.backup.map((b: { label: string }) => b.label)).toEqual([full, incr]);

    // repo-ls lists the server's directory; repo-get prints a file from it.
    expect((await env.runOkAsync(["repo-ls", "backup/demo"])).split("\n")).toEqual(expect.arrayContaining([full, incr, "backup.info"]));
    expect(await env.runOkAsync(["repo-get", "backup/demo/backup.info"])).toBe(readFileSync(join(repo, "backup/demo/backup.info"), "utf8"));

    const v = await env.runAsync(["--output=text", "verify"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/status: ok/);
  });

  test("archive-get over SFTP gives the bytes pgBackRest 2.59.1 gets", async () => {
    const seg = await env.archiveNow();
    const dir = tempDir("pgbunker-sftp-get-");
    try {
      await env.runOkAsync(["archive-get", seg, join(dir, "ours")]);
      await env.backrestOkAsync(["archive-get", seg, join(dir, "theirs")], pgbr);
      const ours = readFileSync(join(dir, "ours"));
      expect(ours.byteLength).toBe(16 * 1024 * 1024);
      expect(sha1(ours)).toBe(sha1(readFileSync(join(dir, "theirs"))));
      expect((await env.runAsync(["archive-get", "0000000100000000000000FF", join(dir, "none")])).code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("pgbunker restores the incr with its data; pgBackRest 2.59.1 restores pgbunker's full", async () => {
    await env.archiveNow();
    const ours = await env.restoreAndStart("pgbunker", incr);
    await expectSameData(ours);
    ours.stop();
    const theirs = await env.restoreAndStart("pgbackrest-2.59", full);
    expect(await theirs.scalar("select count(*) from t")).toBe("20000");
    theirs.stop();
  });

  test("pgBackRest 2.59.1 backs up into the SFTP repository; pgbunker restores that backup and verifies the repository", async () => {
    await env.cluster.query("create table u as select g from generate_series(1, 3000) g");
    // pgbunker archives this cluster: pgBackRest would insist on its own archive_command.
    await env.backrestOkAsync(["--type=full", "--no-archive-check", "backup"], pgbr);
    const labels = JSON.parse(await env.runOkAsync(["info", "--output=json"]))[0].backup.map((b: { label: string }) => b.label);
    const theirs = labels.at(-1) as string;
    expect(labels).toEqual([full, incr, theirs]);
    await env.archiveNow();
    const c = await env.restoreAndStart("pgbunker", theirs);
    await expectSameData(c);
    await expectSameData(c, "u");
    c.stop();
    expect((await env.runAsync(["verify"])).code).toBe(0);
  });

  test("expire removes the oldest backups from the SFTP server", async () => {
    await env.runOkAsync(["--repo1-retention-full=1", "expire"]);
    const left = readdirSync(join(repo, "backup", "demo")).filter((n) => /^\d{8}-\d{6}F/.test(n));
    expect(left).toHaveLength(1);
    expect(left).not.toContain(full);
    expect(left).not.toContain(incr);
    const info = JSON.parse(await env.runOkAsync(["info", "--output=json"]))[0];
    expect(info.backup).toHaveLength(1);
    // WAL older than the remaining backup is gone too.
    const archived = repoFiles().filter((f) => f.startsWith("archive/demo/15-1/") && f.endsWith(".lz4")).map((f) => f.split("/").at(-1)!.slice(0, 24));
    expect(archived.every((w) => w >= info.backup[0].archive.start)).toBe(true);
  });
});
