/**
 * Shared by the restore integration tests: a stanza to restore from, restored clusters started
 * without archiving, and ways to compare restored trees.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, type RunResult } from "../harness/cluster.ts";
import { pgbunker } from "../harness/pgbunker.ts";
import { StanzaEnv, type StanzaOptions } from "../harness/stanza.ts";

export const STANZA = "demo";

/** A stanza (StanzaEnv) whose whole temp directory goes when the tests are done. */
export async function makeStanza(opts: StanzaOptions = {}): Promise<StanzaEnv> {
  return StanzaEnv.create({ global: { "log-level-console": "warn" }, ...opts, stanza: STANZA });
}

export async function removeStanza(env: StanzaEnv | undefined, extraDirs: string[] = []): Promise<void> {
  if (!env) return;
  if (process.env.RESTORE_TEST_KEEP_DIRS) return console.error(`kept ${env.base}`);
  await env.destroy();
  for (const d of [env.base, ...extraDirs]) rmSync(d, { recursive: true, force: true });
}

/** pgbunker as root with the stanza's config (lock and log paths of root's own). */
export function bunkerAsRoot(env: StanzaEnv, args: string[]): RunResult {
  return pgbunker([`--config=${env.conf}`, `--stanza=${STANZA}`, `--lock-path=${join(env.base, "lock-root")}`, `--log-path=${join(env.base, "log-root")}`, ...args], { asRoot: true });
}

/**
 * A restored data directory attached as a cluster of its own (own port, socket beside it), started
 * without archiving (its configuration would archive into the stanza) until it has promoted.
 */
export async function startRestored(dataDir: string, major?: number): Promise<Cluster> {
  const c = await Cluster.attach(dataDir, major);
  c.writeConf({ archive_mode: "off" });
  await c.startAndWaitPromoted();
  return c;
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
