/**
 * info text output, in pgBackRest's layout (DBAs and their scripts read it):
 *
 *   stanza: NAME
 *       status: ok [(backup/expire running[ - NN.NN% complete])]
 *       cipher: none
 *
 *       db (prior|current)
 *           wal archive min/max (VERSION): MIN/MAX
 *
 *           full backup: LABEL
 *               timestamp start/stop: ... / ...
 *               wal start/stop: ... / ...
 *               database size: ..., database backup size: ...
 *               repoN: backup set size: ..., backup size: ...
 *               backup reference list: ...
 *
 * --set adds lsn start/stop, the database list, symlinks, tablespaces, the error list and the
 * annotations. Sizes use pgBackRest's short form (size.ts), times are local.
 */
import { formatTimestamp } from "../../common/time.ts";
import { formatSize } from "./size.ts";
import { backupOrder, INFO_STATUS, stanzaCipher, stanzaStatus, type InfoBackup, type InfoDb, type StanzaInfo, type Status } from "./model.ts";

const I1 = "    ";
const I2 = I1.repeat(2);
const I3 = I1.repeat(3);
const I4 = I1.repeat(4);

function statusText(st: Status): string {
  if (st.code === INFO_STATUS.ok.code) return "ok";
  if (st.code === INFO_STATUS.mixed.code) return "mixed";
  return `error (${st.message})`;
}

function lockText(s: StanzaInfo): string {
  const parts: string[] = [];
  if (s.stopped) parts.push("stopped");
  if (s.lock.held)
    parts.push(`backup/expire running${s.lock.percentComplete !== undefined ? ` - ${s.lock.percentComplete.toFixed(2)}% complete` : ""}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

function backupLines(b: InfoBackup, withDetail: boolean): string[] {
  const r = b.record;
  const out = [`${I2}${r.type} backup: ${r.label}`, `${I3}timestamp start/stop: ${formatTimestamp(r.timestampStart)} / ${formatTimestamp(r.timestampStop)}`];
  if (r.archiveStart !== undefined) out.push(`${I3}wal start/stop: ${r.archiveStart} / ${r.archiveStop ?? ""}`);
  if (withDetail && r.lsnStart !== undefined) out.push(`${I3}lsn start/stop: ${r.lsnStart} / ${r.lsnStop ?? ""}`);
  out.push(`${I3}database size: ${formatSize(r.size)}, database backup size: ${formatSize(r.sizeDelta)}`);
  // A block incremental set's repo size is not shown (pgBackRest 2.59 leaves it out: it is not what a restore reads).
  const setSize = r.repoSizeMap === undefined ? `backup set size: ${formatSize(r.repoSize)}, ` : "";
  out.push(`${I3}repo${b.repoKey}: ${setSize}backup size: ${formatSize(r.repoSizeDelta)}`);
  if (r.reference.length) out.push(`${I3}backup reference list: ${r.reference.join(", ")}`);
  if (!withDetail) {
    if (r.error) out.push(`${I3}error(s) detected during backup`);
    return out;
  }
  const d = b.detail;
  if (d) {
    if (d.databases.length) out.push(`${I3}database list: ${d.databases.map((x) => `${x.name} (${x.oid})`).join(", ")}`);
    if (d.links.length) out.push(`${I3}symlinks:`, ...d.links.map((l) => `${I4}${l.name} => ${l.destination}`));
    if (d.tablespaces.length) out.push(`${I3}tablespaces:`, ...d.tablespaces.map((t) => `${I4}${t.name} (${t.oid}) => ${t.destination}`));
    if (d.errorFiles.length) out.push(`${I3}error list: ${d.errorFiles.join(", ")}`);
  }
  const ann = Object.entries(r.annotation ?? {}).sort(([a], [b2]) => (a < b2 ? -1 : a > b2 ? 1 : 0));
  if (ann.length) out.push(`${I3}annotation(s)`, ...ann.map(([k, v]) => `${I4}${k}: ${v}`));
  return out;
}

/** Databases (clusters) of a stanza across its repositories, oldest first, the current one last. */
function stanzaDbs(s: StanzaInfo): InfoDb[] {
  // The current cluster is the first repository's; a different current elsewhere shows as prior.
  const current = s.repos.flatMap((r) => r.dbs).find((d) => d.current);
  const seen = new Map<string, InfoDb>();
  for (const r of s.repos) for (const d of r.dbs) if (!seen.has(dbKey(d))) seen.set(dbKey(d), { ...d, current: current !== undefined && dbKey(d) === dbKey(current) });
  return [...seen.values()].sort((a, b) => Number(a.current) - Number(b.current) || a.id - b.id);
}

const dbKey = (d: { id: number; systemId: bigint; version: string }) => `${d.id}/${d.version}/${d.systemId}`;

function dbLines(s: StanzaInfo, db: InfoDb, withDetail: boolean): string[] {
  const out: string[] = [];
  // WAL of this cluster, min/max across repositories (per archive id).
  const ids = new Map<string, { version: string; min: string | null; max: string | null }>();
  for (const r of s.repos)
    for (const a of r.archives) {
      const owner = r.dbs.find((d) => d.id === a.dbId);
      if (!owner || dbKey(owner) !== dbKey(db)) continue;
      const cur = ids.get(a.archiveId) ?? { version: a.version, min: null, max: null };
      if (a.min !== null && (cur.min === null || a.min < cur.min)) cur.min = a.min;
      if (a.max !== null && (cur.max === null || a.max > cur.max)) cur.max = a.max;
      ids.set(a.archiveId, cur);
    }
  const backups = s.repos
    .flatMap((r) => r.backups.filter((b) => {
      const owner = r.dbs.find((d) => d.id === b.record.dbId);
      return owner !== undefined && dbKey(owner) === dbKey(db);
    }))
    .sort(backupOrder);
  if (!db.current && backups.length === 0 && ![...ids.values()].some((a) => a.min !== null)) return out;

  out.push("", `${I1}db (${db.current ? "current" : "prior"})`);
  for (const a of ids.values()) {
    if (!db.current && a.min === null) continue;
    out.push(`${I2}wal archive min/max (${a.version}): ${a.min === null ? "none present" : `${a.min}/${a.max}`}`);
  }
  for (const b of backups) out.push("", ...backupLines(b, withDetail).map((l) => l));
  return out;
}

export function stanzaText(s: StanzaInfo, withDetail: boolean): string[] {
  const st = stanzaStatus(s);
  const out = [`stanza: ${s.name}`, `${I1}status: ${statusText(st)}${lockText(s)}`];
  if (s.repos.length > 1 && st.code !== INFO_STATUS.ok.code) for (const r of s.repos) out.push(`${I2}repo${r.key}: ${statusText(r.status)}`);
  if (s.repos.length === 1 && s.repos[0]!.error) out.push(...s.repos[0]!.error.split("\n").map((l) => `${I3}${l}`));
  // Without the stanza's backup path there is nothing more to say (not even its cipher).
  if (s.repos.every((r) => r.status.code === INFO_STATUS.missingStanzaPath.code)) return out;
  out.push(`${I1}cipher: ${stanzaCipher(s)}`);
  const hasData = s.repos.some((r) => r.dbs.length > 0 && (r.status.code === INFO_STATUS.ok.code || r.status.code === INFO_STATUS.noBackup.code));
  if (!hasData) return out;
  for (const db of stanzaDbs(s)) out.push(...dbLines(s, db, withDetail));
  return out;
}

/** The whole text: stanzas separated by a blank line, ending in a newline. */
export function infoText(stanzas: readonly StanzaInfo[], withDetail: boolean): string {
  if (stanzas.length === 0) return "No stanzas exist in the repository.\n";
  return stanzas.map((s) => stanzaText(s, withDetail).join("\n")).join("\n\n") + "\n";
}
