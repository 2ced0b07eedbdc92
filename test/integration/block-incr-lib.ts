/**
 * Shared by the block incremental (repo-block) integration tests: table digests to compare restored
 * data, the label a backup printed or pgBackRest lists last, a backup's manifest in a plain or an
 * encrypted repository, and the bytes a backup stored.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readBlockMap } from "../../src/repo/block-map.ts";
import { Manifest } from "../../src/repo/manifest.ts";
import type { Cluster } from "../harness/cluster.ts";
import { PGBACKREST_BIN } from "../harness/pgbunker.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { STANZA } from "./restore-lib.ts";

/** pgBackRest 2.59.1, the version that writes and reads block incremental backups. */
export const PGBR = { bin: PGBACKREST_BIN["2.59"] };

/** Row count and an order-independent digest of each table, as one comparable line. */
export async function snapshot(c: Cluster, tables: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const t of tables) parts.push(`${t}=${await c.tableChecksum(t)}`);
  return parts.join(" ");
}

/** The label pgbunker's backup printed (run with --log-level-console=info). */
export function printedLabel(out: string): string {
  const m = /new backup label = (\S+)/.exec(out);
  if (!m) throw new Error(`no backup label in:\n${out}`);
  return m[1]!;
}

/** The newest backup of repoN as pgBackRest 2.59.1 lists it. */
export function latestLabel(env: StanzaEnv, repo: number): string {
  const info = JSON.parse(env.backrestOk([`--repo=${repo}`, "info", "--output=json"], PGBR))[0].backup as { label: string }[];
  return info.at(-1)!.label;
}

/** A backup's manifest, read by pgbunker's repo-get (which decrypts an encrypted repository). */
export function manifestVia(env: StanzaEnv, repo: number, label: string): Manifest {
  return Manifest.parse(env.runOk([`--repo=${repo}`, "repo-get", `backup/${STANZA}/${label}/backup.manifest`]));
}

/** A backup's manifest read from an unencrypted repository's directory. */
export function manifestAt(repoPath: string, label: string): Manifest {
  return Manifest.parse(readFileSync(join(repoPath, "backup", STANZA, label, "backup.manifest"), "utf8"));
}

/** Files a backup stored by blocks (with a block map in this backup). */
export function blockStored(m: Manifest) {
  return m.fileList().filter((f) => f.blockIncr !== undefined && f.blockIncr.mapSize > 0 && f.reference === undefined);
}

/** Bytes stored in a backup's directory (bundles, .pgbi and other stored files; not its manifests). */
export function storedBytes(repoPath: string, label: string): number {
  let sum = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (!e.name.startsWith("backup.manifest")) sum += readFileSync(join(dir, e.name)).length;
    }
  };
  walk(join(repoPath, "backup", STANZA, label));
  return sum;
}

/**
 * Labels the block maps of a backup's own stored files point into (unencrypted repository): the
 * backups a restore of it reads blocks from.
 */
export function mapReferences(repoPath: string, label: string): Set<string> {
  const m = manifestAt(repoPath, label);
  const out = new Set<string>();
  for (const f of blockStored(m)) {
    const file = join(repoPath, "backup", STANZA, label, ...(f.bundleId ? ["bundle", String(f.bundleId)] : [`${f.name}.pgbi`]));
    const bytes = readFileSync(file);
    const end = (f.bundleOffset ?? 0) + f.repoSize!;
    for (const it of readBlockMap(bytes.subarray(end - f.blockIncr!.mapSize, end), f.blockIncr!.blockSize, f.blockIncr!.checksumSize)) out.add(m.backup.reference[it.reference]!);
  }
  return out;
}
