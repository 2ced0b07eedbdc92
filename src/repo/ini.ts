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

export class InfoIni {
  readonly #sections = new Map<string, Map<string, string>>();

  static parse(text: string, file: string, verifyChecksum = true): InfoIni {
    const ini = new InfoIni();
    let section: Map<string, string> | undefined;
    let checksum: string | undefined;
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === "") continue;
      if (line.startsWith("[")) {
        if (!line.endsWith("]")) throw err("FormatError", `invalid section '${line}' at line ${i + 1} of '${file}'`);
        const name = line.slice(1, -1);
        section = ini.#sections.get(name) ?? new Map();
        ini.#sections.set(name, section);
        continue;
      }
      const eq = line.indexOf("=");
      if (eq <= 0 || !section) throw err("FormatError", `invalid line ${i + 1} of '${file}': expected key=value inside a section`);
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (key === CHECKSUM_KEY && ini.#sections.get(CHECKSUM_SECTION) === section) {
        checksum = jsonParse(value) as string;
        continue;
      }
      section.set(key, value);
    }
    if (verifyChecksum) {
      if (checksum === undefined)
        throw err("ChecksumError", `invalid checksum in '${file}': the file has no backrest-checksum (it is incomplete)`);
      const actual = ini.checksum();
      if (actual !== checksum)
        throw err("ChecksumError", `invalid checksum in '${file}': expected '${checksum}' (recorded in the file) but its content hashes to '${actual}'`, "the file is corrupt or was changed by hand.");
    }
    return ini;
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
    this.setValue(CHECKSUM_SECTION, "backrest-format", REPO_FORMAT);
    if (!this.has(CHECKSUM_SECTION, "backrest-version")) this.setValue(CHECKSUM_SECTION, "backrest-version", REPO_VERSION);
    const out: string[] = [];
    for (const [name, kv] of this.#ordered()) {
      out.push(`[${name}]`);
      for (const [k, v] of kv) out.push(`${k}=${v}`);
      out.push("");
    }
    out.push(`[${CHECKSUM_SECTION}]`, `${CHECKSUM_KEY}=${JSON.stringify(this.checksum())}`, "");
    return out.join("\n");
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
