/**
 * pgbunker restore: rebuild a data directory from a backup of the repository (made by pgbunker or
 * by pgBackRest), then leave recovery settings so PostgreSQL replays WAL through archive-get.
 *
 * Steps:
 *  1. Read the repositories in order (--repo: only that one): the first whose backup.info has the
 *     backup set asked for (--set, latest, or by --target) is restored from; its manifest.
 *  2. Plan: where the data directory, tablespaces and links go; which databases are zeroed.
 *  3. Check the destination: PostgreSQL not running there; empty, or --delta/--force on a data directory.
 *  4. Mark the restore in progress (backup.manifest in the data directory), drop pg_control.
 *  5. --delta/--force: remove what the backup does not have.
 *  6. Create directories and links.
 *  7. Restore the files in process-max workers, largest first; pg_control under a temp name.
 *  8. Write the recovery settings (postgresql.auto.conf + signal file, or recovery.conf).
 *  9. fsync every directory; remove the marker; put pg_control in place last, so an interrupted
 *     restore can never be started by mistake.
 */
import { err } from "../../common/error.ts";
import { log, logDetail, logInfo, logWarn } from "../../common/log.ts";
import { formatBytes } from "../../common/progress.ts";
import { formatTimestamp } from "../../common/time.ts";
import type { Config } from "../../config/parse.ts";
import { pgRecoveryUsesSignalFiles, pgVersion } from "../../postgres/version.ts";
import { writePieces } from "../../repo/info-file.ts";
import type { Storage } from "../../storage/storage.ts";
import { storagePg } from "../shared/storage.ts";
import { copyFiles, pgControlTemp } from "./copy.ts";
import { planRestore } from "./plan.ts";
import { AUTO_CONF, checkRecoveryInput, RECOVERY_CONF, RECOVERY_SIGNAL, recoveryFiles, STANDBY_SIGNAL, type RecoveryInput, type RecoveryType } from "./recovery.ts";
import { checkNamedTarget } from "./name-target.ts";
import { archiveGetCommand } from "./restore-command.ts";
import { loadRestoreSource } from "./source.ts";
import {
  checkEmpty, checkNotRunning, cleanTargets, createLinks, createMissingParents, createPaths, deltaAllowed, ownerResolver, PG_CONTROL, pathsToSync,
  RESTORE_MANIFEST,
} from "./target.ts";

export async function run(cfg: Config): Promise<number> {
  const started = performance.now();
  const pg = await storagePg(cfg, 1);
  const pgPath = pg.path();

  // 1. What to restore.
  const src = await loadRestoreSource(cfg);
  const { manifest } = src;
  const major = pgVersion(manifest.db.version).major;
  logInfo(`repo${src.repoIndex}: restore backup set ${src.record.label}, recovery will start at ${formatTimestamp(manifest.backup.timestampStart)}`);
  const recovery = recoveryInput(cfg, major);
  checkRecoveryInput(recovery);
  if (recovery.type === "name" && recovery.target !== undefined) await checkNamedTarget(cfg, src.stanza, src.record, manifest.db, recovery.target);

  // 2. Plan.
  const plan = planRestore(manifest, {
    pgPath,
    tablespaceMap: cfg.hash("tablespace-map"),
    tablespaceMapAll: cfg.str("tablespace-map-all"),
    linkMap: cfg.hash("link-map"),
    linkAll: cfg.bool("link-all"),
    dbInclude: cfg.list("db-include"),
    dbExclude: cfg.list("db-exclude"),
  });
  for (const m of plan.messages.filter((m) => m.level !== "detail")) log(m.level, m.message);
  if (plan.files.get(`pg_data/${PG_CONTROL}`) === undefined)
    throw err("FormatError", `backup ${src.record.label} has no ${PG_CONTROL}`, "the manifest is incomplete: restore another backup set.");
  const owners = ownerResolver(plan);

  // 3. The destination.
  await checkNotRunning(pg, pgPath);
  const deltaAsked = cfg.bool("delta") || cfg.bool("force");
  const overwrite = deltaAsked && (await deltaAllowed(pg, pgPath));
  for (const m of plan.messages.filter((m) => m.level === "detail")) logDetail(m.message);
  if (!overwrite) await checkEmpty(pg, plan);
  const dataPath = plan.paths.find((p) => p.name === "pg_data")!;
  const dataOwner = owners(dataPath.user, dataPath.group);

  // 4. Mark the restore in progress; an old pg_control must not survive a failed restore.
  await createMissingParents(pg, `${pgPath}/${RESTORE_MANIFEST}`, dataOwner);
  await writePieces(pg, `${pgPath}/${RESTORE_MANIFEST}`, manifest.renderPieces(), { mode: 0o600, ...dataOwner });
  if (overwrite && (await pg.info(`${pgPath}/${PG_CONTROL}`, { ignoreMissing: true }))) {
    logDetail(`remove '${PG_CONTROL}' so cluster will not start if restore does not complete`);
    await pg.remove(`${pgPath}/${PG_CONTROL}`);
  }

  // 5. Clean, 6. directories and links.
  const preserved = preservedFiles(recovery.type, major, pgPath);
  if (overwrite) await cleanTargets(pg, plan, new Set([`${pgPath}/${RESTORE_MANIFEST}`, ...preserved]));
  await createPaths(pg, plan.paths, owners);
  for (const t of plan.targets) if (t.file !== undefined) await createMissingParents(pg, t.checkPath, dataOwner);
  await createLinks(pg, plan.links, owners);

  // 7. Files, then fsync them all.
  const delta = !overwrite ? "none" : cfg.bool("force") && cfg.bool("delta") ? "time" : cfg.bool("delta") ? "checksum" : "none";
  const stats = await copyFiles(cfg, src, plan, { delta, preserved: new Set(preserved), owners });

  // 8. Recovery settings.
  await writeRecovery(pg, pgPath, recovery, major, dataOwner);

  // 9. Durable, then startable.
  for (const dir of pathsToSync(plan)) {
    logDetail(`sync path '${dir}'`);
    await pg.pathSync(dir);
  }
  await pg.remove(`${pgPath}/${RESTORE_MANIFEST}`);
  logInfo(`restore ${PG_CONTROL} (performed last to ensure aborted restores cannot be started)`);
  await pg.move(pgControlTemp(pgPath), `${pgPath}/${PG_CONTROL}`);
  await pg.pathSync(pgPath);

  const secs = (performance.now() - started) / 1000;
  logInfo(
    `restore size = ${formatBytes(stats.bytes)}, file total = ${plan.files.count}` +
      ` (${stats.copied} copied, ${stats.kept} kept, ${stats.zeroed} zeroed) in ${secs.toFixed(1)}s, ${formatBytes(stats.bytes / Math.max(secs, 0.001))}/s`,
  );
  return 0;
}

function recoveryInput(cfg: Config, major: number): RecoveryInput {
  return {
    major,
    type: (cfg.str("type") ?? "default") as RecoveryType,
    target: cfg.str("target"),
    targetExclusive: cfg.bool("target-exclusive"),
    targetAction: cfg.get("target-action"),
    targetTimeline: cfg.str("target-timeline"),
    options: cfg.hash("recovery-option"),
    archiveModeOff: cfg.str("archive-mode") === "off",
    restoreCommand: archiveGetCommand(cfg),
  };
}

/** --type=preserve keeps the recovery files already in the data directory. */
function preservedFiles(type: RecoveryType, major: number, pgPath: string): string[] {
  if (type !== "preserve") return [];
  const names = pgRecoveryUsesSignalFiles(major) ? [AUTO_CONF, RECOVERY_SIGNAL, STANDBY_SIGNAL] : [RECOVERY_CONF];
  return names.map((n) => `${pgPath}/${n}`);
}

async function writeRecovery(pg: Storage, pgPath: string, r: RecoveryInput, major: number, owner: { user?: string; group?: string }): Promise<void> {
  const autoConf = pgRecoveryUsesSignalFiles(major) ? await pg.get(`${pgPath}/${AUTO_CONF}`, { ignoreMissing: true }) : null;
  const files = recoveryFiles(r, autoConf === null ? null : new TextDecoder().decode(autoConf));
  for (const f of files.write) {
    if (f.content !== "") logInfo(`write ${f.name === AUTO_CONF && autoConf !== null ? "updated " : ""}${pgPath}/${f.name}`);
    await pg.put(`${pgPath}/${f.name}`, f.content, { mode: 0o600, ...owner, syncPath: false });
  }
  for (const name of files.remove) {
    if (!(await pg.info(`${pgPath}/${name}`, { ignoreMissing: true }))) continue;
    if (name === RECOVERY_CONF && pgRecoveryUsesSignalFiles(major)) logWarn(`remove ${pgPath}/${name}: PostgreSQL ${major} refuses to start with it`);
    await pg.remove(`${pgPath}/${name}`);
  }
}
