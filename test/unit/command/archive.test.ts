/**
 * The archive's pure parts and its per-file units of work over a local repository: where WAL
 * files are stored, the spool's status files, the `:async` command role, and pushWalFile /
 * getWalFile (duplicates, header check, repositories that fail, corrupt copies) without a cluster.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../../src/config/parse.ts";
import { statusOf, statusRead, statusWriteError, statusWriteOk } from "../../../src/command/archive/spool.ts";
import { batchSegments, noValidRepo, queueBytes, readyWalFiles, sizeText, staleTempSeconds } from "../../../src/command/archive/common.ts";
import { getWalFile, type GetSource } from "../../../src/command/archive/get/file.ts";
import { pushWalFile, type PushTarget } from "../../../src/command/archive/push/file.ts";
import { err } from "../../../src/common/error.ts";
import { PG_VERSIONS } from "../../../src/postgres/version.ts";
import { archiveFileOf, walNameHasChecksum, walRepoPath } from "../../../src/repo/layout.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { Storage } from "../../../src/storage/storage.ts";
import { failure } from "../../harness/failure.ts";
import { scratchDirs } from "../../harness/scratch.ts";

const temp = scratchDirs("pgb-archive-unit-");

const SYSTEM_ID = 7712153727444328942n;
const PG15 = PG_VERSIONS.find((v) => v.major === 15)!;

/** A 1 MiB "segment" whose first page is a long header naming a cluster. */
function segment(seed: number, systemId = SYSTEM_ID, magic = PG15.walMagic): Uint8Array {
  const buf = new Uint8Array(1024 * 1024);
  for (let i = 40; i < buf.length; i++) buf[i] = (i * seed) % 251;
  const v = new DataView(buf.buffer);
  v.setUint16(0, magic, true);
  v.setUint16(2, 0x0002, true); // XLP_LONG_HEADER
  v.setUint32(4, 1, true);
  v.setBigUint64(24, systemId, true);
  v.setUint32(32, 16 * 1024 * 1024, true);
  v.setUint32(36, 8192, true);
  return buf;
}

const sha1 = (b: Uint8Array) => new Bun.CryptoHasher("sha1").update(b).digest("hex");

describe("where WAL files live in the repository", () => {
  test("segments and partials carry SHA-1 and extension; backup labels beside them; history in the archive id", () => {
    const s = { sha1: "a".repeat(40), ext: ".lz4" };
    expect(walRepoPath("demo", "15-1", "000000010000000200000003", s)).toBe(`archive/demo/15-1/0000000100000002/000000010000000200000003-${"a".repeat(40)}.lz4`);
    expect(walRepoPath("demo", "15-1", "000000010000000200000003.partial", s)).toBe(`archive/demo/15-1/0000000100000002/000000010000000200000003.partial-${"a".repeat(40)}.lz4`);
    expect(walRepoPath("demo", "15-1", "000000010000000200000003.00000028.backup")).toBe("archive/demo/15-1/0000000100000002/000000010000000200000003.00000028.backup");
    expect(walRepoPath("demo", "15-1", "00000002.history")).toBe("archive/demo/15-1/00000002.history");
    expect(walNameHasChecksum("00000002.history")).toBe(false);
    expect(() => walRepoPath("demo", "15-1", "000000010000000200000003")).toThrow(/needs its sha1/);
  });

  test("archiveFileOf: a stored file is WAL only where walRepoPath puts it; temp files apart; anything else is not", () => {
    const h = "a".repeat(40);
    expect(archiveFileOf(`0000000100000002/000000010000000200000003-${h}.lz4`)).toEqual({ kind: "segment", wal: "000000010000000200000003", sha1: h, ext: ".lz4" });
    expect(archiveFileOf(`0000000100000002/000000010000000200000003.partial-${h}`)).toEqual({ kind: "partial", wal: "000000010000000200000003.partial", sha1: h, ext: "" });
    expect(archiveFileOf("0000000100000002/000000010000000200000003.00000028.backup")).toEqual({ kind: "backup", wal: "000000010000000200000003.00000028.backup" });
    expect(archiveFileOf("00000002.history")).toEqual({ kind: "history", wal: "00000002.history" });
    expect(archiveFileOf("0000000100000002/000000010000000200000003.123-deadbeef.pgbunker.tmp")).toEqual({ kind: "temp" });
    expect(archiveFileOf("archive.info.pgbunker.tmp")).toEqual({ kind: "temp" });
    expect(archiveFileOf("0000000100000002/000000010000000200000003.pgbackrest.tmp")).toEqual({ kind: "temp" });
    for (const stray of [
      "notwal",
      "0000000100000002/notwal",
      `0000000100000009/000000010000000200000003-${h}.lz4`, // wrong directory
      `000000010000000200000003-${h}.lz4`, // not in its directory
      "0000000100000002/00000002.history", // history belongs in the archive id
      "000000010000000200000003.00000028.backup",
      "0000000100000002/000000010000000200000003", // a segment without its SHA-1
      `0000000100000002/00000002.history-${h}`,
    ])
      expect(archiveFileOf(stray)).toBeUndefined();
  });
});

describe("spool status files", () => {
  test("ok, ok with a warning, error with code and hints round-trip in pgBackRest's format", async () => {
    const spool = new Storage(posix, temp());
    await statusWriteOk(spool, "out", "A");
    await statusWriteOk(spool, "out", "B", "dropped WAL file 'B'");
    await statusWriteError(spool, "out", "C", err("ArchiveDuplicateError", "WAL file 'C' already exists", ["hint one", "hint two"]));
    expect(await statusRead(spool, "out", "A")).toEqual({ kind: "ok" });
    expect(await statusRead(spool, "out", "B")).toEqual({ kind: "ok", warning: "dropped WAL file 'B'" });
    expect(readFileSync(spool.path("out/B.ok"), "utf8")).toBe("0\ndropped WAL file 'B'");
    expect(readFileSync(spool.path("out/C.error"), "utf8")).toBe("45\nWAL file 'C' already exists\nHINT: hint one\nHINT: hint two");
    const c = await statusRead(spool, "out", "C");
    expect(c?.kind).toBe("error");
    if (c?.kind === "error") {
      expect(c.error.kind).toBe("ArchiveDuplicateError");
      expect(c.error.message).toBe("WAL file 'C' already exists");
      expect(c.error.hints).toEqual(["hint one", "hint two"]);
    }
    expect(await statusRead(spool, "out", "D")).toBeUndefined();
    expect([statusOf("X.ok"), statusOf("X.error"), statusOf("X")]).toEqual(["X", "X", undefined]);
  });
});

describe("queue helpers", () => {
  test("ready files: history first; only segments count toward the queue size", async () => {
    const dir = temp();
    mkdirSync(join(dir, "archive_status"));
    for (const n of ["000000010000000000000003", "00000002.history", "000000010000000000000004.partial", "000000010000000000000002"])
      writeFileSync(join(dir, "archive_status", `${n}.ready`), "");
    writeFileSync(join(dir, "archive_status", "000000010000000000000001.done"), "");
    const ready = await readyWalFiles(new Storage(posix, "/"), dir);
    expect(ready).toEqual(["00000002.history", "000000010000000000000002", "000000010000000000000003", "000000010000000000000004.partial"]);
    expect(queueBytes(ready, 16 << 20)).toBe(32 << 20);
    expect([sizeText(16 << 20), sizeText(1 << 30), sizeText(1000)]).toEqual(["16MB", "1GB", "1000B"]);
  });

  test("archive-push-batch-size counts whole segments, at least one", () => {
    expect(batchSegments(16 * 1024 ** 3, 16 << 20)).toBe(1024);
    expect(batchSegments((32 << 20) + 1, 16 << 20)).toBe(2);
    expect(batchSegments(1 << 20, 16 << 20)).toBe(1);
    expect(batchSegments(1 << 30, 1 << 30)).toBe(1);
  });

  test("temp files are stale after twice the largest of protocol-timeout and io-timeout, never under 10 minutes", () => {
    const cfg = (args: string[]) => parseConfig({ argv: ["--stanza=demo", "--pg1-path=/pg", ...args, "archive-push", "/pg/pg_wal/x"], configSections: new Map() });
    expect(staleTempSeconds(cfg([]))).toBe(3660);
    expect(staleTempSeconds(cfg(["--protocol-timeout=100", "--io-timeout=400"]))).toBe(800);
    expect(staleTempSeconds(cfg(["--protocol-timeout=10", "--io-timeout=5"]))).toBe(600);
  });
});

describe("the :async command role", () => {
  test("archive-push:async parses as archive-push with role async; other commands have no role", () => {
    const cfg = parseConfig({ argv: ["--stanza=demo", "--pg1-path=/pg", "--no-compress", "--process-max=2", "archive-push:async", "/pg/pg_wal"], configSections: new Map() });
    expect([cfg.command, cfg.role, cfg.commandName, cfg.params]).toEqual(["archive-push", "async", "archive-push:async", ["/pg/pg_wal"]]);
    // Only what came from the command line is passed on to a child, minus what the caller overrides.
    expect(cfg.cliArgs(["process-max"])).toEqual(["--no-compress", "--pg1-path=/pg", "--stanza=demo"]);
    expect(() => parseConfig({ argv: ["--stanza=demo", "backup:async"], configSections: new Map() })).toThrow(/invalid command 'backup:async'/);
  });
});

describe("pushWalFile and getWalFile over local repositories", () => {
  const name = "000000010000000000000007";
  const stanza = "demo";

  function setup(repos = 1) {
    const base = temp();
    const src = join(base, name);
    const data = segment(3);
    writeFileSync(src, data);
    const targets: PushTarget[] = Array.from({ length: repos }, (_, i) => ({ repoIndex: i + 1, storage: new Storage(posix, join(base, `repo${i + 1}`)), archiveId: "15-1" }));
    const opts = { source: new Storage(posix, "/"), sourcePath: src, name, stanza, compressType: "lz4" as const, headerCheck: { version: "15", systemId: SYSTEM_ID }, staleTempSeconds: 3600 };
    return { base, src, data, targets, opts };
  }

  test("push then get: stored compressed under its SHA-1, fetched byte-identical; an identical push warns", async () => {
    const { base, data, targets, opts } = setup();
    expect(await pushWalFile(opts, targets)).toEqual({ warnings: [], failures: [] });
    const dir = join(base, "repo1/archive/demo/15-1/0000000100000000");
    expect(readdirSync(dir)).toEqual([`${name}-${sha1(data)}.lz4`]);
    const again = await pushWalFile(opts, targets);
    expect(again.warnings[0]).toContain(`WAL file '${name}' already exists in the repo1 archive with the same checksum`);

    const source: GetSource = { repoIndex: 1, storage: targets[0]!.storage, archiveId: "15-1", path: `archive/demo/15-1/0000000100000000/${name}-${sha1(data)}.lz4` };
    const out = new Storage(posix, base);
    await getWalFile(name, [source], { storage: out, path: "fetched", sync: false }, { walSegmentSize: data.length });
    expect(sha1(readFileSync(join(base, "fetched")))).toBe(sha1(data));
    // The size of a segment is checked too.
    expect((await failure(getWalFile(name, [source], { storage: out, path: "small", sync: false }, { walSegmentSize: 2 * data.length }))).kind).toBe("FormatError");
    expect(existsSync(join(base, "small"))).toBe(false);
  });

  test("stale temp files of killed pushes of any WAL in the directory are removed, a running push's are not", async () => {
    const { base, targets, opts } = setup();
    const dir = join(base, "repo1/archive/demo/15-1/0000000100000000");
    mkdirSync(dir, { recursive: true });
    const old = join(dir, `${name}.123-deadbeef.pgbunker.tmp`);
    const otherOld = join(dir, "000000010000000000000003.125-deadbeef.pgbunker.tmp");
    const recent = join(dir, `${name}.124-deadbeef.pgbunker.tmp`);
    for (const f of [old, otherOld, recent]) writeFileSync(f, "partial");
    // Just past staleTempSeconds (3600) for two, well inside it for the third.
    const past = new Date(Date.now() - 3700_000);
    for (const f of [old, otherOld]) utimesSync(f, past, past);
    utimesSync(recent, new Date(Date.now() - 3000_000), new Date(Date.now() - 3000_000));
    await pushWalFile(opts, targets);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(otherOld)).toBe(false);
    expect(existsSync(recent)).toBe(true);
  });

  test("a name that is not a WAL file is refused before anything is written", async () => {
    const { base, targets, opts } = setup();
    const src = join(base, "notwal");
    writeFileSync(src, "x");
    const e = await failure(pushWalFile({ ...opts, name: "notwal", sourcePath: src }, targets));
    expect([e.kind, e.code]).toEqual(["ParamInvalidError", 96]);
    expect(e.message).toContain(`'${src}' is not a WAL file: archive-push expects a WAL segment`);
    expect(existsSync(join(base, "repo1"))).toBe(false);
  });

  test("header check: another cluster's or another major's segment is refused before anything is written", async () => {
    const { base, src, targets, opts } = setup();
    writeFileSync(src, segment(3, SYSTEM_ID + 1n));
    const e = await failure(pushWalFile(opts, targets));
    expect(e.kind).toBe("ArchiveMismatchError");
    expect(e.message).toContain(`system-id ${SYSTEM_ID + 1n} do not match stanza version 15, system-id ${SYSTEM_ID}`);
    writeFileSync(src, segment(3, SYSTEM_ID, PG_VERSIONS.find((v) => v.major === 14)!.walMagic));
    expect((await failure(pushWalFile(opts, targets))).message).toContain("version 14, system-id");
    expect(existsSync(join(base, "repo1"))).toBe(false);
    expect(await pushWalFile({ ...opts, headerCheck: undefined }, targets)).toEqual({ warnings: [], failures: [] });
  });

  test("different content under the same name is ArchiveDuplicateError and leaves the first copy alone", async () => {
    const { base, src, data, targets, opts } = setup();
    await pushWalFile(opts, targets);
    writeFileSync(src, segment(5));
    const { failures } = await pushWalFile(opts, targets);
    expect(failures.map((f) => [f.index, f.error.kind])).toEqual([[1, "ArchiveDuplicateError"]]);
    expect(readdirSync(join(base, "repo1/archive/demo/15-1/0000000100000000"))).toEqual([`${name}-${sha1(data)}.lz4`]);
  });

  test("two repositories, one unwritable: the other gets the file, the error names the failing one", async () => {
    const { base, data, targets, opts } = setup(2);
    writeFileSync(join(base, "repo2"), ""); // a file where the repository should be: fails even as root
    const { failures } = await pushWalFile(opts, targets);
    expect(failures.map((f) => [f.index, f.error.kind])).toEqual([[2, "FileOpenError"]]);
    expect(failures[0]!.error.message).toContain(`unable to open file '${join(base, "repo2")}/archive/demo/15-1/0000000100000000/${name}.`);
    expect(readdirSync(join(base, "repo1/archive/demo/15-1/0000000100000000"))).toEqual([`${name}-${sha1(data)}.lz4`]);
  });

  test("get falls through a corrupt copy to the next repository; all corrupt is an error and writes nothing", async () => {
    const { base, data, targets, opts } = setup(2);
    await pushWalFile(opts, targets);
    const rel = `archive/demo/15-1/0000000100000000/${name}-${sha1(data)}.lz4`;
    const stored = join(base, "repo1", rel);
    const bytes = readFileSync(stored);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    writeFileSync(stored, bytes);
    const sources: GetSource[] = targets.map((t) => ({ repoIndex: t.repoIndex, storage: t.storage, archiveId: "15-1", path: rel }));
    const out = new Storage(posix, base);
    const { used, skipped } = await getWalFile(name, sources, { storage: out, path: "ok", sync: false });
    expect(used.repoIndex).toBe(2);
    // The skipped copy is reported, for archive-get to warn about.
    expect(skipped.map((f) => `${f.index}:${f.error.kind}`)).toEqual(["1:ChecksumError"]);
    expect(sha1(readFileSync(join(base, "ok")))).toBe(sha1(data));

    writeFileSync(join(base, "repo2", rel), bytes);
    const e = await failure(getWalFile(name, sources, { storage: out, path: "bad", sync: false }));
    // The damage is found by the SHA-1 in the name (lz4's own frame checksum is not computed twice).
    expect(e.message).toMatch(/unable to get 000000010000000000000007:\nrepo1: .* \[ChecksumError\] WAL file '.*' is corrupt: its content has SHA-1 [0-9a-f]{40}, its name says [0-9a-f]{40}\nrepo2: /);
    expect(readdirSync(base).filter((f) => f.startsWith("bad"))).toEqual([]);
  });

  /** posix, recording the calls a push makes; `beforeMove` runs just before each rename. */
  function recording(base: string, beforeMove?: () => void) {
    const calls: string[] = [];
    const driver = new Proxy(posix, {
      get(target, key) {
        const v = Reflect.get(target, key);
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => {
          if (key === "list") calls.push(`list owners=${(args[1] as { owners?: boolean } | undefined)?.owners ?? true}`);
          else if (key === "move") {
            calls.push("move");
            beforeMove?.();
          } else if (key === "pathSync") calls.push("pathSync");
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return { calls, target: { repoIndex: 1, storage: new Storage(driver, join(base, "repo1")), archiveId: "15-1" } satisfies PushTarget };
  }

  test("a push lists the segment's directory once, without owner names: new, identical and different content alike", async () => {
    const { base, src, data, opts } = setup();
    const { calls, target } = recording(base);
    expect(await pushWalFile(opts, [target])).toEqual({ warnings: [], failures: [] });
    expect(calls).toEqual(["list owners=false", "move"]);
    calls.length = 0;
    expect((await pushWalFile(opts, [target])).warnings[0]).toContain("already exists in the repo1 archive with the same checksum");
    expect(calls).toEqual(["list owners=false"]);
    calls.length = 0;
    writeFileSync(src, segment(5));
    expect((await pushWalFile(opts, [target])).failures.map((f) => f.error.kind)).toEqual(["ArchiveDuplicateError"]);
    expect(calls).toEqual(["list owners=false"]);
    const dir = join(base, "repo1/archive/demo/15-1/0000000100000000");
    expect(readdirSync(dir)).toEqual([`${name}-${sha1(data)}.lz4`]);
  });

  test("a rival push under way at the look that lands before our rename: ours is withdrawn, the rival's kept", async () => {
    const { base, opts } = setup();
    const dir = join(base, "repo1/archive/demo/15-1/0000000100000000");
    mkdirSync(dir, { recursive: true });
    const rivalTemp = `${name}.999-cafebabe.pgbunker.tmp`;
    const rivalCopy = `${name}-${"b".repeat(40)}.lz4`;
    writeFileSync(join(dir, rivalTemp), "rival, still writing");
    // The rival renames its temp file between our listing and our rename.
    const { calls, target } = recording(base, () => {
      if (existsSync(join(dir, rivalTemp))) renameSync(join(dir, rivalTemp), join(dir, rivalCopy));
    });
    const { failures } = await pushWalFile(opts, [target]);
    expect(failures.map((f) => f.error.kind)).toEqual(["ArchiveDuplicateError"]);
    expect(calls).toEqual(["list owners=false", "move", "list owners=false"]);
    expect(readdirSync(dir)).toEqual([rivalCopy]);
  });

  test("history and backup-label files are stored plain and replaced by a newer copy", async () => {
    const { base, targets, opts } = setup();
    const hist = join(base, "00000002.history");
    writeFileSync(hist, "1\t0/3000000\tno recovery target specified\n");
    const h = { ...opts, sourcePath: hist, name: "00000002.history" };
    await pushWalFile(h, targets);
    writeFileSync(hist, "1\t0/3000001\tno recovery target specified\n");
    await pushWalFile(h, targets);
    expect(readFileSync(join(base, "repo1/archive/demo/15-1/00000002.history"), "utf8")).toBe("1\t0/3000001\tno recovery target specified\n");
  });
});

describe("no valid repository", () => {
  test("each repository's hints are printed once: in its line, not again as the error's own hints", () => {
    const missing = err("FileMissingError", "unable to load info file 'archive.info'", ["is archive_command configured correctly?", "has a stanza-create been performed?"]);
    const e = noValidRepo([{ index: 1, error: missing }, { index: 2, error: missing }]);
    // What main.ts prints: the message, then the error's own hints.
    const printed = [e.message, ...e.hints.map((h) => `HINT: ${h}`)].join("\n");
    expect(printed.split("\n").filter((l) => l === "HINT: has a stanza-create been performed?")).toHaveLength(2); // once per repository
    expect(printed).toStartWith("unable to find a valid repository:\nrepo1: [FileMissingError] unable to load info file 'archive.info'\nHINT: is archive_command");
    expect(e.hints).toEqual([]);
  });
});
