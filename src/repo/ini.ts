/**
 * pgBackRest's info-file syntax, used by backup.info, archive.info and backup.manifest:
 * `[section]` headers, `key=value` lines whose values are JSON, sections and keys in sorted order,
 * and a closing `[backrest]` section holding `backrest-checksum`: the SHA-1 of the content rendered
 * as one JSON object ({"section":{"key":value,...},...}) without the checksum itself.
 *
 * Values are kept as their JSON text, so a file read and written back is byte-identical and 64-bit
 * integers (system ids) never pass through a double.
 */
import { err } from "../common/error.ts";
import { byteOrder, jsonParse, jsonRender, type JsonValue } from "../common/json.ts";
import { sha1Hex } from "../filter/sha1.ts";

export const REPO_FORMAT = 5;
/** The pgBackRest version whose repository format we write (readers compare format, not version). */
export const REPO_VERSION = "2.45";

const CHECKSUM_SECTION = "backrest";
const CHECKSUM_KEY = "backrest-checksum";

/**
 * One item of an info file in file order: a section opening (no key) or one `key=value` line of
 * the current section (raw: the value's JSON text).
 */
export type IniEntry = readonly [section: string, key?: string, raw?: string];

/** Receives a file's items as InfoReader reads them (strings are fresh, never slices of the file text). */
export type IniVisitor = (section: string, key: string | undefined, raw: string | undefined) => void;

/** Text pieces of about this many characters are handed out by renderInfo (and hashed at once). */
const PIECE_CHARS = 1 << 16;

/**
 * The SHA-1 pgBackRest records, fed in file order: the content as one JSON object
 * {"section":{"key":value,...},...} without the checksum itself. Buffered so that a manifest's
 * hundreds of thousands of keys cost a few hundred hasher calls, not one each.
 */
class ContentHash {
  readonly #hasher = new Bun.CryptoHasher("sha1");
  #buf = "";
  #sections = 0;
  #keys = 0;

  section(name: string): void {
    this.#add(`${this.#sections++ === 0 ? "{" : "},"}${JSON.stringify(name)}:{`);
    this.#keys = 0;
  }

  key(key: string, raw: string): void {
    this.#add(`${this.#keys++ === 0 ? "" : ","}${JSON.stringify(key)}:${raw}`);
  }

  digest(): string {
    this.#add(this.#sections === 0 ? "{}" : "}}");
    this.#hasher.update(this.#buf);
    this.#buf = "";
    return this.#hasher.digest("hex");
  }

  #add(s: string): void {
    this.#buf += s;
    if (this.#buf.length >= PIECE_CHARS) {
      this.#hasher.update(this.#buf);
      this.#buf = "";
    }
  }
}

/**
 * Info-file text in pieces of about PIECE_CHARS characters, closed by the [backrest] checksum
 * section. Entries must come in file order (sections and keys sorted): a manifest renders
 * straight from its model this way, never as one string.
 */
export function* renderInfo(entries: Iterable<IniEntry>): Generator<string> {
  const hash = new ContentHash();
  let section: string | undefined;
  let out = "";
  for (const [sec, key, raw] of entries) {
    if (sec !== section) {
      out += `${section === undefined ? "" : "\n"}[${sec}]\n`;
      hash.section(sec);
      section = sec;
    }
    if (key === undefined) continue;
    out += `${key}=${raw}\n`;
    hash.key(key, raw!);
    if (out.length >= PIECE_CHARS) {
      yield out;
      out = "";
    }
  }
  yield `${out}${section === undefined ? "" : "\n"}[${CHECKSUM_SECTION}]\n${CHECKSUM_KEY}=${JSON.stringify(hash.digest())}\n`;
}

const NEWLINE = 10;
const BRACKET = 91;
const CLOSE_BRACKET = 93;
const EQUALS = 61;

/**
 * Reads info-file bytes chunk by chunk (a manifest is never held as one text). Keys and values are
 * decoded one by one from the bytes, so what a visitor keeps does not pin the file's text (a slice
 * of a JavaScript string shares its parent's storage). The checksum is computed in file order, as
 * the file was written, and checked at end().
 */
export class InfoReader {
  readonly #file: string;
  readonly #visit: IniVisitor;
  readonly #decoder = new TextDecoder();
  readonly #hash = new ContentHash();
  #carry: Uint8Array | undefined;
  #line = 0;
  #section: string | undefined;
  /** The current section has not been fed to the hash yet (a trailing [backrest] holding only the checksum never is). */
  #pending = false;
  /** The current section held the checksum: left out of the hash if nothing else is in it. */
  #checksumHere = false;
  #checksum: string | undefined;

  constructor(file: string, visit: IniVisitor) {
    this.#file = file;
    this.#visit = visit;
  }

  /** The next bytes of the file (the chunk may be reused by the caller after the call). */
  push(chunk: Uint8Array): void {
    let start = 0;
    if (this.#carry) {
      const nl = chunk.indexOf(NEWLINE);
      if (nl < 0) {
        this.#carry = concat(this.#carry, chunk);
        return;
      }
      const line = concat(this.#carry, chunk.subarray(0, nl));
      this.#carry = undefined;
      this.#parseLine(line, 0, line.length);
      start = nl + 1;
    }
    for (let nl = chunk.indexOf(NEWLINE, start); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      this.#parseLine(chunk, start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) this.#carry = chunk.slice(start);
  }

  /** End of the file: checks the recorded checksum unless told not to. */
  end(verifyChecksum = true): void {
    if (this.#carry) this.#parseLine(this.#carry, 0, this.#carry.length);
    this.#carry = undefined;
    this.#closeSection();
    if (!verifyChecksum) return;
    if (this.#checksum === undefined)
      throw err("ChecksumError", `invalid checksum in '${this.#file}': the file has no backrest-checksum (it is incomplete)`);
    const actual = this.#hash.digest();
    if (actual !== this.#checksum)
      throw err("ChecksumError", `invalid checksum in '${this.#file}': expected '${this.#checksum}' (recorded in the file) but its content hashes to '${actual}'`, "the file is corrupt or was changed by hand.");
  }

  #closeSection(): void {
    if (this.#pending && !this.#checksumHere && this.#section !== undefined) this.#hash.section(this.#section);
    this.#pending = false;
    this.#checksumHere = false;
  }

  #parseLine(b: Uint8Array, from: number, to: number): void {
    this.#line++;
    if (from === to) return;
    if (b[from] === BRACKET) {
      if (b[to - 1] !== CLOSE_BRACKET) throw err("FormatError", `invalid section '${this.#decoder.decode(b.subarray(from, to))}' at line ${this.#line} of '${this.#file}'`);
      this.#closeSection();
      this.#section = this.#decoder.decode(b.subarray(from + 1, to - 1));
      this.#pending = true;
      this.#visit(this.#section, undefined, undefined);
      return;
    }
    const eq = b.indexOf(EQUALS, from);
    if (eq <= from || eq >= to || this.#section === undefined) throw err("FormatError", `invalid line ${this.#line} of '${this.#file}': expected key=value inside a section`);
    const key = this.#decoder.decode(b.subarray(from, eq));
    const raw = this.#decoder.decode(b.subarray(eq + 1, to));
    if (key === CHECKSUM_KEY && this.#section === CHECKSUM_SECTION) {
      this.#checksum = jsonParse(raw) as string;
      this.#checksumHere = true;
      return;
    }
    if (this.#pending) {
      this.#hash.section(this.#section);
      this.#pending = false;
    }
    this.#hash.key(key, raw);
    this.#visit(this.#section, key, raw);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export class InfoIni {
  readonly #sections = new Map<string, Map<string, string>>();

  static parse(text: string, file: string, verifyChecksum = true): InfoIni {
    const ini = new InfoIni();
    const reader = new InfoReader(file, ini.visitor());
    reader.push(new TextEncoder().encode(text));
    reader.end(verifyChecksum);
    return ini;
  }

  /** A visitor that fills this InfoIni (an InfoReader's target). */
  visitor(): IniVisitor {
    return (section, key, raw) => {
      if (key === undefined) this.ensureSection(section);
      else this.setRaw(section, key, raw!);
    };
  }

  /** Sections and keys in file (sorted) order, as renderInfo takes them. */
  *entries(): Generator<IniEntry> {
    for (const [name, kv] of this.#ordered()) {
      yield [name];
      for (const [k, v] of kv) yield [name, k, v];
    }
  }

  /** SHA-1 over the content in file order (sections and keys as they are held, which is sorted order). */
  checksum(): string {
    const parts: string[] = [];
    for (const [name, kv] of this.#ordered()) {
      const pairs: string[] = [];
      for (const [k, v] of kv) pairs.push(`${JSON.stringify(k)}:${v}`);
      parts.push(`${JSON.stringify(name)}:{${pairs.join(",")}}`);
    }
    return sha1Hex(`{${parts.join(",")}}`);
  }

  #ordered(): [string, [string, string][]][] {
    return [...this.#sections.keys()].sort(byteOrder).map((name) => {
      const kv = this.#sections.get(name)!;
      return [name, [...kv.keys()].sort(byteOrder).map((k) => [k, kv.get(k)!] as [string, string])];
    });
  }

  render(): string {
    this.#stampFormat();
    return [...renderInfo(this.entries())].join("");
  }

  /** The text in pieces (a writer streams them; see renderInfo). */
  renderPieces(): Iterable<string> {
    this.#stampFormat();
    return renderInfo(this.entries());
  }

  #stampFormat(): void {
    this.setValue(CHECKSUM_SECTION, "backrest-format", REPO_FORMAT);
    if (!this.has(CHECKSUM_SECTION, "backrest-version")) this.setValue(CHECKSUM_SECTION, "backrest-version", REPO_VERSION);
  }

  has(section: string, key: string): boolean {
    return this.#sections.get(section)?.has(key) ?? false;
  }

  sectionNames(): string[] {
    return [...this.#sections.keys()].sort(byteOrder);
  }

  keys(section: string): string[] {
    return [...(this.#sections.get(section)?.keys() ?? [])].sort(byteOrder);
  }

  /** Raw JSON text of a value. */
  raw(section: string, key: string): string | undefined {
    return this.#sections.get(section)?.get(key);
  }

  value(section: string, key: string): JsonValue | undefined {
    const raw = this.raw(section, key);
    return raw === undefined ? undefined : jsonParse(raw);
  }

  /** A value that must exist. */
  need(section: string, key: string, file = "info file"): JsonValue {
    const v = this.value(section, key);
    if (v === undefined) throw err("FormatError", `'${file}' is missing key '${key}' in section '${section}'`);
    return v;
  }

  setRaw(section: string, key: string, raw: string): void {
    let kv = this.#sections.get(section);
    if (!kv) this.#sections.set(section, (kv = new Map()));
    kv.set(key, raw);
  }

  setValue(section: string, key: string, value: unknown): void {
    this.setRaw(section, key, jsonRender(value));
  }

  delete(section: string, key: string): void {
    this.#sections.get(section)?.delete(key);
  }

  deleteSection(section: string): void {
    this.#sections.delete(section);
  }

  /** Make sure a section exists even when empty (manifests write empty sections). */
  ensureSection(section: string): void {
    if (!this.#sections.has(section)) this.#sections.set(section, new Map());
  }
}
