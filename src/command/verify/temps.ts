/**
 * verify's view of repository temporary files (repo/temp-files.ts): each one is a warning, not a
 * problem. A temp file is what a killed push or an interrupted atomic write leaves: no reader ever
 * takes it for WAL or a backup, so it damages nothing (pgBackRest's verify does not look at its
 * own temp files at all). It only takes space until the next archive-push to its directory, or
 * expire, removes it; verify's exit code stays about what can be restored.
 */
import { stanzaTempFiles } from "../../repo/temp-files.ts";
import type { Storage } from "../../storage/storage.ts";

export async function tempFileWarnings(storage: Storage, stanza: string, staleSeconds: number, now = Date.now() / 1000): Promise<string[]> {
  return (await stanzaTempFiles(storage, stanza)).map((t) => {
    const age = Math.max(0, Math.floor(now - t.mtime));
    const what = age > staleSeconds ? "left by an interrupted write: the next archive-push to its directory or expire removes it" : "possibly a write in progress";
    return `temporary file ${t.path} (${t.size} bytes, last modified ${age}s ago): ${what}`;
  });
}
