/**
 * Reading an S3 repository from a test, straight from the bucket (not through pgbunker): its keys,
 * and the partial backup a killed or failed run left behind (its manifest copy and the files it
 * stored).
 */
import { InfoIni } from "../../src/repo/ini.ts";
import { Manifest } from "../../src/repo/manifest.ts";
import type { S3Http } from "../../src/storage/s3/client.ts";
import { listPages } from "../../src/storage/s3/list.ts";

/** Every key in the bucket below a prefix. */
export async function s3Keys(s3: S3Http, prefix: string): Promise<string[]> {
  const out: string[] = [];
  await listPages(s3, prefix, {}, (p) => {
    out.push(...p.objects.map((o) => o.key));
  });
  return out;
}

/** Files the run that wrote this manifest stored itself (rck set, not a reference to a prior). */
export function storedByRun(m: Manifest): number {
  return m.fileList().filter((f) => f.rck !== undefined && f.reference === undefined).length;
}

/** A full backup below `backupPrefix` (".../backup/STANZA/") other than `known`, with its saved manifest copy. */
export async function partialBackup(s3: S3Http, backupPrefix: string, known: ReadonlySet<string>): Promise<{ label: string; m: Manifest } | undefined> {
  for (const k of await s3Keys(s3, backupPrefix)) {
    const m = /\/(\d{8}-\d{6}F)\/backup\.manifest\.copy$/.exec(k);
    if (!m || known.has(m[1]!)) continue;
    const r = await s3.requestText({ method: "GET", key: k, accept: [404] });
    if (r.status === 200) return { label: m[1]!, m: Manifest.fromIni(InfoIni.parse(r.text, k)) };
  }
  return undefined;
}
