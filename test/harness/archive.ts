/**
 * The archive tests' view of a stanza: StanzaEnv (a cluster archiving through the built pgbunker)
 * with its config named pgbackrest.conf, so that pgbackrest's own `check`, which wants its name in
 * archive_command, accepts a cluster archiving with pgbunker; plus what is stored in the archive.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { StanzaEnv, type StanzaOptions } from "./stanza.ts";

export class ArchiveEnv extends StanzaEnv {
  static override create(opts: StanzaOptions = {}): Promise<ArchiveEnv> {
    return StanzaEnv.build(ArchiveEnv, { configName: "pgbackrest.conf", ...opts });
  }

  /** The archive id directory (archive/STANZA/15-1). */
  archiveIdDir(archiveId = `${this.cluster.major}-1`): string {
    return join(this.repo, "archive", this.stanza, archiveId);
  }

  /** Segment name → stored file path, over every 16-hex directory of an archive id. */
  archivedSegments(archiveId?: string): Map<string, string> {
    return archivedSegmentsIn(this.archiveIdDir(archiveId));
  }

  /** Write some WAL, switch, and wait until PostgreSQL reports the completed segment archived. */
  async switchAndWait(timeoutMs = 30_000): Promise<string> {
    await this.cluster.query("select txid_current()");
    return this.archiveNow(timeoutMs);
  }
}

/** Segment name → stored file path, over every 16-hex directory of an archive id directory. */
export function archivedSegmentsIn(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  let subdirs: string[] = [];
  try {
    subdirs = readdirSync(dir).filter((d) => /^[0-9A-F]{16}$/.test(d));
  } catch {
    return out;
  }
  for (const d of subdirs)
    for (const f of readdirSync(join(dir, d))) {
      const m = /^([0-9A-F]{24})-[0-9a-f]{40}/.exec(f);
      if (m) out.set(m[1]!, join(dir, d, f));
    }
  return out;
}

export function sha1File(path: string): string {
  return new Bun.CryptoHasher("sha1").update(readFileSync(path)).digest("hex");
}

/** Decompress a repository file with the system tool for its extension; returns the bytes' SHA-1. */
export function sha1OfStored(path: string): string {
  const tool = path.endsWith(".lz4") ? ["lz4", "-d", "-c"] : path.endsWith(".gz") ? ["gzip", "-d", "-c"] : path.endsWith(".zst") ? ["zstd", "-d", "-c"] : path.endsWith(".bz2") ? ["bzip2", "-d", "-c"] : ["cat"];
  const r = Bun.spawnSync([...tool, path]);
  if (r.exitCode !== 0) throw new Error(`${tool.join(" ")} ${path} failed: ${r.stderr.toString()}`);
  return new Bun.CryptoHasher("sha1").update(r.stdout).digest("hex");
}
