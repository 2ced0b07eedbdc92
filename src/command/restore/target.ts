/**
 * The destination side of a restore, before and after the files: refuse a running cluster or a
 * directory that holds data (unless --delta/--force on a real data directory), decide who owns
 * what, remove what the backup does not have, and create directories and links.
 */
import { err } from "../../common/error.ts";
import { logDetail, logWarn } from "../../common/log.ts";
import { groupId, groupName, isRoot, userId, userName } from "../../common/user.ts";
import type { Owner } from "../../repo/manifest.ts";
import type { Storage, StorageInfo } from "../../storage/storage.ts";
import type { PlanLink, PlanPath, PlanTarget, RestorePlan } from "./plan.ts";

/** Written into the data directory while a restore runs: marks it as a restore target for --delta. */
export const RESTORE_MANIFEST = "backup.manifest";
export const PG_CONTROL = "global/pg_control";

const PG_RUNNING_HINTS = (pgPath: string) => [
  `presence of 'postmaster.pid' in '${pgPath}' indicates PostgreSQL is running.`,
  "remove 'postmaster.pid' only if PostgreSQL is not running.",
];

/** A running cluster (postmaster.pid) is never restored over, whatever the options. */
export async function checkNotRunning(pg: Storage, pgPath: string): Promise<void> {
  if (await pg.info(`${pgPath}/postmaster.pid`, { ignoreMissing: true }))
    throw err("PgRunningError", "unable to restore while PostgreSQL is running", PG_RUNNING_HINTS(pgPath));
}

/**
 * --delta/--force only make sense on a data directory (or an interrupted restore): otherwise they
 * are switched off, so that a mistyped path is refused instead of emptied.
 */
export async function deltaAllowed(pg: Storage, pgPath: string): Promise<boolean> {
  if ((await pg.info(`${pgPath}/PG_VERSION`, { ignoreMissing: true })) || (await pg.info(`${pgPath}/${RESTORE_MANIFEST}`, { ignoreMissing: true }))) return true;
  logWarn(
    `--delta or --force specified but unable to find 'PG_VERSION' or '${RESTORE_MANIFEST}' in '${pgPath}' to confirm that this is a valid $PGDATA directory.` +
      "  --delta and --force have been disabled and if any files exist in the destination directories the restore will be aborted.",
  );
  return false;
}

/** Without --delta/--force every destination must be empty or missing. */
export async function checkEmpty(pg: Storage, plan: RestorePlan): Promise<void> {
  for (const t of plan.targets) {
    const info = await pg.info(t.checkPath, { ignoreMissing: true, followLink: true });
    if (info === null) continue;
    if (t.file !== undefined)
      throw err("FileExistsError", `unable to restore file '${t.checkPath}' because it already exists`, "try using --delta if this is what you intended.");
    if (info.type !== "path") throw err("PathTypeError", `unable to restore to '${t.checkPath}': it is not a directory`);
    if (((await pg.list(t.checkPath)) ?? []).length > 0)
      throw err("PathNotEmptyError", `unable to restore to path '${t.checkPath}' because it contains files`, "try using --delta if this is what you intended.");
  }
}

export interface Owners {
  user?: string;
  group?: string;
}

/**
 * Who owns the restored files. As root: the manifest's user and group, which must exist here
 * (a cluster owned by root would not start). Otherwise everything belongs to the running user;
 * a different owner in the manifest is mapped to it with a warning, as pgBackRest does.
 * Every owner of the plan is resolved now, so a missing user fails before anything is written.
 */
export function ownerResolver(plan: RestorePlan): (user: Owner, group: Owner) => Owners {
  const dataPath = plan.paths.find((p) => p.name === "pg_data");
  const root = isRoot();
  const me = { user: userName(process.getuid?.() ?? -1), group: groupName(process.getgid?.() ?? -1) };
  const pick = (kind: "user" | "group", v: Owner): string | undefined => {
    const name = v === false ? (dataPath?.[kind] || undefined) : v;
    const kindError = kind === "user" ? "UserMissingError" : "GroupMissingError";
    if (root) {
      if (name === undefined) throw err(kindError, `backup manifest names no ${kind} for the data directory`, "run the restore as the user PostgreSQL runs as.");
      if ((kind === "user" ? userId(name) : groupId(name)) === undefined)
        throw err(kindError, `${kind} '${name}' of the backup manifest does not exist on this host`, `create the ${kind} PostgreSQL ran as (${name}), or run the restore as the user that will own the cluster instead of root.`);
      return name;
    }
    if (name !== undefined && name !== me[kind]) logWarn(`unknown ${kind} '${name}' in backup manifest mapped to current ${kind}`);
    return undefined;
  };
  const resolved = new Map<string, string | undefined>();
  const one = (kind: "user" | "group", v: Owner) => {
    const key = `${kind}:${v}`;
    if (!resolved.has(key)) resolved.set(key, pick(kind, v));
    return resolved.get(key);
  };
  // The files one at a time from the manifest: spreading them would make a plan of every file.
  for (const list of [plan.paths, plan.files, plan.links])
    for (const e of list) {
      one("user", e.user);
      one("group", e.group);
    }
  return (user, group) => ({ user: one("user", user), group: one("group", group) });
}

type Expected = { type: "file" } | { type: "path" } | { type: "link"; destination: string };

/**
 * --delta/--force: remove from each destination whatever the backup does not have (or has as
 * another type, or as a link elsewhere). `keep`: absolute paths left alone (the restore's own
 * manifest, preserved recovery files).
 */
export async function cleanTargets(pg: Storage, plan: RestorePlan, keep: ReadonlySet<string>): Promise<void> {
  // Paths and links are few and mapped; a file is looked up in the plan by name (no map of every
  // file's destination: issue 19). A link wins over a file, a file over a path, for the same place.
  const paths = new Map<string, Expected>(plan.paths.map((p) => [p.dest, { type: "path" }]));
  const links = new Map<string, Expected>(plan.links.map((l) => [l.dest, { type: "link", destination: l.destination }]));
  const isFile = fileAt(plan);
  const expectedAt = (abs: string): Expected | undefined => links.get(abs) ?? (isFile(abs) ? { type: "file" } : paths.get(abs));

  for (const t of plan.targets) {
    if (t.file !== undefined) continue; // a file link target is simply overwritten
    const root = t.checkPath;
    if ((await pg.info(root, { ignoreMissing: true, followLink: true }))?.type !== "path") continue;
    logDetail(`remove invalid files/links/paths from '${root}'`);
    await pg.walk(root, async (rel: string, info: StorageInfo) => {
      const abs = `${root === "/" ? "" : root}/${rel}`;
      if (keep.has(abs)) return false;
      const want = expectedAt(abs);
      if (want && want.type === info.type && (want.type !== "link" || want.destination === info.linkDestination)) return true;
      logDetail(`remove invalid ${info.type === "path" ? "path" : info.type === "link" ? "link" : "file"} '${abs}'`);
      if (info.type === "path") await pg.pathRemove(abs, { recurse: true });
      else await pg.remove(abs);
      return false;
    });
  }
}

/**
 * Whether the plan restores a file at this absolute path: the names it would have under each
 * target (the inverse of the plan's destinations), looked up in the plan and checked back.
 */
export function fileAt(plan: RestorePlan): (abs: string) => boolean {
  const nameUnder = (t: PlanTarget, abs: string): string | undefined => {
    if (t.file !== undefined) return abs === `${t.path}/${t.file}` ? t.name : undefined;
    const prefix = t.path === "/" ? "/" : `${t.path}/`;
    return abs.startsWith(prefix) ? `${t.name}/${abs.slice(prefix.length)}` : undefined;
  };
  return (abs) => plan.targets.some((t) => {
    const name = nameUnder(t, abs);
    return name !== undefined && plan.files.dest(name) === abs;
  });
}

/** Create each directory that is missing (parents first) and give every one its mode and owner. */
export async function createPaths(pg: Storage, paths: readonly PlanPath[], owners: ReturnType<typeof ownerResolver>): Promise<void> {
  for (const p of paths) {
    const info = await pg.info(p.dest, { ignoreMissing: true, followLink: true });
    if (info === null) {
      await createMissingParents(pg, p.dest, owners(p.user, p.group));
      logDetail(`create path '${p.dest}'`);
      await pg.pathCreate(p.dest, { mode: p.mode, parents: false });
    } else if (info.type !== "path") throw err("PathTypeError", `unable to restore path '${p.dest}': a file is in the way`);
    await pg.setAttributes(p.dest, { mode: p.mode, ...owners(p.user, p.group) });
  }
}

/** Parents of a target root (a tablespace under a new --tablespace-map-all dir): 0700, owned like the data. */
export async function createMissingParents(pg: Storage, dest: string, owner: Owners): Promise<void> {
  const missing: string[] = [];
  for (let dir = dest.slice(0, dest.lastIndexOf("/")); dir !== ""; dir = dir.slice(0, dir.lastIndexOf("/"))) {
    if (await pg.info(dir, { ignoreMissing: true, followLink: true })) break;
    missing.unshift(dir);
  }
  for (const dir of missing) {
    await pg.pathCreate(dir, { mode: 0o700, parents: false });
    await pg.setAttributes(dir, { mode: 0o700, ...owner });
  }
}

/** Tablespace and (with --link-all/--link-map) other symlinks. */
export async function createLinks(pg: Storage, links: readonly PlanLink[], owners: ReturnType<typeof ownerResolver>): Promise<void> {
  for (const l of links) {
    const info = await pg.info(l.dest, { ignoreMissing: true });
    if (info?.type === "link" && info.linkDestination === l.destination) continue;
    if (info) throw err("LinkOpenError", `unable to create link '${l.dest}': something else is in the way`, "use --delta to replace it.");
    logDetail(`create symlink '${l.dest}' to '${l.destination}'`);
    await pg.linkCreate(l.destination, l.dest);
    await pg.setAttributes(l.dest, { ...owners(l.user, l.group), followLink: false });
  }
}

/** Directories to fsync at the end: every restored directory and the parent of every file link. */
export function pathsToSync(plan: RestorePlan): string[] {
  const dirs = new Set(plan.paths.map((p) => p.dest));
  for (const t of plan.targets) if (t.file !== undefined) dirs.add(t.path);
  return [...dirs];
}
