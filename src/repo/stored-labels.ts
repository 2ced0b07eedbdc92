/**
 * The backup labels a repository holds outside backup.info: its label directories (complete,
 * resumable or half-expired) and the manifests kept in backup.history. A new label has to sort
 * after these as well as after backup.info's, as pgBackRest requires.
 */
import type { Storage } from "../storage/storage.ts";
import { isLabel } from "./label.ts";
import { repoPath } from "./layout.ts";

/** Label directories in backup/STANZA, sorted. */
export async function labelDirs(storage: Storage, stanza: string): Promise<string[]> {
  return (await storage.names(repoPath.backupStanza(stanza))).filter(isLabel);
}

/** Labels of the manifests in backup.history/YYYY/, sorted. */
export async function historyLabels(storage: Storage, stanza: string): Promise<string[]> {
  const out: string[] = [];
  const base = repoPath.historyDir(stanza);
  for (const year of await storage.names(base, /^\d{4}$/))
    for (const f of await storage.names(`${base}/${year}`, /\.manifest\.gz$/)) {
      const label = f.slice(0, -".manifest.gz".length);
      if (isLabel(label)) out.push(label);
    }
  return out.sort();
}
