/**
 * A manifest's [target:file] entries held compactly (issue 19: a million files in bounded memory).
 *
 * A JavaScript object per file (with its name, checksum and rck strings) costs ~400 B of heap and
 * several times that in RSS once the garbage of loading it is counted; a million files would need
 * gigabytes. Here each file is one variable-length record in 1 MiB byte chunks: the directory as an
 * index into a table of directory names, the base name's bytes, the SHA-1s as 20 raw bytes, modes,
 * owners and references as indexes into a string table, numbers as varints. Size and timestamp,
 * which sorting and totals read for every file, sit in typed arrays beside the records. A hash table
 * of record numbers (Int32Array, open addressing) finds a file by name. About 100 bytes per file.
 *
 * The API is the part of Map<string, ManifestFile> the commands use, plus record-number access for
 * the loops that sort or schedule every file. Objects handed out are decoded copies: a change to one
 * is kept only by set()/setAt(). Iteration is in insertion order, as a Map's.
 */
import { jsonParse, jsonRender, type JsonValue } from "../common/json.ts";
import type { ManifestBlockIncr, ManifestFile, Owner } from "./manifest.ts";

const CHUNK_SIZE = 1 << 20;
/** loc of a deleted record. */
const DEAD = -1;

// Which optional fields a record carries (a varint after the base name).
const F_CHECKSUM = 1 << 0; // 20 bytes
const F_CHECKSUM_TEXT = 1 << 1; // not 40 lowercase hex digits: length + UTF-8
const F_RCK = 1 << 2;
const F_RCK_TEXT = 1 << 3;
const F_REPO_SIZE = 1 << 4;
const F_REFERENCE = 1 << 5;
const F_BUNDLE_ID = 1 << 6;
const F_BUNDLE_OFFSET = 1 << 7;
const F_PAGE = 1 << 8; // checksumPage present
const F_PAGE_OK = 1 << 9; // ... and true
const F_PAGE_ERROR = 1 << 10; // JSON
const F_BLOCK = 1 << 11; // three varints
const F_EXTRA = 1 << 12; // JSON

/** String table ids with a meaning of their own. */
const STR_UNSET = 0; // left to the section default (a manifest being loaded)
const STR_FALSE = 1; // owner false: no such user/group

const HEX_SHA1 = /^[0-9a-f]{40}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ManifestFiles implements Iterable<[string, ManifestFile]> {
  // Records: chunk number × 2^32 + offset, per record number; DEAD once deleted.
  #loc = new Float64Array(1024);
  #size = new Float64Array(1024);
  #time = new Float64Array(1024);
  #records = 0;
  #live = 0;
  #chunks: Uint8Array[] = [];
  #pos = CHUNK_SIZE;
  #liveBytes = 0;
  #deadBytes = 0;

  // Hash table: record number + 1 per slot, 0 empty, -1 a deleted entry's tombstone.
  #slots = new Int32Array(2048);
  #slotsUsed = 0;

  #dirs: string[] = [];
  #dirBytes: Uint8Array[] = [];
  #dirIds = new Map<string, number>();
  #strs: (string | false | undefined)[] = [undefined, false];
  #strIds = new Map<string | false, number>([[false, STR_FALSE]]);
  /** What STR_UNSET reads as: the section defaults, once a loaded manifest's are known. */
  #unset: { mode?: string; user: Owner; group: Owner } = { mode: undefined, user: undefined as unknown as Owner, group: undefined as unknown as Owner };

  // Names were inserted in byte order so far (a loaded manifest): sorted() is insertion order.
  #inOrder = true;
  #lastName = "";
  #sortedCache?: Int32Array;

  #scratch = new Uint8Array(512);
  #nameScratch = new Uint8Array(256);

  get size(): number {
    return this.#live;
  }

  // ---- Map API ----------------------------------------------------------------------------

  get(name: string): ManifestFile | undefined {
    const r = this.indexOf(name);
    return r < 0 ? undefined : this.at(r);
  }

  has(name: string): boolean {
    return this.indexOf(name) >= 0;
  }

  set(name: string, f: ManifestFile): this {
    const r = this.indexOf(name);
    if (r >= 0) this.setAt(r, f);
    else this.#insert(name, f);
    return this;
  }

  delete(name: string): boolean {
    const slot = this.#find(name);
    if (slot < 0) return false;
    const r = this.#slots[slot]! - 1;
    this.#slots[slot] = -1;
    const len = this.#recordLength(r);
    this.#liveBytes -= len;
    this.#deadBytes += len;
    this.#loc[r] = DEAD;
    this.#live--;
    this.#sortedCache = undefined;
    return true;
  }

  *values(): IterableIterator<ManifestFile> {
    for (let r = 0; r < this.#records; r++) if (this.#loc[r] !== DEAD) yield this.at(r);
  }

  *keys(): IterableIterator<string> {
    for (let r = 0; r < this.#records; r++) if (this.#loc[r] !== DEAD) yield this.nameAt(r);
  }

  *entries(): IterableIterator<[string, ManifestFile]> {
    for (const f of this.values()) yield [f.name, f];
  }

  [Symbol.iterator](): IterableIterator<[string, ManifestFile]> {
    return this.entries();
  }

  // ---- record numbers -----------------------------------------------------------------------

  /** The record number of a file, or -1. Stable for the life of the store (also across set()). */
  indexOf(name: string): number {
    const slot = this.#find(name);
    return slot < 0 ? -1 : this.#slots[slot]! - 1;
  }

  /** Every live record number, in insertion order. */
  indices(): Int32Array {
    const out = new Int32Array(this.#live);
    let n = 0;
    for (let r = 0; r < this.#records; r++) if (this.#loc[r] !== DEAD) out[n++] = r;
    return out;
  }

  /** Live record numbers in name (byte) order. */
  sortedIndices(): Int32Array {
    if (this.#inOrder) return this.indices();
    if (!this.#sortedCache) this.#sortedCache = this.indices().sort((a, b) => this.compareNames(a, b));
    return this.#sortedCache;
  }

  /** Files in name order, decoded one at a time. */
  *sorted(): IterableIterator<ManifestFile> {
    for (const r of this.sortedIndices()) yield this.at(r);
  }

  sizeAt(r: number): number {
    return this.#size[r]!;
  }

  timestampAt(r: number): number {
    return this.#time[r]!;
  }

  /** The file of record r, as a fresh object. */
  at(r: number): ManifestFile {
    collectNow();
    const buf = this.#chunk(r);
    at = this.#offset(r);
    const dir = this.#dirs[varint(buf)]!;
    const base = text(buf);
    const name = dir === "" ? base : `${dir}/${base}`;
    const flags = varint(buf);
    const mode = varint(buf), user = varint(buf), group = varint(buf);
    const f: ManifestFile = { name, size: this.#size[r]!, timestamp: this.#time[r]!, mode: this.#str(mode, "mode") as string, user: this.#str(user, "user") as Owner, group: this.#str(group, "group") as Owner };
    if (flags & F_CHECKSUM) f.checksum = flags & F_CHECKSUM_TEXT ? text(buf) : sha1Hex(buf);
    if (flags & F_PAGE) f.checksumPage = (flags & F_PAGE_OK) !== 0;
    if (flags & F_PAGE_ERROR) f.checksumPageError = jsonParse(text(buf)) as ManifestFile["checksumPageError"];
    if (flags & F_REPO_SIZE) f.repoSize = varint(buf);
    if (flags & F_RCK) f.rck = flags & F_RCK_TEXT ? text(buf) : sha1Hex(buf);
    if (flags & F_REFERENCE) f.reference = this.#strs[varint(buf)] as string;
    if (flags & F_BUNDLE_ID) f.bundleId = varint(buf);
    if (flags & F_BUNDLE_OFFSET) f.bundleOffset = varint(buf);
    if (flags & F_BLOCK) {
      const blockSize = varint(buf), checksumSize = varint(buf), mapSize = varint(buf);
      f.blockIncr = { blockSize, checksumSize, mapSize } satisfies ManifestBlockIncr;
    }
    if (flags & F_EXTRA) f.extra = jsonParse(text(buf)) as Record<string, JsonValue>;
    return f;
  }

  nameAt(r: number): string {
    collectNow();
    const buf = this.#chunk(r);
    at = this.#offset(r);
    const dir = this.#dirs[varint(buf)]!;
    const base = text(buf);
    return dir === "" ? base : `${dir}/${base}`;
  }

  /** Replace record r's file (same name; the name in f is not read). */
  setAt(r: number, f: ManifestFile): void {
    const buf = this.#chunk(r);
    const off = this.#offset(r);
    at = off;
    const dirId = varint(buf);
    const baseLen = varint(buf);
    const len = this.#encode(dirId, buf.subarray(at, at + baseLen), f);
    this.#size[r] = f.size;
    this.#time[r] = f.timestamp;
    const old = this.#recordLength(r);
    if (len <= old) {
      buf.set(this.#scratch.subarray(0, len), off);
      this.#liveBytes -= old - len;
      this.#deadBytes += old - len;
      return;
    }
    this.#liveBytes += len - old;
    this.#deadBytes += old;
    this.#loc[r] = this.#append(len);
    this.#maybeCompact();
  }

  /** Byte order of the names of records a and b (pgBackRest's manifest order). */
  compareNames(a: number, b: number): number {
    const ba = this.#chunk(a), bb = this.#chunk(b);
    at = this.#offset(a);
    const da = varint(ba), la = varint(ba), pa = at;
    at = this.#offset(b);
    const db = varint(bb), lb = varint(bb), pb = at;
    if (da === db) return compareBytes(ba, pa, pa + la, bb, pb, pb + lb);
    // Different directories: compare "dir/base" as one byte string each.
    const x = this.#dirBytes[da]!, y = this.#dirBytes[db]!;
    const lx = x.length + (x.length ? 1 : 0) + la, ly = y.length + (y.length ? 1 : 0) + lb;
    const byteOf = (d: Uint8Array, buf: Uint8Array, p: number, i: number) => (i < d.length ? d[i]! : d.length && i === d.length ? 0x2f : buf[p + i - d.length - (d.length ? 1 : 0)]!);
    for (let i = 0, n = Math.min(lx, ly); i < n; i++) {
      const c = byteOf(x, ba, pa, i) - byteOf(y, bb, pb, i);
      if (c !== 0) return c;
    }
    return lx - ly;
  }

  /**
   * The most common mode, user and group (pgBackRest writes them as [target:file:default]), ties
   * to the one met first; without files the fallback mode and postgres.
   */
  commonOwners(modeFallback: string): { mode: string; user: Owner; group: Owner } {
    const counts = [new Map<string | Owner, number>(), new Map<string | Owner, number>(), new Map<string | Owner, number>()] as const;
    const fields = ["mode", "user", "group"] as const;
    for (let r = 0; r < this.#records; r++) {
      if (this.#loc[r] === DEAD) continue;
      const buf = this.#chunk(r);
      at = skipText(buf, skipVarint(buf, this.#offset(r)));
      at = skipVarint(buf, at);
      for (let i = 0; i < 3; i++) {
        const v = this.#str(varint(buf), fields[i]!)!;
        const m = counts[i]!;
        m.set(v, (m.get(v) ?? 0) + 1);
      }
    }
    const top = (m: Map<string | Owner, number>, fallback: string | Owner) => {
      let best = fallback;
      let n = -1;
      for (const [v, c] of m) if (c > n) [best, n] = [v, c];
      return best;
    };
    return { mode: top(counts[0], modeFallback) as string, user: top(counts[1], "postgres") as Owner, group: top(counts[2], "postgres") as Owner };
  }

  /** A loaded manifest's section defaults, for the entries that left mode, user or group out. */
  resolveDefaults(mode: string, user: Owner, group: Owner): void {
    this.#unset = { mode, user, group };
  }

  /** Bytes held for the records (live, and dead not yet compacted away): for the memory benchmarks. */
  stats(): { files: number; liveBytes: number; deadBytes: number; chunks: number } {
    return { files: this.#live, liveBytes: this.#liveBytes, deadBytes: this.#deadBytes, chunks: this.#chunks.length };
  }

  // ---- internals ----------------------------------------------------------------------------

  #insert(name: string, f: ManifestFile): void {
    if ((this.#slotsUsed + 1) * 2 > this.#slots.length) this.#rehash(this.#slots.length * 2);
    const slash = name.lastIndexOf("/");
    const dir = slash < 0 ? "" : name.slice(0, slash);
    let dirId = this.#dirIds.get(dir);
    if (dirId === undefined) {
      dirId = this.#dirs.length;
      this.#dirs.push(dir);
      this.#dirBytes.push(encoder.encode(dir));
      this.#dirIds.set(dir, dirId);
    }
    const base = this.#encodeName(name.slice(slash + 1));
    // Encoded first: a value it refuses leaves the store as it was.
    const len = this.#encode(dirId, base, f);
    if (this.#records === this.#loc.length) this.#grow();
    const r = this.#records++;
    this.#size[r] = f.size;
    this.#time[r] = f.timestamp;
    this.#loc[r] = this.#append(len);
    this.#liveBytes += len;
    this.#live++;
    if (this.#inOrder && this.#live > 1 && !(this.#lastName < name)) this.#inOrder = false;
    if (this.#inOrder) this.#lastName = name;
    this.#sortedCache = undefined;
    this.#place(r, hashOf(dirId, base, 0, base.length));
  }

  /** The slot holding `name`, or -1. */
  #find(name: string): number {
    // A lookup per walked file (restore's delta clean) makes garbage too: it counts.
    collectNow();
    const slash = name.lastIndexOf("/");
    const dirId = this.#dirIds.get(slash < 0 ? "" : name.slice(0, slash));
    if (dirId === undefined) return -1;
    const base = this.#encodeName(name.slice(slash + 1));
    const mask = this.#slots.length - 1;
    for (let i = hashOf(dirId, base, 0, base.length) & mask; ; i = (i + 1) & mask) {
      const s = this.#slots[i]!;
      if (s === 0) return -1;
      if (s > 0 && this.#isNamed(s - 1, dirId, base)) return i;
    }
  }

  #isNamed(r: number, dirId: number, base: Uint8Array): boolean {
    const buf = this.#chunk(r);
    at = this.#offset(r);
    if (varint(buf) !== dirId) return false;
    const len = varint(buf);
    return len === base.length && compareBytes(buf, at, at + len, base, 0, len) === 0;
  }

  #place(r: number, hash: number): void {
    const mask = this.#slots.length - 1;
    let i = hash & mask;
    while (this.#slots[i]! > 0) i = (i + 1) & mask;
    if (this.#slots[i] === 0) this.#slotsUsed++;
    this.#slots[i] = r + 1;
  }

  #rehash(capacity: number): void {
    this.#slots = new Int32Array(capacity);
    this.#slotsUsed = 0;
    for (let r = 0; r < this.#records; r++) {
      if (this.#loc[r] === DEAD) continue;
      const buf = this.#chunk(r);
      at = this.#offset(r);
      const d = varint(buf);
      const len = varint(buf);
      this.#place(r, hashOf(d, buf, at, at + len));
    }
  }

  #grow(): void {
    const n = this.#loc.length * 2;
    const grown = (a: Float64Array) => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.#loc = grown(this.#loc);
    this.#size = grown(this.#size);
    this.#time = grown(this.#time);
  }

  #chunk(r: number): Uint8Array {
    return this.#chunks[Math.floor(this.#loc[r]! / 0x1_0000_0000)]!;
  }

  #offset(r: number): number {
    return this.#loc[r]! % 0x1_0000_0000;
  }

  /** Room for a record of len bytes (now in #scratch): copied in, its loc returned. */
  #append(len: number): number {
    if (this.#pos + len > CHUNK_SIZE || this.#chunks.length === 0) {
      this.#chunks.push(new Uint8Array(Math.max(CHUNK_SIZE, len)));
      this.#pos = 0;
    }
    const c = this.#chunks.length - 1;
    const at = this.#pos;
    this.#chunks[c]!.set(this.#scratch.subarray(0, len), at);
    // A record longer than a chunk fills its own chunk.
    this.#pos = len > CHUNK_SIZE ? CHUNK_SIZE : at + len;
    return c * 0x1_0000_0000 + at;
  }

  /** Rewritten records leave their old bytes behind: copy the live ones into fresh chunks when those are most. */
  #maybeCompact(): void {
    if (this.#deadBytes < CHUNK_SIZE || this.#deadBytes < this.#liveBytes) return;
    const old = this.#chunks;
    const oldLoc = this.#loc;
    this.#chunks = [];
    this.#pos = CHUNK_SIZE;
    for (let r = 0; r < this.#records; r++) {
      const loc = oldLoc[r]!;
      if (loc === DEAD) continue;
      const buf = old[Math.floor(loc / 0x1_0000_0000)]!;
      const off = loc % 0x1_0000_0000;
      const len = recordLengthAt(buf, off);
      if (this.#scratch.length < len) this.#scratch = new Uint8Array(len * 2);
      this.#scratch.set(buf.subarray(off, off + len));
      this.#loc[r] = this.#append(len);
    }
    this.#deadBytes = 0;
  }

  #recordLength(r: number): number {
    return recordLengthAt(this.#chunk(r), this.#offset(r));
  }

  #encodeName(base: string): Uint8Array {
    if (this.#nameScratch.length < base.length * 3) this.#nameScratch = new Uint8Array(base.length * 3);
    const { written } = encoder.encodeInto(base, this.#nameScratch);
    return this.#nameScratch.subarray(0, written);
  }

  #strId(s: string | false | undefined): number {
    if (s === undefined) return STR_UNSET;
    let id = this.#strIds.get(s);
    if (id === undefined) {
      id = this.#strs.length;
      this.#strs.push(s);
      this.#strIds.set(s, id);
    }
    return id;
  }

  #str(id: number, field: "mode" | "user" | "group"): string | Owner | undefined {
    return id === STR_UNSET ? this.#unset[field] : this.#strs[id];
  }

  /** Encode f's record into #scratch; its length. Name bytes (base) may lie in a chunk. */
  #encode(dirId: number, base: Uint8Array, f: ManifestFile): number {
    collectNow();
    let flags = 0;
    const checksumText = f.checksum !== undefined && !HEX_SHA1.test(f.checksum);
    const rckText = f.rck !== undefined && !HEX_SHA1.test(f.rck);
    if (f.checksum !== undefined) flags |= F_CHECKSUM | (checksumText ? F_CHECKSUM_TEXT : 0);
    if (f.rck !== undefined) flags |= F_RCK | (rckText ? F_RCK_TEXT : 0);
    if (f.repoSize !== undefined) flags |= F_REPO_SIZE;
    if (f.reference !== undefined) flags |= F_REFERENCE;
    if (f.bundleId !== undefined) flags |= F_BUNDLE_ID;
    if (f.bundleOffset !== undefined) flags |= F_BUNDLE_OFFSET;
    if (f.checksumPage !== undefined) flags |= F_PAGE | (f.checksumPage ? F_PAGE_OK : 0);
    if (f.checksumPageError !== undefined) flags |= F_PAGE_ERROR;
    if (f.blockIncr !== undefined) flags |= F_BLOCK;
    if (f.extra !== undefined) flags |= F_EXTRA;
    const pageError = f.checksumPageError !== undefined ? encoder.encode(jsonRender(f.checksumPageError)) : undefined;
    const extra = f.extra !== undefined ? encoder.encode(jsonRender(f.extra)) : undefined;
    const checksum = checksumText ? encoder.encode(f.checksum) : undefined;
    const rck = rckText ? encoder.encode(f.rck) : undefined;
    const max = 10 * 16 + base.length + 40 + (pageError?.length ?? 0) + (extra?.length ?? 0) + (checksum?.length ?? 0) + (rck?.length ?? 0);
    if (this.#scratch.length < max) this.#scratch = new Uint8Array(max * 2);
    const out = this.#scratch;
    let p = writeVarint(out, 0, dirId);
    p = writeVarint(out, p, base.length);
    out.set(base, p);
    p += base.length;
    p = writeVarint(out, p, flags);
    p = writeVarint(out, p, this.#strId(f.mode));
    p = writeVarint(out, p, this.#strId(f.user));
    p = writeVarint(out, p, this.#strId(f.group));
    const bytes = (b: Uint8Array) => {
      p = writeVarint(out, p, b.length);
      out.set(b, p);
      p += b.length;
    };
    if (f.checksum !== undefined) checksum ? bytes(checksum) : (p = writeHex(out, p, f.checksum));
    if (pageError) bytes(pageError);
    if (f.repoSize !== undefined) p = writeVarint(out, p, f.repoSize);
    if (f.rck !== undefined) rck ? bytes(rck) : (p = writeHex(out, p, f.rck));
    if (f.reference !== undefined) p = writeVarint(out, p, this.#strId(f.reference));
    if (f.bundleId !== undefined) p = writeVarint(out, p, f.bundleId);
    if (f.bundleOffset !== undefined) p = writeVarint(out, p, f.bundleOffset);
    if (f.blockIncr !== undefined) {
      p = writeVarint(out, p, f.blockIncr.blockSize);
      p = writeVarint(out, p, f.blockIncr.checksumSize);
      p = writeVarint(out, p, f.blockIncr.mapSize);
    }
    if (extra) bytes(extra);
    return p;
  }
}

// ---- memory ---------------------------------------------------------------------------------

/**
 * Every file decoded or encoded is an object or two of garbage (with the caller's own per file:
 * parsed lines, job params, log text). Left to itself JavaScriptCore lets the heap run far ahead
 * of what is live on a long loop over a million files (measured: 355 MiB of RSS peak loading,
 * walking and rendering a 1,000,000-file manifest whose store holds 90 MiB). So every CHECK_EVERY
 * files the RSS is read, and once it is GC_SLACK above what it was after the last collection a
 * full collection runs: the peak stays near the live size, at a few collections per pass
 * (bench/RESULTS.md, issue 19: 218 MiB, against 176 MiB for a collection every 10,000 files at 35 % more time).
 */
const CHECK_EVERY = 8192;
const GC_SLACK = 16 * 1024 * 1024;
let sinceCheck = 0;
let rssAfterCollect = 0;

function collectNow(): void {
  if (++sinceCheck < CHECK_EVERY) return;
  sinceCheck = 0;
  if (process.memoryUsage.rss() < rssAfterCollect + GC_SLACK) return;
  Bun.gc(true);
  rssAfterCollect = process.memoryUsage.rss();
}

// ---- record bytes ---------------------------------------------------------------------------

/** Unsigned varint of a safe integer (7 bits a byte); anything else is a bug in the caller. */
function writeVarint(out: Uint8Array, p: number, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`manifest file store: expected a non-negative integer, found ${v}`);
  while (v >= 0x80) {
    out[p++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[p++] = v;
  return p;
}

/** The decoders' read position in the record being read (one reader at a time: no tuple per value). */
let at = 0;

function varint(buf: Uint8Array): number {
  let b = buf[at++]!;
  if (b < 0x80) return b;
  let v = b & 0x7f;
  let scale = 0x80;
  for (;;) {
    b = buf[at++]!;
    v += (b & 0x7f) * scale;
    if (b < 0x80) return v;
    scale *= 0x80;
  }
}

/** Length-prefixed UTF-8; ASCII (every name PostgreSQL makes) without a TextDecoder call. */
function text(buf: Uint8Array): string {
  const len = varint(buf);
  const end = at + len;
  let s = "";
  for (let i = at; i < end; i++) {
    const c = buf[i]!;
    if (c >= 0x80) {
      s = decoder.decode(buf.subarray(at, end));
      break;
    }
    s += String.fromCharCode(c);
  }
  at = end;
  return s;
}

function sha1Hex(buf: Uint8Array): string {
  const s = (buf.subarray(at, at + 20) as Uint8Array & { toHex(): string }).toHex();
  at += 20;
  return s;
}

function skipVarint(buf: Uint8Array, p: number): number {
  while (buf[p++]! >= 0x80);
  return p;
}

function skipText(buf: Uint8Array, p: number): number {
  at = p;
  const len = varint(buf);
  return at + len;
}

/** A record's length from its bytes (records carry no length of their own). */
function recordLengthAt(buf: Uint8Array, start: number): number {
  let p = skipVarint(buf, start);
  p = skipText(buf, p);
  at = p;
  const flags = varint(buf);
  p = skipVarint(buf, skipVarint(buf, skipVarint(buf, at)));
  if (flags & F_CHECKSUM) p = flags & F_CHECKSUM_TEXT ? skipText(buf, p) : p + 20;
  if (flags & F_PAGE_ERROR) p = skipText(buf, p);
  if (flags & F_REPO_SIZE) p = skipVarint(buf, p);
  if (flags & F_RCK) p = flags & F_RCK_TEXT ? skipText(buf, p) : p + 20;
  if (flags & F_REFERENCE) p = skipVarint(buf, p);
  if (flags & F_BUNDLE_ID) p = skipVarint(buf, p);
  if (flags & F_BUNDLE_OFFSET) p = skipVarint(buf, p);
  if (flags & F_BLOCK) p = skipVarint(buf, skipVarint(buf, skipVarint(buf, p)));
  if (flags & F_EXTRA) p = skipText(buf, p);
  return p - start;
}

function writeHex(out: Uint8Array, p: number, hex: string): number {
  for (let i = 0; i < 40; i += 2) out[p++] = (nibble(hex.charCodeAt(i)) << 4) | nibble(hex.charCodeAt(i + 1));
  return p;
}

function nibble(c: number): number {
  return c <= 0x39 ? c - 0x30 : c - 0x57;
}

function compareBytes(a: Uint8Array, pa: number, ea: number, b: Uint8Array, pb: number, eb: number): number {
  const n = Math.min(ea - pa, eb - pb);
  for (let i = 0; i < n; i++) {
    const c = a[pa + i]! - b[pb + i]!;
    if (c !== 0) return c;
  }
  return ea - pa - (eb - pb);
}

/** FNV-1a over the directory id and the base name's bytes. */
function hashOf(dirId: number, buf: Uint8Array, start: number, end: number): number {
  let h = Math.imul(0x811c9dc5 ^ dirId, 0x01000193);
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return (h ^ (h >>> 15)) >>> 0;
}
