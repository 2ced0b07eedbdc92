/**
 * The pure parts of annotate, repo-ls and repo-get: how annotation changes apply, which passphrase
 * a repository path implies, how a user's path maps into the repository, and the listing order
 * and json entries of repo-ls over a real directory tree (the integration tests compare the whole
 * commands with pgBackRest).
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { entryJson, listEntries, type SortOrder } from "../../../src/command/repo-ls/repo-ls.ts";
import { repoRelativePath } from "../../../src/command/shared/repos.ts";
import { PgbError } from "../../../src/common/error.ts";
import { annotationApply } from "../../../src/repo/annotation.ts";
import { cipherPassSource } from "../../../src/repo/layout.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { Storage } from "../../../src/storage/storage.ts";
import { scratchDirs } from "../../harness/scratch.ts";

const scratch = scratchDirs("pgb-repocmd-");

describe("annotationApply", () => {
  test("adds, replaces, removes on an empty value; nothing left is no annotation", () => {
    const current = { a: "1", b: "2" };
    expect(annotationApply(current, { b: "", c: "3", a: "x" })).toEqual({ a: "x", c: "3" });
    expect(current).toEqual({ a: "1", b: "2" });
    expect(annotationApply(current, { a: "", b: "" })).toBeUndefined();
    expect(annotationApply(undefined, { k: "v", empty: "" })).toEqual({ k: "v" });
    expect(annotationApply(undefined, {})).toBeUndefined();
  });
});

describe("cipherPassSource", () => {
  test("the passphrase each kind of repository file is encrypted with", () => {
    const s = "demo";
    expect(cipherPassSource("archive/demo/archive.info")).toEqual({ from: "repo", stanza: s });
    expect(cipherPassSource("archive/demo/archive.info.copy")).toEqual({ from: "repo", stanza: s });
    expect(cipherPassSource("archive/demo/15-1/0000000100000000/000000010000000000000001-ab.lz4")).toEqual({ from: "archive.info", stanza: s });
    expect(cipherPassSource("archive/demo/15-1/00000002.history")).toEqual({ from: "archive.info", stanza: s });
    expect(cipherPassSource("backup/demo/backup.info")).toEqual({ from: "repo", stanza: s });
    expect(cipherPassSource("backup/demo/backup.info.copy")).toEqual({ from: "repo", stanza: s });
    expect(cipherPassSource("backup/demo/20240101-000000F/backup.manifest")).toEqual({ from: "backup.info", stanza: s });
    expect(cipherPassSource("backup/demo/20240101-000000F/backup.manifest.copy")).toEqual({ from: "backup.info", stanza: s });
    expect(cipherPassSource("backup/demo/backup.history/2024/20240101-000000F.manifest.gz")).toEqual({ from: "backup.info", stanza: s });
    expect(cipherPassSource("backup/demo/20240101-000000F/pg_data/PG_VERSION.lz4")).toEqual({ from: "manifest", stanza: s, label: "20240101-000000F" });
    expect(cipherPassSource("backup/demo/20240101-000000F/bundle/1")).toEqual({ from: "manifest", stanza: s, label: "20240101-000000F" });
    for (const none of ["backup/demo", "archive", "", "other/demo/file"]) expect(cipherPassSource(none)).toBeNull();
  });
});

describe("repoRelativePath", () => {
  const storage = new Storage(posix, "/var/lib/repo");
  test("relative paths as given, absolute ones inside repo-path made relative, a trailing slash dropped", () => {
    expect(repoRelativePath(storage, "backup/demo")).toBe("backup/demo");
    expect(repoRelativePath(storage, "backup/demo/")).toBe("backup/demo");
    expect(repoRelativePath(storage, "/var/lib/repo")).toBe("");
    expect(repoRelativePath(storage, "/var/lib/repo/")).toBe("");
    expect(repoRelativePath(storage, "/var/lib/repo/backup/demo")).toBe("backup/demo");
    expect(repoRelativePath(new Storage(posix, "/"), "/backup")).toBe("backup");
  });

  test("'//' and absolute paths outside the repository are ParamInvalidError", () => {
    for (const [path, message] of [
      ["backup//demo", "path 'backup//demo' cannot contain //"],
      ["/var/lib/repox/backup", "absolute path '/var/lib/repox/backup' is not in base path '/var/lib/repo'"],
      ["/etc", "absolute path '/etc' is not in base path '/var/lib/repo'"],
    ]) {
      const e = (() => {
        try {
          repoRelativePath(storage, path!);
        } catch (x) {
          return x as PgbError;
        }
      })();
      expect({ kind: e?.kind, message: e?.message }).toEqual({ kind: "ParamInvalidError", message: message! });
    }
  });
});

describe("repo-ls listing", () => {
  const tree = () => {
    const dir = scratch();
    mkdirSync(join(dir, "b/sub"), { recursive: true });
    mkdirSync(join(dir, "b.x"));
    writeFileSync(join(dir, "a"), "12345");
    writeFileSync(join(dir, "b/sub/f"), "");
    writeFileSync(join(dir, "B"), "");
    symlinkSync("b", join(dir, "link"));
    utimesSync(join(dir, "a"), 1700000000, 1700000000);
    return new Storage(posix, dir);
  };
  const names = async (storage: Storage, sort: SortOrder, recurse = true) => {
    const out: string[] = [];
    for await (const e of listEntries(storage, "", { recurse, sort })) out.push(e.name);
    return out;
  };

  test("ascending: byte order per directory, each directory before its content; links not followed", async () => {
    const s = tree();
    expect(await names(s, "asc")).toEqual(["B", "a", "b", "b/sub", "b/sub/f", "b.x", "link"]);
    expect(await names(s, "asc", false)).toEqual(["B", "a", "b", "b.x", "link"]);
  });

  test("descending is the ascending listing reversed; none keeps the directory's order", async () => {
    const s = tree();
    expect(await names(s, "desc")).toEqual((await names(s, "asc")).reverse());
    expect((await names(s, "none")).sort()).toEqual((await names(s, "asc")).sort());
  });

  test("json entries: size and time for files, destination for links", async () => {
    const s = tree();
    const byName = new Map<string, string>();
    for await (const e of listEntries(s, "", { recurse: false, sort: "asc" })) byName.set(e.name, entryJson(e));
    expect(byName.get("a")).toBe('"a":{"type":"file","size":5,"time":1700000000}');
    expect(byName.get("b")).toBe('"b":{"type":"path"}');
    expect(byName.get("link")).toBe('"link":{"type":"link","destination":"b"}');
  });

  test("a missing path lists nothing", async () => {
    const s = tree();
    const out = [];
    for await (const e of listEntries(s, "nope", { recurse: true, sort: "asc" })) out.push(e);
    expect(out).toEqual([]);
  });
});
