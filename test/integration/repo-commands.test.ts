/**
 * annotate, repo-ls and repo-get against pgBackRest 2.45 on the same repositories: repo1 plain,
 * repo2 encrypted, each holding backups made by both tools. pgbunker's repo-ls and repo-get print
 * byte for byte what pgbackrest prints (text, json, decrypted files, still compressed), and fail with
 * the same exit codes; annotate writes the backup.info pgbackrest writes, pgbackrest reads the
 * annotations pgbunker writes and the other way round, and a refused annotate changes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha1Hex } from "../../src/filter/sha1.ts";
import { Manifest } from "../../src/repo/manifest.ts";
import { runAsPostgres, type RunResult } from "../harness/cluster.ts";
import { BINARY, pgbackrest, pgbunker } from "../harness/pgbunker.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let env: StanzaEnv;
/** Backups: repo1 by pgBackRest and by pgbunker, repo2 (encrypted) by pgBackRest then pgbunker. */
const label = { theirs: "", ours: "", encTheirs: "", encOurs: "" };

function both(args: string[]): { ours: RunResult; theirs: RunResult } {
  const all = [`--config=${env.conf}`, ...args];
  return { ours: pgbunker(all), theirs: pgbackrest(all) };
}

/** Run a tool as postgres and keep stdout as bytes (repo-get prints compressed and binary files). */
function rawRun(tool: "pgbunker" | "pgbackrest", args: string[]): { code: number; stdout: Uint8Array; stderr: string } {
  const r = Bun.spawnSync(["runuser", "-u", "postgres", "--", tool === "pgbunker" ? BINARY : "pgbackrest", `--config=${env.conf}`, ...args], { cwd: "/tmp", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, stdout: new Uint8Array(r.stdout), stderr: r.stderr.toString() };
}

const backupDir = (repo: string, l: string) => join(env.base, repo, "backup", env.stanza, l);
const backupInfoPath = (repo = "repo") => join(env.base, repo, "backup", env.stanza, "backup.info");
const read = (p: string) => readFileSync(p, "utf8");

function labelOf(repo: number): string {
  const info = JSON.parse(env.backrestOk([`--repo=${repo}`, "info", "--output=json"])) as { backup: { label: string }[] }[];
  return info[0]!.backup.at(-1)!.label;
}

beforeAll(async () => {
  env = await StanzaEnv.create({ archiver: "pgbackrest" });
  // Add an encrypted repo2 beside repo1: archive-push then writes every segment to both.
  const conf = read(env.conf).replace("[global]\n", `[global]\nrepo2-path=${join(env.base, "repo2")}\nrepo2-cipher-type=aes-256-cbc\nrepo2-cipher-pass=repo2-secret\nrepo2-retention-full=99\n`);
  writeFileSync(env.conf, conf);
  env.backrestOk(["stanza-create"]);
  await env.cluster.query("create table t as select g from generate_series(1, 1000) g");

  env.backrestOk(["--repo=1", "--type=full", "--annotation=source=pgbackrest", "--annotation=ticket=42", "--annotation=empty=", "backup"]);
  label.theirs = labelOf(1);
  env.runOk(["--repo=1", "--type=full", "--annotation=source=pgbunker", "--annotation=empty=", "backup"]);
  label.ours = labelOf(1);
  env.backrestOk(["--repo=2", "--type=full", "--no-expire-auto", "backup"]);
  label.encTheirs = labelOf(2);
  env.runOk(["--repo=2", "--type=incr", "--no-expire-auto", "backup"]);
  label.encOurs = labelOf(2);
  await env.archiveNow();
  // Nothing may change in the repositories between the runs of the two tools.
  env.cluster.stop();
});

afterAll(async () => {
  await env?.destroy();
});

describe("backup --annotation", () => {
  test("stored in backup.info and the manifest, a KEY= value left out as pgBackRest leaves it out", () => {
    const info = JSON.parse(env.backrestOk(["--repo=1", "info", "--output=json"]))[0].backup as { label: string; annotation?: Record<string, string> }[];
    const ann = Object.fromEntries(info.map((b) => [b.label, b.annotation]));
    expect(ann[label.theirs]).toEqual({ source: "pgbackrest", ticket: "42" });
    expect(ann[label.ours]).toEqual({ source: "pgbunker" });
    expect(Manifest.parse(read(join(backupDir("repo", label.ours), "backup.manifest"))).annotation).toEqual({ source: "pgbunker" });
  });
});

describe("annotate", () => {
  const manifestPaths = (l: string) => [join(backupDir("repo", l), "backup.manifest"), join(backupDir("repo", l), "backup.manifest.copy")];
  /** The lines of a manifest other than its annotation and checksum. */
  const otherLines = (text: string) => text.split("\n").filter((l) => !l.startsWith("annotation=") && !l.startsWith("backrest-checksum="));

  test("on a pgBackRest backup: the same backup.info as pgbackrest annotate writes, byte for byte; the manifest edited in place; pgbackrest reads both", () => {
    const infoFiles = [backupInfoPath(), backupInfoPath() + ".copy"];
    const infoBefore = infoFiles.map(read);
    const [manifestBefore] = manifestPaths(label.theirs).map(read);
    const changes = ["--annotation=ticket=", "--annotation=new=value", "--annotation=sp ace=a b=c"];

    const r = env.run(["--repo=1", `--set=${label.theirs}`, ...changes, "annotate"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`backup set '${label.theirs}' to annotate found in repo1`);
    const infoOurs = infoFiles.map(read);
    expect(infoOurs[1]).toBe(infoOurs[0]!);

    // pgBackRest reads what pgbunker wrote: info text and json, and its verify of the backup.
    const expected = { new: "value", source: "pgbackrest", "sp ace": "a b=c" };
    const text = env.backrestOk(["--repo=1", `--set=${label.theirs}`, "info"]);
    expect(text).toContain("            annotation(s)\n                new: value\n                source: pgbackrest\n                sp ace: a b=c\n");
    const json = JSON.parse(env.backrestOk(["--repo=1", "info", "--output=json"]))[0].backup.find((b: { label: string }) => b.label === label.theirs);
    expect(json.annotation).toEqual(expected);
    for (const form of [[`--set=${label.theirs}`, "info"], ["info", "--output=json"]]) {
      const { ours, theirs } = both([`--stanza=${env.stanza}`, "--repo=1", ...form]);
      expect(ours.stdout).toBe(theirs.stdout);
    }
    expect(env.backrest(["--repo=1", `--set=${label.theirs}`, "verify"]).code).toBe(0);

    // The manifest: main and copy alike, checksum valid, only the annotation changed.
    const [main, copy] = manifestPaths(label.theirs).map(read);
    expect(copy).toBe(main!);
    expect(Manifest.parse(main!).annotation).toEqual(expected);
    expect(otherLines(main!)).toEqual(otherLines(manifestBefore!));

    // pgbackrest annotate, from the same backup.info, writes the same bytes.
    infoFiles.forEach((p, i) => writeFileSync(p, infoBefore[i]!));
    env.backrestOk(["--repo=1", `--set=${label.theirs}`, ...changes, "annotate"]);
    expect(infoFiles.map(read)).toEqual(infoOurs);
  });

  test("on a pgbunker backup: pgbackrest's annotation shows in pgbunker info; removing every key leaves no annotation in either file", () => {
    env.backrestOk(["--repo=1", `--set=${label.ours}`, "--annotation=by=pgbackrest", "annotate"]);
    expect(env.runOk([`--set=${label.ours}`, "info"])).toContain("            annotation(s)\n                by: pgbackrest\n                source: pgbunker\n");

    env.runOk(["--repo=1", `--set=${label.ours}`, "--annotation=by=", "--annotation=source=", "annotate"]);
    const { ours, theirs } = both([`--stanza=${env.stanza}`, "--repo=1", "info", "--output=json"]);
    expect(ours.stdout).toBe(theirs.stdout);
    expect(JSON.parse(theirs.stdout)[0].backup.find((b: { label: string }) => b.label === label.ours)).not.toHaveProperty("annotation");
    expect(env.backrestOk([`--set=${label.ours}`, "info"])).not.toContain("annotation(s)");
    const entry = read(backupInfoPath()).split("\n").find((l) => l.startsWith(`${label.ours}=`))!;
    expect(entry).not.toContain("backup-annotation");
    for (const p of manifestPaths(label.ours)) {
      expect(read(p)).not.toContain("[metadata]");
      expect(Manifest.parse(read(p)).annotation).toBeUndefined();
    }
  });

  test("encrypted repository: the set is found in repo2 without --repo, and pgbackrest decrypts and reads what pgbunker wrote", () => {
    const r = env.run([`--set=${label.encTheirs}`, "--annotation=encrypted=yes", "annotate"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`backup set '${label.encTheirs}' to annotate found in repo2`);
    expect(r.stdout).not.toContain("found in repo1");
    expect(env.backrestOk(["--repo=2", `--set=${label.encTheirs}`, "info"])).toContain("annotation(s)\n                encrypted: yes\n");
    // The manifest is encrypted with backup.info's passphrase: pgbackrest decrypts it and verifies the backup.
    const manifest = env.backrestOk(["repo-get", "--repo=2", `backup/${env.stanza}/${label.encTheirs}/backup.manifest`]);
    expect(Manifest.parse(manifest).annotation).toEqual({ encrypted: "yes" });
    expect(env.backrest(["--repo=2", `--set=${label.encTheirs}`, "verify"]).code).toBe(0);
  });

  test("refused with pgbackrest's exit codes, and nothing in the repositories changes", () => {
    const files = [backupInfoPath(), ...manifestPaths(label.theirs), backupInfoPath("repo2")];
    const before = files.map((p) => sha1Hex(read(p)));
    const forms: [string[], RegExp][] = [
      [[`--set=${label.theirs}`, "annotate"], /annotate command requires option: annotation/],
      [["--annotation=a=b", "annotate"], /annotate command requires option: set/],
      [["--set=bogus", "--annotation=a=b", "annotate"], /'bogus' is not a valid backup label format/],
      [["--set=20200101-000000F", "--annotation=a=b", "annotate"], /no backup set to annotate found/],
      [[`--set=${label.theirs}`, "--annotation=noequals", "annotate"], /key\/value 'noequals' not valid for 'annotation' option/],
      [["--repo=2", `--set=${label.theirs}`, "--annotation=a=b", "annotate"], /no backup set to annotate found/],
    ];
    for (const [args, message] of forms) {
      const { ours, theirs } = both([`--stanza=${env.stanza}`, ...args]);
      expect({ args, code: ours.code }).toEqual({ args, code: theirs.code });
      expect(ours.code).not.toBe(0);
      expect(ours.stderr + ours.stdout).toMatch(message);
    }
    expect(files.map((p) => sha1Hex(read(p)))).toEqual(before);
    // A repository that fails is reported by number and counted; the others are still annotated.
    const broken = pgbunker([`--config=${env.conf}`, `--stanza=${env.stanza}`, `--set=${label.theirs}`, "--annotation=a=b", "annotate"], { env: { PGBUNKER_REPO2_CIPHER_PASS: "wrong" } });
    expect(broken.code).toBe(104);
    expect(broken.stderr + broken.stdout).toMatch(/repo2: .*unable to (decrypt|load info file)/s);
    expect(broken.stderr + broken.stdout).toMatch(/annotate command encountered 1 error\(s\)/);
    expect(files.slice(3).map((p) => sha1Hex(read(p)))).toEqual(before.slice(3));
    expect(env.runOk(["--repo=1", `--set=${label.theirs}`, "info", "--output=json"])).toContain('"a":"b"');
    env.runOk(["--repo=1", `--set=${label.theirs}`, "--annotation=a=", "annotate"]);
  });
});

describe("repo-ls", () => {
  test("the same text and json as pgbackrest, byte for byte, on the plain and the encrypted repository", () => {
    const st = env.stanza;
    const forms = [
      [], ["--output=json"], ["backup", "--recurse"], ["--recurse", "--output=json"], ["--recurse", "--sort=desc"], ["--recurse", "--sort=none"],
      [`backup/${st}`], [`backup/${st}`, "--output=json"], [`backup/${st}/`], [`backup/${st}/latest`, "--output=json"],
      [`backup/${st}/backup.info`], [`backup/${st}/backup.info`, "--output=json"], [`backup/${st}/backup.info`, "--filter=xyz", "--output=json"],
      [`backup/${st}/backup.info`, "--filter=^/.*info$"], ["nope"], ["nope", "--output=json"],
      ["backup", "--recurse", "--filter=info$"], [`backup/${st}`, "--filter=^backup", "--output=json"], [`backup/${st}`, "--filter=^backup", "--sort=desc"],
      ["archive", "--recurse", "--output=json", "--sort=desc"], [join(env.base, "repo", "backup")], [join(env.base, "repo")],
    ];
    for (const repo of ["--repo=1", "--repo=2"])
      for (const form of forms) {
        const args = repo === "--repo=2" ? [repo, ...form.map((a) => a.replace(join(env.base, "repo"), join(env.base, "repo2")))] : [repo, ...form];
        const { ours, theirs } = both(["repo-ls", ...args]);
        expect({ args, code: ours.code, stdout: ours.stdout }).toEqual({ args, code: 0, stdout: theirs.stdout });
      }
    // The listing holds what the repository holds (not only what pgbackrest says).
    const names = env.runOk(["repo-ls", "--repo=1", `backup/${st}`]).trim().split("\n");
    expect(names).toEqual([label.theirs, label.ours, "backup.history", "backup.info", "backup.info.copy", "latest"]);
    const json = JSON.parse(env.runOk(["repo-ls", "--repo=1", `backup/${st}`, "--output=json"]));
    expect(json["backup.info"]).toEqual({ type: "file", size: read(backupInfoPath()).length, time: expect.any(Number) });
    expect(json.latest).toEqual({ type: "link", destination: label.ours });
  });

  test("backup.history manifests are gzip at level 9, as pgBackRest writes them (its own and ours alike)", () => {
    const st = env.stanza;
    for (const l of [label.theirs, label.ours]) {
      const gz = readFileSync(join(env.base, "repo", `backup/${st}/backup.history/${l.slice(0, 4)}/${l}.manifest.gz`));
      // XFL (byte 8) is 2 when deflate used its slowest, best compression.
      expect({ l, magic: gz.readUInt16BE(0), xfl: gz[8] }).toEqual({ l, magic: 0x1f8b, xfl: 2 });
      // A manifest (not compared with backup.manifest: annotate, earlier in this file, rewrites that).
      expect(new TextDecoder().decode(Bun.gunzipSync(gz)).slice(0, 10)).toBe("[backrest]");
    }
  });

  test("bad paths and filters: pgbackrest's exit codes", () => {
    for (const [form, code, message] of [
      [["a", "b"], 96, /only one path may be specified/],
      [["/etc"], 96, /absolute path '\/etc' is not in base path/],
      [["backup//x"], 96, /path 'backup\/\/x' cannot contain \/\//],
      [["backup", "--filter=("], 29, /invalid --filter regular expression '\('/],
    ] as [string[], number, RegExp][]) {
      const { ours, theirs } = both(["repo-ls", ...form]);
      expect({ form, ours: ours.code, theirs: theirs.code }).toEqual({ form, ours: code, theirs: code });
      expect(ours.stdout).toBe("");
      expect(ours.stderr).toMatch(message);
    }
  });
});

describe("repo-get", () => {
  const walOf = (repo: string) => {
    const lines = env.runOk(["repo-ls", `--repo=${repo === "repo" ? 1 : 2}`, "archive", "--recurse", "--filter=\\.lz4$"]).trim().split("\n");
    return `archive/${lines[0]!}`;
  };

  test("decrypted but still compressed, byte for byte as pgbackrest prints it, for every kind of file", () => {
    const st = env.stanza;
    for (const [repo, labels] of [["repo", [label.theirs, label.ours]], ["repo2", [label.encTheirs, label.encOurs]]] as const) {
      const files = [`backup/${st}/backup.info`, `backup/${st}/backup.info.copy`, `archive/${st}/archive.info`, walOf(repo), `backup/${st}/backup.history/${labels[0].slice(0, 4)}/${labels[0]}.manifest.gz`];
      // Files every backup stores (an incr stores only what changed), and PG_VERSION of the full.
      for (const l of labels) files.push(`backup/${st}/${l}/backup.manifest`, `backup/${st}/${l}/backup.manifest.copy`, `backup/${st}/${l}/pg_data/backup_label.lz4`, `backup/${st}/${l}/pg_data/global/pg_control.lz4`);
      files.push(`backup/${st}/${labels[0]}/pg_data/PG_VERSION.lz4`);
      const repoArg = `--repo=${repo === "repo" ? 1 : 2}`;
      for (const file of [...files, join(env.base, repo, files[0]!)]) {
        // --raw makes a difference only where the files are encrypted.
        for (const extra of repo === "repo2" ? [[], ["--raw"]] : [[]]) {
          const ours = rawRun("pgbunker", ["repo-get", repoArg, ...extra, file]);
          const theirs = rawRun("pgbackrest", ["repo-get", repoArg, ...extra, file]);
          expect({ file, extra, code: ours.code, stderr: ours.stderr }).toEqual({ file, extra, code: 0, stderr: "" });
          expect({ file, extra, sha1: sha1Hex(ours.stdout) }).toEqual({ file, extra, sha1: sha1Hex(theirs.stdout) });
          // --raw: the bytes as stored.
          if (extra.length) expect({ file, sha1: sha1Hex(ours.stdout) }).toEqual({ file, sha1: sha1Hex(readFileSync(file.startsWith("/") ? file : join(env.base, repo, file))) });
        }
      }
      // Not decompressed: lz4 -d of the output is the data directory's file; a WAL segment's is its name's SHA-1.
      const pgVersion = rawRun("pgbunker", ["repo-get", repoArg, `backup/${st}/${labels[0]}/pg_data/PG_VERSION.lz4`]).stdout;
      expect(lz4d(pgVersion).toString()).toBe(read(join(env.cluster.dataDir, "PG_VERSION")));
      const wal = walOf(repo);
      expect(sha1Hex(lz4d(rawRun("pgbunker", ["repo-get", repoArg, wal]).stdout))).toBe(/-([0-9a-f]{40})\.lz4$/.exec(wal)![1]!);
    }
    // Encrypted on disk, plain text out.
    expect(read(join(env.base, "repo2", "backup", st, "backup.info"))).not.toContain("[backup:current]");
    expect(env.runOk(["repo-get", "--repo=2", `backup/${st}/backup.info`])).toContain("[backup:current]");
  });

  test("missing files, directories, bad paths, undeterminable passphrases: pgbackrest's exit codes and nothing on stdout", () => {
    const st = env.stanza;
    const forms: [string[], number, RegExp | null][] = [
      [["--repo=1", "nope"], 55, /unable to open missing file '.*\/nope' for read/],
      [["--repo=1", "--ignore-missing", "nope"], 1, null],
      [["--repo=1", `backup/${st}/${label.ours}/nofile`], 55, /unable to open missing file/],
      [["--repo=1"], 43, /source file required/],
      [["--repo=1", "a", "b"], 43, /source file required/],
      [["--repo=1", `backup/${st}`], 42, /unable to read '.*': it is a directory/],
      [["--repo=1", `backup/${st}/latest`], 42, /it is a directory/],
      [["--repo=1", "/etc/passwd"], 96, /absolute path '\/etc\/passwd' is not in base path/],
      [["--repo=1", "backup//x"], 96, /cannot contain \/\//],
      [["--repo=2", `backup/${st}/${label.encOurs}/nofile`], 55, /unable to open missing file/],
      [["--repo=2", "--ignore-missing", `backup/${st}/${label.encOurs}/nofile`], 1, null],
      [["--repo=2", `--stanza=other`, `backup/${st}/backup.info`], 32, /stanza name 'other' given in option doesn't match the given path/],
      [["--repo=2", `backup/${st}`], 32, /unable to determine cipher passphrase for 'backup\/demo'/],
      [["--repo=2", "nope/x/y"], 32, /unable to determine cipher passphrase/],
      [["--repo=2", "backup/nostanza/file"], 55, /backup\.info/],
    ];
    for (const [args, code, message] of forms) {
      const ours = rawRun("pgbunker", ["repo-get", ...args]);
      const theirs = rawRun("pgbackrest", ["repo-get", ...args]);
      expect({ args, ours: ours.code, theirs: theirs.code }).toEqual({ args, ours: code, theirs: code });
      expect({ args, stdout: ours.stdout.byteLength }).toEqual({ args, stdout: 0 });
      if (message) expect(ours.stderr).toMatch(message);
      else expect(ours.stderr).toBe("");
    }
  });

  test("a reader that stops early (| head -c) is not an error to report", () => {
    const r = runAsPostgres(["sh", "-c", `${BINARY} --config=${env.conf} --repo=1 repo-get ${walOf("repo")} | head -c 10 | wc -c`]);
    expect(r.stdout.trim()).toBe("10");
    expect(r.stderr).toBe("");
  });
});

function lz4d(data: Uint8Array): Buffer {
  const r = Bun.spawnSync(["lz4", "-dc"], { stdin: data, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`lz4 -d failed: ${r.stderr}`);
  return r.stdout;
}
