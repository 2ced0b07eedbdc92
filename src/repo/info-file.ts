/**
 * Loading and saving info files (backup.info, archive.info, backup.manifest) with their `.copy`:
 * save writes the main file then the copy, each atomically; load tries the main file and falls
 * back to the copy when the main one is missing, torn or fails its checksum, as pgBackRest does.
 * Encrypted repositories: the whole file passes through the cipher with the given passphrase.
 */
import { err, PgbError } from "../common/error.ts";
import { WRONG_PASS_HINT } from "../filter/cipher.ts";
import type { FilterSpec } from "../filter/filter.ts";
import type { Storage, WriteOptions } from "../storage/storage.ts";
import { InfoIni, InfoReader, type IniVisitor } from "./ini.ts";
import { INFO_COPY_EXT } from "./layout.ts";

export interface InfoLoadOptions {
  cipherPass?: string;
  /** Return null instead of throwing when neither file exists. */
  ignoreMissing?: boolean;
  /** What the file is for, for the hint ("backup.info is required to perform a backup"). */
  hint?: string | string[];
}

const NOT_ENCRYPTED_HINT = "this repository is encrypted: set repo-cipher-type=aes-256-cbc and repo-cipher-pass (the passphrase the stanza was created with) for it.";
/** OpenSSL's salted format starts so; an info file in plain text starts with "[backrest]". */
const SALTED = "Salted__";

/** What a load builds from a file's items: a fresh one per file tried (main, then copy). */
export interface InfoSink<T> {
  visit: IniVisitor;
  result(): T;
}

const SALTED_BYTES = new TextEncoder().encode(SALTED);
const startsWith = (data: Uint8Array, prefix: Uint8Array) => data.length >= prefix.length && prefix.every((b, i) => data[i] === b);

/**
 * Stream one file through an InfoReader to a visitor: the file's text is never held whole. Returns
 * the SHA-1 of its (decrypted) bytes, so a caller can compare two files without keeping either.
 * Errors are the reader's and the storage's as they are (loadOne words them for a load).
 */
export async function readInfoStream(storage: Storage, path: string, visit: IniVisitor, opts: { cipherPass?: string; refuseSalted?: boolean } = {}): Promise<string> {
  const filters: FilterSpec[] = opts.cipherPass ? [{ type: "decrypt", pass: opts.cipherPass }] : [];
  const r = await storage.openRead(path, { filters, ignoreMissing: true });
  if (r === null) throw err("FileMissingError", `unable to open missing file '${storage.path(path)}' for read`);
  const reader = new InfoReader(storage.path(path), visit);
  const hasher = new Bun.CryptoHasher("sha1");
  try {
    let first = true;
    for (let c = await r.read(); c !== null; c = await r.read()) {
      if (first && opts.refuseSalted && startsWith(c, SALTED_BYTES))
        throw err("CryptoError", `'${storage.path(path)}' is encrypted (it starts with '${SALTED}') but repo-cipher-type is none`, NOT_ENCRYPTED_HINT);
      first = false;
      hasher.update(c);
      reader.push(c);
    }
    reader.end();
    return hasher.digest("hex");
  } finally {
    await r.close();
  }
}

async function loadOne<T>(storage: Storage, path: string, sink: InfoSink<T>, cipherPass?: string): Promise<T> {
  try {
    await readInfoStream(storage, path, sink.visit, { cipherPass, refuseSalted: !cipherPass });
    return sink.result();
  } catch (e) {
    // The file is parsed as it is decrypted, so a wrong passphrase shows as garbage (FormatError)
    // before the padding check at its end could say so: the same words as that check (the caller's
    // message names the file).
    if (cipherPass && e instanceof PgbError && e.kind === "FormatError") throw err("CryptoError", "unable to decrypt: wrong passphrase or corrupt data", WRONG_PASS_HINT);
    throw e;
  }
}

export async function loadInfoFile(storage: Storage, path: string, opts: InfoLoadOptions = {}): Promise<InfoIni | null> {
  return loadInfoInto(storage, path, opts, () => {
    const ini = new InfoIni();
    return { visit: ini.visitor(), result: () => ini };
  });
}

/** loadInfoFile into any model (a manifest builds its own, without an InfoIni of every file). */
export async function loadInfoInto<T>(storage: Storage, path: string, opts: InfoLoadOptions, sink: () => InfoSink<T>): Promise<T | null> {
  const errors: PgbError[] = [];
  for (const p of [path, path + INFO_COPY_EXT]) {
    try {
      return await loadOne(storage, p, sink(), opts.cipherPass);
    } catch (e) {
      if (!(e instanceof PgbError)) throw e;
      errors.push(e);
    }
  }
  if (opts.ignoreMissing && errors.every((e) => e.kind === "FileMissingError")) return null;
  const allMissing = errors.every((e) => e.kind === "FileMissingError");
  const kind = allMissing ? "FileMissingError" : errors.find((e) => e.kind !== "FileMissingError")!.kind;
  // A passphrase problem is not a missing stanza: "has a stanza-create been performed?" would mislead.
  const crypto = errors.find((e) => e.kind === "CryptoError");
  // Nor is storage that refused us (credentials, TLS, a clock off): its own hints say what to fix.
  const refused = errors.find((e) => e.kind !== "FileMissingError" && e.kind !== "FormatError" && e.hints.length);
  const hint = crypto ? (crypto.hints.length ? crypto.hints : WRONG_PASS_HINT) : refused ? refused.hints : opts.hint;
  throw err(
    kind,
    `unable to load info file '${storage.path(path)}' or '${storage.path(path + INFO_COPY_EXT)}':\n` +
      errors.map((e) => `${e.kind}: ${e.message}`).join("\n"),
    hint,
  );
}

/** An info file to write: an InfoIni, or text pieces made afresh for each write (a manifest renders itself as a stream). */
export type InfoSource = InfoIni | (() => Iterable<string>);

/** Write main then copy, both atomic and synced: at least one valid file exists at every instant. */
export async function saveInfoFile(storage: Storage, path: string, info: InfoSource, cipherPass?: string): Promise<void> {
  await writeInfoFileOne(storage, path, info, "main", cipherPass);
  await writeInfoFileOne(storage, path, info, "copy", cipherPass);
}

/** Write only the main file or only the copy (atomic and synced), for callers that order the four writes of two info files themselves (repo-rekey). */
export async function writeInfoFileOne(storage: Storage, path: string, info: InfoSource, which: "main" | "copy", cipherPass?: string): Promise<void> {
  const filters: FilterSpec[] = cipherPass ? [{ type: "encrypt", pass: cipherPass }] : [];
  const pieces = info instanceof InfoIni ? info.renderPieces() : info();
  await writePieces(storage, which === "main" ? path : path + INFO_COPY_EXT, pieces, { filters });
}

/** Write text pieces to one file through a single open (atomic as Storage.put), encoding one piece at a time. */
export async function writePieces(storage: Storage, path: string, pieces: Iterable<string>, opts: WriteOptions): Promise<void> {
  const w = await storage.openWrite(path, opts);
  try {
    const encoder = new TextEncoder();
    for (const piece of pieces) await w.write(encoder.encode(piece));
    await w.close();
  } catch (e) {
    await w.abort().catch(() => {});
    throw e;
  }
}

export async function removeInfoFile(storage: Storage, path: string): Promise<void> {
  await storage.remove(path, { ignoreMissing: true });
  await storage.remove(path + INFO_COPY_EXT, { ignoreMissing: true });
}
