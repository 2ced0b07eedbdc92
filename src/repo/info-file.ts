/**
 * Loading and saving info files (backup.info, archive.info, backup.manifest) with their `.copy`:
 * save writes the main file then the copy, each atomically; load tries the main file and falls
 * back to the copy when the main one is missing, torn or fails its checksum, as pgBackRest does.
 * Encrypted repositories: the whole file passes through the cipher with the given passphrase.
 */
import { err, PgbError } from "../common/error.ts";
import type { FilterSpec } from "../filter/filter.ts";
import type { Storage } from "../storage/storage.ts";
import { InfoIni } from "./ini.ts";
import { INFO_COPY_EXT } from "./layout.ts";

export interface InfoLoadOptions {
  cipherPass?: string;
  /** Return null instead of throwing when neither file exists. */
  ignoreMissing?: boolean;
  /** What the file is for, for the hint ("backup.info is required to perform a backup"). */
  hint?: string | string[];
}

async function loadOne(storage: Storage, path: string, cipherPass?: string): Promise<InfoIni> {
  const filters: FilterSpec[] = cipherPass ? [{ type: "decrypt", pass: cipherPass }] : [];
  const data = await storage.get(path, { filters });
  if (data === null) throw err("FileMissingError", `unable to open missing file '${storage.path(path)}' for read`);
  try {
    return InfoIni.parse(new TextDecoder().decode(data), storage.path(path));
  } catch (e) {
    // A wrong passphrase usually fails the padding check, but about one time in 256 it yields
    // garbage with valid padding: say what is most likely wrong either way.
    if (cipherPass && e instanceof PgbError && e.kind === "FormatError")
      throw err("CryptoError", `unable to decrypt '${storage.path(path)}': wrong passphrase or corrupt data (the decrypted bytes are not an info file)`);
    throw e;
  }
}

export async function loadInfoFile(storage: Storage, path: string, opts: InfoLoadOptions = {}): Promise<InfoIni | null> {
  const errors: PgbError[] = [];
  for (const p of [path, path + INFO_COPY_EXT]) {
    try {
      return await loadOne(storage, p, opts.cipherPass);
    } catch (e) {
      if (!(e instanceof PgbError)) throw e;
      errors.push(e);
    }
  }
  if (opts.ignoreMissing && errors.every((e) => e.kind === "FileMissingError")) return null;
  const allMissing = errors.every((e) => e.kind === "FileMissingError");
  const kind = allMissing ? "FileMissingError" : errors.find((e) => e.kind !== "FileMissingError")!.kind;
  throw err(
    kind,
    `unable to load info file '${storage.path(path)}' or '${storage.path(path + INFO_COPY_EXT)}':\n` +
      errors.map((e) => `${e.kind}: ${e.message}`).join("\n"),
    opts.hint,
  );
}

/** Write main then copy, both atomic and synced: at least one valid file exists at every instant. */
export async function saveInfoFile(storage: Storage, path: string, ini: InfoIni, cipherPass?: string): Promise<void> {
  const text = ini.render();
  const filters: FilterSpec[] = cipherPass ? [{ type: "encrypt", pass: cipherPass }] : [];
  await storage.put(path, text, { filters });
  await storage.put(path + INFO_COPY_EXT, text, { filters });
}

export async function removeInfoFile(storage: Storage, path: string): Promise<void> {
  await storage.remove(path, { ignoreMissing: true });
  await storage.remove(path + INFO_COPY_EXT, { ignoreMissing: true });
}
