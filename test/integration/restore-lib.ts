/**
 * Shared by the restore integration tests: a cluster archiving into a stanza (through pgbackrest
 * or pgbunker), one config file both tools read, and ways to compare restored trees.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, mkdirAsPostgres, tempDir, type RunResult } from "../harness/cluster.ts";
import { BINARY, ensureBuilt, pgbackrestOk, pgbunker, writeConfig } from "../harness/pgbunker.ts";

export const STANZA = "demo";

export interface Lab {
  base: string;
  cluster: Cluster;
  config: string;
  repo: string;
  /** pgbunker with --config and --stanza. */
  bunker(args: string[], opts?: { asRoot?: boolean }): RunResult;
  bunkerOk(args: string[], opts?: { asRoot?: boolean }): string;
  /** pgbackrest with --config and --stanza. */
  backrest(args: string[]): string;
  destroy(): Promise<void>;
}

export interface LabOptions {
  major?: number;
  /** Who archives WAL (archive_command). */
  archiver?: "pgbackrest" | "pgbunker";
  /** Extra [global] settings (a second repository, bundles, a cipher), given the lab's base directory. */
  global?: (base: string) => Record<string, string | number | boolean>;
}

export async function makeLab(opts: LabOptions = {}): Promise<Lab> {
  ensureBuilt();
  const base = tempDir("pgb-restore-");
  for (const d of ["repo", "log", "lock", "spool"]) mkdirAsPostgres(join(base, d));
  const config = join(base, "pgbackrest.conf");
  const archiver = opts.archiver === "pgbunker" ? BINARY : "pgbackrest";
  const cluster = await Cluster.create({
    major: opts.major,
    baseDir: base,
    conf: { archive_mode: "on", archive_command: `'${archiver} --config=${config} --stanza=${STANZA} archive-push %p'` },
  });
  writeConfig(config, {
    global: {
      "repo1-path": join(base, "repo"),
      "log-path": join(base, "log"),
      "lock-path": join(base, "lock"),
      "spool-path": join(base, "spool"),
      "log-level-console": "warn",
      "log-level-file": "detail",
      "compress-type": "lz4",
      "start-fast": true,
      ...opts.global?.(base),
    },
    [STANZA]: { "pg1-path": cluster.dataDir, "pg1-port": cluster.port, "pg1-socket-path": cluster.socketDir },
  });
  const common = [`--config=${config}`, `--stanza=${STANZA}`];
  const lab: Lab = {
    base,
    cluster,
    config,
    repo: join(base, "repo"),
    bunker: (args, o) => pgbunker([...common, ...args], o),
    bunkerOk: (args, o) => {
      const r = pgbunker([...common, ...args], o);
      if (r.code !== 0) throw new Error(`pgbunker ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    },
    backrest: (args) => pgbackrestOk([...common, ...args]),
    destroy: async () => {
      if (process.env.PGBUNKER_KEEP_TEST_DIRS) return console.error(`kept ${base}`);
      await cluster.destroy();
      rmSync(base, { recursive: true, force: true });
    },
  };
  cluster.start();
  return lab;
}

/** A restored data directory attached as a cluster of its own (own port, socket beside it). */
export async function attachRestored(dataDir: string, major?: number): Promise<Cluster> {
  return Cluster.attach(dataDir, major);
}

/** Start a restored cluster without archiving (it must not push a new timeline into the stanza). */
export async function startRestored(c: Cluster): Promise<void> {
  c.start("-c archive_mode=off");
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await c.scalar("select pg_is_in_recovery()::text")) === "false") return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`restored cluster did not finish recovery:\n${c.tailLog()}`);
    await Bun.sleep(100);
  }
}

export interface TreeEntry {
  type: "file" | "dir" | "link";
  mode: number;
  size: number;
  sha1?: string;
  link?: string;
  ino: number;
}

/** Every entry under a directory (links not followed): type, mode, size, SHA-1, inode. */
export function tree(dir: string, prefix = "", out = new Map<string, TreeEntry>()): Map<string, TreeEntry> {
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const full = join(dir, rel);
    const st = lstatSync(full);
    if (st.isSymbolicLink()) out.set(rel, { type: "link", mode: 0, size: 0, link: readlinkSync(full), ino: st.ino });
    else if (st.isDirectory()) {
      out.set(rel, { type: "dir", mode: st.mode & 0o7777, size: 0, ino: st.ino });
      tree(dir, rel, out);
    } else out.set(rel, { type: "file", mode: st.mode & 0o7777, size: st.size, sha1: createHash("sha1").update(readFileSync(full)).digest("hex"), ino: st.ino });
  }
  return out;
}

/** Entries as comparable text lines (without inodes), leaving out what differs by design. */
export function treeLines(t: Map<string, TreeEntry>, skip: (rel: string) => boolean = () => false): string[] {
  return [...t].filter(([rel]) => !skip(rel)).map(([rel, e]) => `${rel} ${e.type} ${e.mode.toString(8)} ${e.size} ${e.sha1 ?? e.link ?? ""}`);
}

export function countLines(file: string, re: RegExp): number {
  return readFileSync(file, "utf8").split("\n").filter((l) => re.test(l)).length;
}
