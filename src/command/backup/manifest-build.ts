/**
 * Build the file list of a backup from the data directory: walk pg_data (and the tablespaces and
 * other symlinked directories it points to), leave out what PostgreSQL says a backup must skip,
 * and record every file, directory and link with its size, time, mode and owner. Checksums are
 * filled in later as the files are copied.
 */
import { err } from "../../common/error.ts";
import { logDetail, logWarn } from "../../common/log.ts";
import { excludeDecision, inRelationDir, RELATION_FILE_RE, unloggedSkips, type ExcludeRules } from "../../postgres/exclude.ts";
import type { PgTablespace } from "../../postgres/queries.ts";
import type { Manifest, ManifestFile, Owner } from "../../repo/manifest.ts";
import type { Storage, StorageInfo } from "../../storage/storage.ts";

const mode = (m: number) => m.toString(8).padStart(4, "0");
const owner = (name: string | undefined): Owner => name ?? false;
/** Entries read at once from a directory (see walk). */
const LIST_BATCH = 4096;
const isInitFork = (n: string) => RELATION_FILE_RE.exec(n)?.[3] === "init";

export interface BuildInput {
  pg: Storage;
  manifest: Manifest;
  rules: ExcludeRules;
  /** Tablespace names by OID (from the database when online). */
  tablespaces: readonly PgTablespace[];
}

/** Fill manifest targets, paths, links and files from the data directory. */
export async function buildFileList(input: BuildInput): Promise<void> {
  const { pg, manifest: m, rules } = input;
  const root = await pg.info("", { followLink: true });
  if (!root || root.type !== "path") throw err("PathMissingError", `data directory '${pg.path()}' does not exist`, "check pg1-path.");
  m.targets.set("pg_data", { name: "pg_data", path: pg.path(), type: "path" });
  m.paths.set("pg_data", { name: "pg_data", mode: mode(root.mode), user: owner(root.user), group: owner(root.group) });

  const tsNames = new Map(input.tablespaces.map((t) => [String(t.oid), t.name]));

  /**
   * Walk one directory. `rel` is relative to pg_data ("base/5"); `name` is the manifest name of the
   * directory ("pg_data/base/5", or "pg_tblspc/16394/..." inside a tablespace).
   */
  const walk = async (dirPath: string, rel: string, name: string): Promise<void> => {
    const parts = rel === "" ? [] : rel.split("/");
    const relationDir = inRelationDir([...parts, "x"], rules);
    // A directory is read a batch at a time (a database of a million relations is never one list),
    // each batch in name order; a directory that fits in one batch is walked in name order.
    let batches = 0;
    let initFork = false;
    for await (const entries of pg.listBatches(dirPath, { ignoreMissing: true }, LIST_BATCH)) {
      batches++;
      entries.sort((a, b) => (a.name < b.name ? -1 : 1));
      const files = relationDir ? entries.filter((e) => e.type === "file").map((e) => e.name) : [];
      if (files.some(isInitFork)) initFork = true;
      await walkEntries(entries, dirPath, rel, name, unloggedSkips(files));
    }
    // Unlogged relations (an init fork) whose files fell into other batches: dropped once all are in.
    if (initFork && batches > 1) {
      const names: string[] = [];
      for await (const entries of pg.listBatches(dirPath, { ignoreMissing: true, owners: false }, LIST_BATCH))
        for (const e of entries) if (e.type === "file") names.push(e.name);
      for (const n of unloggedSkips(names)) m.files.delete(`${name}/${n}`);
    }
  };

  const walkEntries = async (entries: StorageInfo[], dirPath: string, rel: string, name: string, unlogged: ReadonlySet<string>): Promise<void> => {
    for (const e of entries) {
      const childRel = rel === "" ? e.name : `${rel}/${e.name}`;
      const childName = `${name}/${e.name}`;
      const childPath = dirPath === "" ? e.name : `${dirPath}/${e.name}`;
      const decision = excludeDecision(childRel, e.type, rules);
      if (decision === "skip" || unlogged.has(e.name)) continue;

      if (e.type === "link") {
        await addLink(childPath, childRel, childName, e, decision === "skip-contents");
        continue;
      }
      if (e.type === "path") {
        m.paths.set(childName, { name: childName, mode: mode(e.mode), user: owner(e.user), group: owner(e.group) });
        if (decision === "skip-contents") {
          // pg_wal/archive_status must exist for recovery; everything else in these dirs is transient.
          if (childRel === "pg_wal" || childRel === "pg_xlog") {
            const st = await pg.info(`${childPath}/archive_status`, { ignoreMissing: true, followLink: true });
            if (st?.type === "path") m.paths.set(`${childName}/archive_status`, { name: `${childName}/archive_status`, mode: mode(st.mode), user: owner(st.user), group: owner(st.group) });
          }
          continue;
        }
        await walk(childPath, childRel, childName);
        continue;
      }
      addFile(childName, e);
    }
  };

  const addFile = (name: string, e: StorageInfo) => {
    const f: ManifestFile = { name, size: e.size, timestamp: e.mtime, mode: mode(e.mode), user: owner(e.user), group: owner(e.group) };
    m.files.set(name, f);
  };

  const addLink = async (linkPath: string, rel: string, name: string, e: StorageInfo, skipContents: boolean) => {
    const dest = e.linkDestination!;
    const parts = rel.split("/");
    const isTablespace = parts.length === 2 && parts[0] === "pg_tblspc";
    const destAbs = dest.startsWith("/") ? dest : `${pg.path(linkPath).replace(/\/[^/]*$/, "")}/${dest}`;
    const target = await pg.info(destAbs, { ignoreMissing: true, followLink: true });
    if (!target) {
      logWarn(`link '${pg.path(linkPath)}' points to '${dest}', which does not exist: skipped`);
      return;
    }
    m.links.set(name, { name, destination: dest, user: owner(e.user), group: owner(e.group) });

    if (isTablespace) {
      const oid = parts[1]!;
      if (!/^\d+$/.test(oid)) throw err("LinkDestinationError", `tablespace link '${rel}' does not have a numeric name`);
      const tsName = tsNames.get(oid);
      const tname = `pg_tblspc/${oid}`;
      m.targets.set(tname, { name: tname, path: destAbs, type: "link", tablespaceId: oid, tablespaceName: tsName ?? `ts${oid}` });
      m.paths.set("pg_tblspc", m.paths.get("pg_tblspc") ?? { name: "pg_tblspc", mode: mode(target.mode), user: owner(target.user), group: owner(target.group) });
      m.paths.set(tname, { name: tname, mode: mode(target.mode), user: owner(target.user), group: owner(target.group) });
      await walk(linkPath, rel, tname);
      return;
    }

    if (target.type === "path") {
      m.targets.set(name, { name, path: destAbs, type: "link" });
      m.paths.set(name, { name, mode: mode(target.mode), user: owner(target.user), group: owner(target.group) });
      if (!skipContents) await walk(linkPath, rel, name);
      return;
    }
    if (target.type === "file") {
      const slash = destAbs.lastIndexOf("/");
      m.targets.set(name, { name, path: destAbs.slice(0, slash) || "/", file: destAbs.slice(slash + 1), type: "link" });
      addFile(name, target);
      return;
    }
    logWarn(`link '${pg.path(linkPath)}' points to a special file: skipped`);
  };

  await walk("", "", "pg_data");
  logDetail(`manifest: ${m.files.size} files, ${m.paths.size} paths, ${m.links.size} links`);
}
