/**
 * An SFTP repository when things go wrong: the SFTP server killed in the middle of a backup (the
 * backup fails naming the lost connection, is never listed, and the next one resumes it), a key
 * the server refuses, an unknown or wrong host key under each repo1-sftp-host-key-check-type,
 * missing options, a path that cannot be made. Each fails with a clear message and exit code and
 * writes nothing into the repository.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Manifest } from "../../src/repo/manifest.ts";
import { chownSync } from "node:fs";
import { PG_GID, PG_UID, spawnAsPostgres, tempDir } from "../harness/cluster.ts";
import { BINARY } from "../harness/pgbunker.ts";
import { Sshd } from "../harness/sshd.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let sshd: Sshd;
let env: StanzaEnv;
let repo: string;

beforeAll(async () => {
  sshd = await Sshd.start();
  repo = tempDir("pgbunker-sftp-faults-");
  env = await StanzaEnv.create({ global: { ...sshd.sftpOptions("repo1", repo), "log-level-console": "warn" } });
});

afterAll(async () => {
  await env?.destroy();
  await sshd?.stop();
  rmSync(repo, { recursive: true, force: true });
});

/** Files under a directory (relative), recursively. */
function filesUnder(dir: string, prefix = ""): string[] {
  if (!existsSync(join(dir, prefix))) return [];
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    return e.isDirectory() ? filesUnder(dir, rel) : [rel];
  });
}

/** Run pgbunker with the stanza's config and these options on the command line, on an empty repository path. */
function onEmptyPath(args: string[]): { r: ReturnType<StanzaEnv["run"]>; files: string[] } {
  const path = tempDir("pgbunker-sftp-empty-");
  try {
    const r = env.run([`--repo1-path=${path}`, ...args]);
    return { r, files: filesUnder(path) };
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

describe("sftp: the server killed in the middle of a backup", () => {
  test("the backup fails naming the lost connection, is not listed, and the next backup resumes it and restores", async () => {
    await env.cluster.query("create table big as select g, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, 150000) g");
    await env.cluster.query("checkpoint");
    const p = spawnAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${env.stanza}`, "--type=full", "--process-max=1", "--manifest-save-threshold=1", "--job-retry=0", "backup"], { output: "pipe" });
    const dir = join(repo, "backup", env.stanza);
    const stored = (): { label: string; count: number } | undefined => {
      for (const label of existsSync(dir) ? readdirSync(dir).filter((n) => /F$/.test(n)) : []) {
        try {
          const m = Manifest.parse(readFileSync(join(dir, label, "backup.manifest.copy"), "utf8"));
          return { label, count: m.fileList().filter((f) => f.rck !== undefined).length };
        } catch {}
      }
      return undefined;
    };
    const deadline = Date.now() + 60_000;
    while ((stored()?.count ?? 0) < 5 && Date.now() < deadline && p.exitCode === null) await Bun.sleep(20);
    await sshd.kill();
    const [stderr, code] = await Promise.all([new Response(p.stderr as ReadableStream).text(), p.exited]);
    const killed = stored()!;
    expect(killed.count).toBeGreaterThanOrEqual(5);
    expect(code).toBe(49);
    expect(stderr).toMatch(/HostConnectError|\[049\]/);
    expect(stderr).toMatch(/SFTP connection to postgres@127\.0\.0\.1:\d+ was lost|unable to connect to postgres@127\.0\.0\.1/);

    // While the server is down every command says so (info in its report, as pgBackRest's does).
    expect(env.run(["info"]).stdout).toContain(`[HostConnectError] unable to connect to postgres@127.0.0.1:${sshd.port}`);
    const down = env.run(["repo-ls"]);
    expect(down.code).toBe(49);
    expect(down.stderr).toContain(`unable to connect to postgres@127.0.0.1:${sshd.port}`);

    await sshd.restart();
    const info = JSON.parse(env.runOk(["info", "--output=json"]))[0];
    expect(info.backup ?? []).toHaveLength(0);

    const r = env.run(["--type=full", "--process-max=2", "--log-level-console=detail", "backup"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`resumable backup ${killed.label} of same type exists`);
    expect((r.stdout.match(/checksum resumed file/g) ?? []).length).toBeGreaterThanOrEqual(5);
    expect(filesUnder(join(dir, killed.label)).filter((f) => f.includes(".tmp"))).toEqual([]);
    expect(env.run(["verify"]).code).toBe(0);
    await env.archiveNow();
    const c = await env.restoreAndStart("pgbunker", killed.label);
    expect(await c.scalar("select count(*) from big")).toBe("150000");
    expect(await c.tableChecksum("big")).toBe(await env.cluster.tableChecksum("big"));
    c.stop();
  });
});

describe("sftp: bad keys, host keys and options", () => {
  test("a key the server refuses: HostConnectError naming key, user and the option to fix", () => {
    const { r, files } = onEmptyPath([`--repo1-sftp-private-key-file=${sshd.otherKey}`, "stanza-create"]);
    expect(r.code).toBe(49);
    expect(r.stderr + r.stdout).toContain(`unable to authenticate to postgres@127.0.0.1:${sshd.port}: the server refused key '${sshd.otherKey}'`);
    expect(r.stderr + r.stdout).toContain("repo1-sftp-private-key-file and repo1-sftp-host-user");
    expect(files).toEqual([]);
  });

  test("an unknown host key is refused under strict (the default), with the fingerprint and how to add it", () => {
    const empty = join(env.base, "empty_known_hosts");
    writeFileSync(empty, "");
    const { r, files } = onEmptyPath([`--repo1-sftp-known-host=${empty}`, "stanza-create"]);
    expect(r.code).toBe(49);
    const out = r.stderr + r.stdout;
    expect(out).toContain(`host key verification failed: '[127.0.0.1]:${sshd.port}' (ssh-ed25519 SHA256:`);
    expect(out).toContain(`is not in '${empty}'`);
    expect(out).toContain("repo1-sftp-host-key-check-type=accept-new");
    expect(files).toEqual([]);
  });

  test("a changed host key is refused even with accept-new", () => {
    const other = join(env.base, "changed_known_hosts");
    const otherKey = sshd.hostPublicKey(sshd.otherKey);
    writeFileSync(other, `[127.0.0.1]:${sshd.port} ${otherKey}\n`);
    const { r } = onEmptyPath([`--repo1-sftp-known-host=${other}`, "--repo1-sftp-host-key-check-type=accept-new", "repo-ls"]);
    expect(r.code).toBe(49);
    expect(r.stderr + r.stdout).toContain("which differs from the key in");
  });

  test("accept-new records the key in the first known hosts file; strict then accepts it", () => {
    const file = join(env.base, "accept_known_hosts");
    writeFileSync(file, "");
    chownSync(file, PG_UID, PG_GID);
    const first = env.run([`--repo1-sftp-known-host=${file}`, "--repo1-sftp-host-key-check-type=accept-new", "--log-level-console=warn", "info"]);
    expect(first.code).toBe(0);
    expect(first.stdout + first.stderr).toContain(`permanently added '[127.0.0.1]:${sshd.port}'`);
    expect(readFileSync(file, "utf8")).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey()}\n`);
    expect(env.run([`--repo1-sftp-known-host=${file}`, "info"]).code).toBe(0);
  });

  test("fingerprint: the configured digest must be the host key's; it needs a hash type", () => {
    for (const hash of ["md5", "sha1", "sha256"] as const) {
      const ok = env.run(["--repo1-sftp-host-key-check-type=fingerprint", `--repo1-sftp-host-key-hash-type=${hash}`, `--repo1-sftp-host-fingerprint=${sshd.hostFingerprint(hash)}`, "--reset-repo1-sftp-known-host", "info"]);
      expect(ok.stderr).toBe("");
      expect(ok.code).toBe(0);
    }
    const bad = onEmptyPath(["--repo1-sftp-host-key-check-type=fingerprint", "--repo1-sftp-host-key-hash-type=sha1", `--repo1-sftp-host-fingerprint=${"0".repeat(40)}`, "--reset-repo1-sftp-known-host", "stanza-create"]);
    expect(bad.r.code).toBe(49);
    expect(bad.r.stderr + bad.r.stdout).toContain(`whose sha1 digest ${sshd.hostFingerprint("sha1")} is not the configured fingerprint ${"0".repeat(40)}`);
    expect(bad.files).toEqual([]);
    const noHash = env.run(["--repo1-sftp-host-key-check-type=fingerprint", "--reset-repo1-sftp-host-key-hash-type", "--repo1-sftp-host-fingerprint=ab", "--reset-repo1-sftp-known-host", "repo-ls"]);
    expect(noHash.code).toBe(37);
    expect(noHash.stderr + noHash.stdout).toContain("repo-ls command requires option: repo1-sftp-host-key-hash-type");
  });

  test("none connects without checking, and warns that it did", () => {
    const empty = join(env.base, "empty_known_hosts");
    writeFileSync(empty, "");
    const r = env.run(["--repo1-sftp-host-key-check-type=none", "--reset-repo1-sftp-known-host", "info"]);
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).toContain(`WARN: the host key of SFTP server '127.0.0.1:${sshd.port}' is not checked (repo1-sftp-host-key-check-type=none)`);
    // Given on the command line, a known hosts file with none is refused, as pgBackRest refuses it
    // (from the config file, where it serves the other check types, it is ignored).
    const invalid = env.run(["--repo1-sftp-host-key-check-type=none", `--repo1-sftp-known-host=${empty}`, "repo-ls"]);
    expect(invalid.code).toBe(31);
    expect(invalid.stderr + invalid.stdout).toContain("option 'repo1-sftp-known-host' not valid without option 'repo1-sftp-host-key-check-type' in ('accept-new', 'strict')");
  });

  test("required options and paths: OptionRequiredError / OptionInvalidValueError before any connection", () => {
    const noUser = env.run(["--reset-repo1-sftp-host-user", "repo-ls"]);
    expect(noUser.code).toBe(37);
    expect(noUser.stderr + noUser.stdout).toContain("repo-ls command requires option: repo1-sftp-host-user");
    const relative = env.run(["--repo1-sftp-known-host=known_hosts", "repo-ls"]);
    expect(relative.code).toBe(32);
    expect(relative.stderr + relative.stdout).toContain("'known_hosts' is not a valid value for option 'repo1-sftp-known-host'");
  });

  test("a repository path the SSH user cannot create: PathCreateError naming it, nothing made", () => {
    const locked = tempDir("pgbunker-sftp-locked-");
    chownSync(locked, 0, 0);
    try {
      const r = env.run([`--repo1-path=${locked}/repo`, "stanza-create"]);
      expect(r.code).toBe(47);
      expect(r.stderr + r.stdout).toContain(`unable to create path '${locked}/repo`);
      expect(readdirSync(locked)).toEqual([]);
    } finally {
      rmSync(locked, { recursive: true, force: true });
    }
  });
});
