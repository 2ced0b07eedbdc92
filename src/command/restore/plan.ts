/**
 * Where every path, link and file of a backup goes, decided before anything is touched:
 *
 *  - the data directory is pg1-path ("remap" when it differs from where the backup was taken);
 *  - tablespaces go to their original place, to --tablespace-map=NAME|OID=PATH, or under
 *    --tablespace-map-all=DIR/NAME, and pg_tblspc/OID links to them are recreated;
 *  - other links are restored as plain directories/files inside the data directory (with a
 *    warning) unless --link-all or --link-map=NAME=PATH asks for the link;
 *  - --db-include/--db-exclude: the files of the other user databases are restored as sparse
 *    zeroed files (PG_VERSION kept) so recovery can run and the databases can then be dropped;
 *  - tablespace_map is skipped (the links are made from the mappings instead).
 *
 * Pure: a manifest and options in, a plan out. The files are not copied into the plan (issue 19:
 * a million of them): `files` makes each file's plan from the manifest when it is asked for.
 */
import { isAbsolute, resolve } from "node:path";
import { err } from "../../common/error.ts";
import type { LogLevel } from "../../common/log.ts";
import { tablespaceVersionDir } from "../../postgres/exclude.ts";
import { FIRST_NORMAL_OBJECT_ID } from "../../postgres/version.ts";
import type { Manifest, ManifestBlockIncr, ManifestFile, ManifestTarget, Owner } from "../../repo/manifest.ts";

export interface PlanOptions {
  pgPath: string;
  tablespaceMap?: Record<string, string>;
  tablespaceMapAll?: string;
  linkMap?: Record<string, string>;
  linkAll?: boolean;
  dbInclude?: string[];
  dbExclude?: string[];
}

export interface PlanTarget {
  /** Manifest target name: pg_data, pg_tblspc/16384, pg_data/conf_link. */
  name: string;
  kind: "data" | "tablespace" | "link";
  /** Destination directory (a file link: the directory of the file). */
  path: string;
  /** File links: the file name inside `path`. */
  file?: string;
  /** What must be empty or missing unless --delta/--force (a file link: the file itself). */
  checkPath: string;
}

export interface PlanPath {
  name: string;
  dest: string;
  mode: number;
  user: Owner;
  group: Owner;
}

export interface PlanLink {
  name: string;
  /** The symlink to create. */
  dest: string;
  /** Where it points. */
  destination: string;
  user: Owner;
  group: Owner;
}

export interface PlanFile {
  name: string;
  dest: string;
  size: number;
  checksum?: string;
  timestamp: number;
  mode: number;
  user: Owner;
  group: Owner;
  /** Restore as a sparse zeroed file of `size` bytes (a database left out by --db-include/exclude). */
  zero: boolean;
  /** Label of the backup holding the stored bytes. */
  label: string;
  repoSize?: number;
  bundleId?: number;
  bundleOffset?: number;
  /** Block incremental: restored from its block map. */
  blockIncr?: ManifestBlockIncr;
}

/**
 * The files of the plan, made from the manifest as they are asked for: iterating yields them in
 * name order, each a new object (compare by name, not identity); nothing per file is kept.
 */
export interface PlanFiles extends Iterable<PlanFile> {
  /** How many files are restored (the manifest's, less tablespace_map). */
  readonly count: number;
  /** Their bytes (the sizes in the manifest). */
  readonly bytes: number;
  /** The plan of the file of that manifest name, or undefined (not in the backup, or skipped). */
  get(name: string): PlanFile | undefined;
  /** Only its destination, without making its plan (what the delta clean asks). */
  dest(name: string): string | undefined;
  /** The manifest record number of a restored file (-1: none): what the final fsync keeps per file. */
  indexOf(name: string): number;
  /** The manifest name of record number `index`. */
  nameAt(index: number): string;
  /** In restore order (`fileOrder`); only a reference per manifest file is held while it runs. */
  inOrder(): Generator<PlanFile>;
}

export interface PlanMessage {
  level: LogLevel;
  message: string;
}

export interface RestorePlan {
  targets: PlanTarget[];
  /** Directories, parents before children. */
  paths: PlanPath[];
  links: PlanLink[];
  files: PlanFiles;
  /** Database ids restored as zeroed files. */
  zeroedDbs: string[];
  messages: PlanMessage[];
}

const TABLESPACE_MAP = "pg_data/tablespace_map";

export function planRestore(manifest: Manifest, opts: PlanOptions): RestorePlan {
  const messages: PlanMessage[] = [];
  const pgPath = opts.pgPath.replace(/\/+$/, "") || "/";
  if (pgPath !== manifest.pgDataPath) messages.push({ level: "info", message: `remap data directory to '${pgPath}'` });

  const targets = [{ name: "pg_data", kind: "data", path: pgPath, checkPath: pgPath } as PlanTarget];
  targets.push(...tablespaceTargets(manifest, pgPath, opts, messages));
  targets.push(...linkTargets(manifest, pgPath, opts, messages));
  const destOf = destinationMapper(targets);

  const zeroedDbs = selectiveRestore(manifest, opts, messages);
  const zeroed = new Set(zeroedDbs);

  const paths: PlanPath[] = [];
  for (const p of [...manifest.paths.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const dest = destOf(p.name);
    if (dest !== undefined) paths.push({ name: p.name, dest, mode: parseInt(p.mode, 8), user: p.user, group: p.group });
  }

  const links: PlanLink[] = [];
  const linkTargetByName = new Map(targets.filter((t) => t.kind !== "data").map((t) => [linkNameOf(t), t]));
  for (const l of manifest.links.values()) {
    const target = linkTargetByName.get(l.name);
    const isTargetLink = [...manifest.targets.values()].some((t) => t.type === "link" && linkNameOfManifest(t) === l.name);
    if (isTargetLink && !target) continue; // restored as a plain directory or file
    const slash = l.name.lastIndexOf("/");
    const parent = destOf(l.name.slice(0, slash));
    if (parent === undefined) continue;
    const destination = target ? (target.file ? `${target.path}/${target.file}` : target.path) : l.destination;
    links.push({ name: l.name, dest: `${parent}/${l.name.slice(slash + 1)}`, destination, user: l.user, group: l.group });
  }

  // Every file must fall under a target: checked now, before anything is touched (and counted).
  const totals = { count: 0, bytes: 0 };
  for (const f of manifest.files.sorted()) {
    if (f.name === TABLESPACE_MAP) {
      messages.push({ level: "detail", message: "skip 'tablespace_map' -- tablespace links will be created based on mappings" });
      continue;
    }
    if (destOf(f.name) === undefined) throw err("FormatError", `manifest file '${f.name}' is not under any target of backup ${manifest.backup.label}`);
    totals.count++;
    totals.bytes += f.size;
  }
  const files = planFiles(manifest, destOf, zeroed, totals);
  return { targets, paths, links, files, zeroedDbs, messages };
}

/** The files of the plan over the manifest's own objects (see PlanFiles). */
function planFiles(manifest: Manifest, destOf: (name: string) => string | undefined, zeroed: Set<string>, totals: { count: number; bytes: number }): PlanFiles {
  const restored = (f: ManifestFile | undefined): f is ManifestFile => f !== undefined && f.name !== TABLESPACE_MAP;
  const make = (f: ManifestFile): PlanFile => ({
    name: f.name,
    dest: destOf(f.name)!,
    size: f.size,
    checksum: f.checksum,
    timestamp: f.timestamp,
    mode: parseInt(f.mode, 8),
    user: f.user,
    group: f.group,
    zero: zeroed.size > 0 && isZeroed(f.name, zeroed),
    label: manifest.fileLabel(f),
    repoSize: f.repoSize,
    bundleId: f.bundleId,
    bundleOffset: f.bundleOffset,
    blockIncr: f.blockIncr && f.blockIncr.mapSize > 0 ? f.blockIncr : undefined,
  });
  return {
    ...totals,
    get: (name) => {
      const f = manifest.files.get(name);
      return restored(f) ? make(f) : undefined;
    },
    dest: (name) => (name !== TABLESPACE_MAP && manifest.files.has(name) ? destOf(name) : undefined),
    indexOf: (name) => (name === TABLESPACE_MAP ? -1 : manifest.files.indexOf(name)),
    nameAt: (index) => manifest.files.nameAt(index),
    *[Symbol.iterator]() {
      for (const f of manifest.files.sorted()) if (restored(f)) yield make(f);
    },
    *inOrder() {
      // Record numbers, sorted as fileOrder sorts files (sizes from the store's own array).
      const files = manifest.files;
      const order = files.indices().sort((a, b) => files.sizeAt(b) - files.sizeAt(a) || files.compareNames(a, b));
      for (const r of order) {
        const f = files.at(r);
        if (restored(f)) yield make(f);
      }
    },
  };
}

/** The order files are restored in: largest first, so the long ones do not start last. */
export function fileOrder(a: { size: number; name: string }, b: { size: number; name: string }): number {
  return b.size - a.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** The link in the data directory that stands for a non-data target. */
function linkNameOf(t: PlanTarget): string {
  return t.kind === "tablespace" ? `pg_data/${t.name}` : t.name;
}

function linkNameOfManifest(t: ManifestTarget): string {
  return t.tablespaceId !== undefined ? `pg_data/${t.name}` : t.name;
}

function inside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}

function checkOutsideData(name: string, dest: string, pgPath: string): void {
  if (inside(dest, pgPath)) throw err("LinkDestinationError", `link '${name}' destination '${dest}' is in PGDATA`, "choose a destination outside the data directory.");
}

function tablespaceTargets(manifest: Manifest, pgPath: string, opts: PlanOptions, messages: PlanMessage[]): PlanTarget[] {
  const spaces = manifest.tablespaces();
  const map = opts.tablespaceMap ?? {};
  for (const key of Object.keys(map))
    if (!spaces.some((t) => t.tablespaceName === key || t.tablespaceId === key))
      throw err("TablespaceMapError", `unable to remap invalid tablespace '${key}'`, `tablespaces in this backup: ${spaces.map((t) => `${t.tablespaceName} (${t.tablespaceId})`).join(", ") || "none"}.`);
  const versionDir = tablespaceVersionDir(manifest.db.version, manifest.db.catalogVersion);
  return spaces.map((t) => {
    const mapped = map[t.tablespaceName!] ?? map[t.tablespaceId!];
    let path = t.path;
    if (mapped !== undefined) path = resolve(pgPath, mapped);
    else if (opts.tablespaceMapAll !== undefined) path = `${resolve(pgPath, opts.tablespaceMapAll)}/${t.tablespaceName}`;
    if (path !== t.path) messages.push({ level: "info", message: `map tablespace '${t.name}' to '${path}'` });
    checkOutsideData(t.name, path, pgPath);
    return { name: t.name, kind: "tablespace", path, checkPath: `${path}/${versionDir}` } as PlanTarget;
  });
}

function linkTargets(manifest: Manifest, pgPath: string, opts: PlanOptions, messages: PlanMessage[]): PlanTarget[] {
  const links = [...manifest.targets.values()].filter((t) => t.type === "link" && t.tablespaceId === undefined).sort((a, b) => (a.name < b.name ? -1 : 1));
  const short = (t: ManifestTarget) => t.name.replace(/^pg_data\//, "");
  const map = opts.linkMap ?? {};
  for (const key of Object.keys(map))
    if (!links.some((t) => short(t) === key))
      throw err("LinkMapError", `unable to map link '${key}'`, "Does the link reference a valid backup path or file?");
  const out: PlanTarget[] = [];
  for (const t of links) {
    const mapped = map[short(t)];
    if (mapped === undefined && !opts.linkAll) {
      messages.push({
        level: "warn",
        message: t.file !== undefined
          ? `file link '${short(t)}' will be restored as a file at the same location`
          : `contents of directory link '${short(t)}' will be restored in a directory at the same location`,
      });
      continue;
    }
    let path = t.path;
    let file = t.file;
    if (mapped !== undefined) {
      const dest = isAbsolute(mapped) ? mapped : resolve(pgPath, mapped);
      messages.push({ level: "info", message: `map link '${short(t)}' to '${dest}'` });
      if (file !== undefined) {
        const slash = dest.lastIndexOf("/");
        path = dest.slice(0, slash) || "/";
        file = dest.slice(slash + 1);
      } else path = dest;
    }
    const full = file !== undefined ? `${path}/${file}` : path;
    checkOutsideData(short(t), full, pgPath);
    out.push({ name: t.name, kind: "link", path, file, checkPath: full });
  }
  return out;
}

/** Manifest name → absolute destination, by the longest target the name falls under. */
function destinationMapper(targets: PlanTarget[]): (name: string) => string | undefined {
  const byLength = [...targets].sort((a, b) => b.name.length - a.name.length);
  return (name) => {
    for (const t of byLength) {
      if (name === t.name) return t.file !== undefined ? `${t.path}/${t.file}` : t.path;
      if (t.file === undefined && name.startsWith(`${t.name}/`)) return `${t.path === "/" ? "" : t.path}${name.slice(t.name.length)}`;
    }
    return undefined;
  };
}

/** Database directories of the backup: base/ID and pg_tblspc/OID/PG_x/ID. */
const DB_DIR_RE = /^(?:pg_data\/base|pg_tblspc\/\d+\/[^/]+)\/(\d+)$/;
const DB_FILE_RE = /^(?:pg_data\/base|pg_tblspc\/\d+\/[^/]+)\/(\d+)\/([^/]+)$/;

function isZeroed(name: string, zeroed: Set<string>): boolean {
  const m = DB_FILE_RE.exec(name);
  return m !== null && zeroed.has(m[1]!) && m[2] !== "PG_VERSION";
}

/** --db-include / --db-exclude → ids of the databases to zero (empty when neither is given). */
function selectiveRestore(manifest: Manifest, opts: PlanOptions, messages: PlanMessage[]): string[] {
  const include = opts.dbInclude ?? [];
  const exclude = opts.dbExclude ?? [];
  if (include.length === 0 && exclude.length === 0) return [];

  const found = new Set<string>();
  for (const p of manifest.paths.keys()) {
    const m = DB_DIR_RE.exec(p);
    if (m) found.add(m[1]!);
  }
  const foundList = [...found].sort();
  messages.push({ level: "detail", message: `databases found for selective restore (${foundList.join(", ")})` });

  const idOf = (db: string): string | undefined => {
    const byName = manifest.dbs.get(db);
    if (byName && found.has(String(byName.id))) return String(byName.id);
    return /^\d+$/.test(db) && found.has(db) ? db : undefined;
  };
  const excludeIds = new Set<string>();
  for (const db of exclude) {
    const id = idOf(db);
    if (id === undefined) throw err("DbMissingError", `database to exclude '${db}' does not exist`, `databases in this backup: ${[...manifest.dbs.keys()].join(", ")}.`);
    excludeIds.add(id);
  }
  const includeIds = new Set<string>();
  for (const db of include) {
    const id = idOf(db);
    if (id === undefined) throw err("DbMissingError", `database to include '${db}' does not exist`, `databases in this backup: ${[...manifest.dbs.keys()].join(", ")}.`);
    if (Number(id) < FIRST_NORMAL_OBJECT_ID) throw err("DbInvalidError", "system databases (template0, postgres, etc.) are included by default", `remove --db-include=${db}.`);
    if (excludeIds.has(id)) throw err("DbInvalidError", `database to include '${db}' is in the exclude list`, "a database cannot be both included and excluded.");
    includeIds.add(id);
  }
  const zeroed = foundList.filter((id) => excludeIds.has(id) || (includeIds.size > 0 && Number(id) >= FIRST_NORMAL_OBJECT_ID && !includeIds.has(id)));
  if (zeroed.length) messages.push({ level: "detail", message: `databases excluded (zeroed) from selective restore (${zeroed.join(", ")})` });
  return zeroed;
}
