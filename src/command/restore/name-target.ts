/**
 * restore --type=name: the restore point must be in the WAL recovery will read, or PostgreSQL
 * would replay to the end of the archive and stop there without saying it missed. The archive is
 * read from the backup's first segment on (command/shared/wal-scan.ts, the reader recovery-targets
 * uses), in every repository the restore may fetch WAL from (archive-get falls back across them).
 */
import { err, PgbError } from "../../common/error.ts";
import { logInfo, logWarn } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import { lsnParse } from "../../postgres/wal.ts";
import { loadArchiveInfo } from "../../repo/archive-info.ts";
import type { BackupDb, BackupRecord } from "../../repo/backup-info.ts";
import { repoCipherPass, repoIndexes } from "../archive/common.ts";
import { storageRepo } from "../shared/storage.ts";
import { scanArchiveId } from "../shared/wal-scan.ts";

export async function checkNamedTarget(cfg: Config, stanza: string, record: BackupRecord, db: Pick<BackupDb, "version" | "systemId">, name: string): Promise<void> {
  if (!record.archiveStart || !record.lsnStop) return;
  const stop = lsnParse(record.lsnStop);
  const after = new Set<string>();
  const before = new Set<string>();
  let read = 0;
  for (const index of repoIndexes(cfg)) {
    const repo = await storageRepo(cfg, { repo: index, readOnly: true });
    try {
      const info = (await loadArchiveInfo(repo, stanza, { cipherPass: repoCipherPass(cfg, index) }))!;
      for (const archiveId of info.archiveIdsFor(db.version, db.systemId)) {
        for (const t of await scanArchiveId(cfg, repo, index, stanza, archiveId, info.cipherPass, { from: record.archiveStart })) {
          read += t.segments.length;
          for (const r of t.records) if (r.event.type === "restore-point") (lsnParse(r.lsn) >= stop ? after : before).add(r.event.name);
        }
      }
    } catch (e) {
      if (!(e instanceof PgbError)) throw e;
      logWarn(`repo${index}: restore point '${name}' not checked in this repository's archive: ${e.message}`);
    } finally {
      await repo.close();
    }
    if (after.has(name)) {
      logInfo(`restore point '${name}' found in the archive of repo${index}`);
      return;
    }
  }
  if (read === 0) return; // nothing could be read: PostgreSQL will say what it finds
  const list = (s: Set<string>) => [...s].sort().join(", ") || "none";
  throw err(
    "OptionInvalidValueError",
    `restore point '${name}' is not in the archive after backup ${record.label}${before.has(name) ? " (it was made before the backup ended)" : ""}; restore points after backup ${record.label}: ${list(after)}`,
    before.has(name)
      ? `restore an earlier backup set (--set): 'pgbunker --stanza=${stanza} recovery-targets' lists each backup's targets.`
      : `check the name (they are case-sensitive); 'pgbunker --stanza=${stanza} recovery-targets' lists the restore points per timeline.`,
  );
}
