/**
 * check: is this stanza ready to be backed up and restored?
 *
 *  1. Connect to every configured cluster; the primary must be among them.
 *  2. Standbys: the stanza in each repository must be theirs (no WAL switch on a standby).
 *  3. Primary: archive_mode on (not 'always' unless archive-mode-check=n), archive_command runs
 *     pgbunker (or pgbackrest: same repository format), the stanza in each repository is this
 *     cluster's.
 *  4. Force a WAL switch and wait, up to archive-timeout, until the switched segment is in the
 *     archive of every repository: proof that archive_command works end to end.
 */
import { err } from "../../common/error.ts";
import { logInfo, logWarn } from "../../common/log.ts";
import { waitFor } from "../../common/time.ts";
import { configFilesText } from "../../config/location.ts";
import type { Config } from "../../config/parse.ts";
import { walSwitch } from "../../postgres/queries.ts";
import { loadArchiveInfo } from "../../repo/archive-info.ts";
import { loadBackupInfo } from "../../repo/backup-info.ts";
import { walFind } from "../../repo/wal-find.ts";
import type { Storage } from "../../storage/storage.ts";
import { repoCipherPass, repoIndexes } from "../archive/common.ts";
import { connectClusters, type PgConnection } from "../shared/pg-cluster.ts";
import { storageRepo } from "../shared/storage.ts";

interface Repo {
  index: number;
  storage: Storage;
  pass?: string;
}

export async function run(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  // Hosts migrating from pgBackRest may have both /etc/pgbunker and /etc/pgbackrest: say which was used.
  logInfo(configFilesText(cfg.configFiles));
  const repos: Repo[] = [];
  for (const index of repoIndexes(cfg)) repos.push({ index, storage: await storageRepo(cfg, { repo: index, readOnly: true }), pass: repoCipherPass(cfg, index) });

  const clusters = await connectClusters(cfg, { primaryRequired: true });
  try {
    if (cfg.bool("backup-standby") && clusters.standbys.length === 0)
      logWarn("option backup-standby is set but no standby could be checked: a backup will fail until one is configured and running");
    for (const standby of clusters.standbys) {
      for (const repo of repos) {
        logInfo(`check repo${repo.index} (standby)`);
        await checkStanza(stanza, repo, await identity(standby));
      }
      logInfo("switch wal not performed because this is a standby");
    }

    const primary = clusters.primary!;
    checkArchiveSettings(cfg, primary);
    const id = await identity(primary);
    const archiveIds = new Map<number, string>();
    for (const repo of repos) {
      logInfo(`check repo${repo.index} configuration (primary)`);
      archiveIds.set(repo.index, await checkStanza(stanza, repo, id));
    }
    if (cfg.bool("archive-check")) await checkArchiving(cfg, stanza, primary, repos, archiveIds);
  } finally {
    await clusters.close();
  }
  return 0;
}

async function identity(c: PgConnection): Promise<{ version: string; systemId: bigint }> {
  const rows = await c.db.query("select system_identifier::text as id from pg_control_system()");
  return { version: c.info.facts.version, systemId: BigInt(rows[0]!.id!) };
}

function checkArchiveSettings(cfg: Config, primary: PgConnection): void {
  const { archiveMode, archiveCommand } = primary.info;
  if (archiveMode === "off") throw err("ArchiveDisabledError", "archive_mode must be enabled", "set archive_mode = on in postgresql.conf and restart PostgreSQL.");
  if (archiveMode === "always" && cfg.bool("archive-mode-check"))
    throw err(
      "FeatureNotSupportedError",
      "archive_mode=always not supported",
      "a standby archiving the same WAL can push copies with other checksums: set archive_mode = on, or use --no-archive-mode-check if the standbys archive elsewhere.",
    );
  if (!/pgbunker|pgbackrest/.test(archiveCommand))
    throw err(
      "ArchiveCommandInvalidError",
      `archive_command '${archiveCommand}' must contain pgbunker`,
      `set archive_command = 'pgbunker --stanza=${cfg.str("stanza")} archive-push %p' in postgresql.conf and reload PostgreSQL.`,
    );
}

/** The stanza in a repository exists and is this cluster's; returns its current archive id. */
async function checkStanza(stanza: string, repo: Repo, id: { version: string; systemId: bigint }): Promise<string> {
  const archive = (await loadArchiveInfo(repo.storage, stanza, { cipherPass: repo.pass }))!;
  archive.checkCurrent(id.version, id.systemId);
  const backup = (await loadBackupInfo(repo.storage, stanza, { cipherPass: repo.pass }))!;
  backup.checkCurrent(id.version, id.systemId);
  return archive.archiveId;
}

/** One WAL switch, then wait for the segment in every repository. */
async function checkArchiving(cfg: Config, stanza: string, primary: PgConnection, repos: Repo[], archiveIds: Map<number, string>): Promise<void> {
  // A restore point writes WAL, so the switch below always completes a segment.
  await primary.db.query("select pg_create_restore_point('pgbunker Archive Check')::text");
  const segment = await walSwitch(primary.db, primary.info.facts.major);
  const timeout = cfg.get("archive-timeout");
  for (const repo of repos) {
    logInfo(`check repo${repo.index} archive for WAL (primary)`);
    const archiveId = archiveIds.get(repo.index)!;
    const found = await waitFor(timeout, () => walFind(repo.storage, stanza, archiveId, segment));
    if (!found)
      throw err("ArchiveTimeoutError", `WAL segment ${segment} was not archived before the ${Math.round(timeout * 1000)}ms timeout`, [
        "check the archive_command to ensure that all options are correct (especially --stanza).",
        "check the PostgreSQL server log for errors.",
        "run the 'start' command if the stanza was previously stopped.",
      ]);
    logInfo(`WAL segment ${segment} successfully archived to '${repo.storage.path(found.path)}' on repo${repo.index}`);
  }
}
