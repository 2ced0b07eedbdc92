/**
 * info --output=json: the structure and keys of pgBackRest 2.45's json, so monitoring written for
 * pgBackRest works unchanged. Keys are sorted and there is no whitespace (jsonRender), system ids
 * stay exact (bigint). pgbunker adds one key, and only when it applies: status.stopped = true when a
 * stop file exists.
 */
import { jsonRender } from "../../common/json.ts";
import { backupOrder, stanzaCipher, stanzaStatus, type BackupDetail, type InfoBackup, type StanzaInfo } from "./model.ts";

function backupJson(b: InfoBackup, withDetail: boolean): Record<string, unknown> {
  const r = b.record;
  const out: Record<string, unknown> = {
    annotation: r.annotation && Object.keys(r.annotation).length ? r.annotation : undefined,
    archive: { start: r.archiveStart ?? null, stop: r.archiveStop ?? null },
    backrest: { format: r.format, version: r.programVersion },
    database: { id: r.dbId, "repo-key": b.repoKey },
    error: r.error,
    info: {
      delta: r.sizeDelta,
      // Block incremental: the map sizes replace the set's size (as pgBackRest 2.59 shows them).
      repository: r.repoSizeMap === undefined
        ? { delta: r.repoSizeDelta, size: r.repoSize }
        : { delta: r.repoSizeDelta, "delta-map": r.repoSizeMapDelta ?? 0, "size-map": r.repoSizeMap },
      size: r.size,
    },
    label: r.label,
    lsn: { start: r.lsnStart ?? null, stop: r.lsnStop ?? null },
    prior: r.prior ?? null,
    reference: r.reference.length ? r.reference : null,
    timestamp: { start: r.timestampStart, stop: r.timestampStop },
    type: r.type,
  };
  if (withDetail) Object.assign(out, detailJson(b.detail));
  return out;
}

function detailJson(d: BackupDetail | undefined): Record<string, unknown> {
  return {
    "database-ref": d && d.databases.length ? d.databases : null,
    "error-list": d && d.errorFiles.length ? d.errorFiles : undefined,
    link: d && d.links.length ? d.links : null,
    tablespace: d && d.tablespaces.length ? d.tablespaces : null,
  };
}

export function stanzaJson(s: StanzaInfo, withDetail: boolean): Record<string, unknown> {
  const status = stanzaStatus(s);
  return {
    archive: s.repos.flatMap((r) =>
      r.archives.map((a) => ({ database: { id: a.dbId, "repo-key": r.key }, id: a.archiveId, max: a.max, min: a.min })),
    ),
    backup: s.repos
      .flatMap((r) => r.backups)
      .sort(backupOrder)
      .map((b) => backupJson(b, withDetail)),
    cipher: stanzaCipher(s),
    db: s.repos.flatMap((r) => r.dbs.map((d) => ({ id: d.id, "repo-key": r.key, "system-id": d.systemId, version: d.version }))),
    name: s.name,
    repo: s.repos.map((r) => ({ cipher: r.cipher, key: r.key, status: { code: r.status.code, message: r.error ?? r.status.message } })),
    status: {
      code: status.code,
      lock: { backup: { held: s.lock.held } },
      message: status.message,
      stopped: s.stopped ? true : undefined,
    },
  };
}

/** The whole document: an array of stanzas, no trailing newline (as pgBackRest prints it). */
export function infoJson(stanzas: readonly StanzaInfo[], withDetail: boolean): string {
  return jsonRender(stanzas.map((s) => stanzaJson(s, withDetail)));
}
