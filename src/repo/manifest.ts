/**
 * backup.manifest: everything a backup holds. Sections (pgBackRest format 5):
 *   [backup]          label, type, prior, reference list, archive/LSN start+stop, timestamps, bundle
 *   [backup:db]       the cluster (id, system id, version, catalog/control versions)
 *   [backup:option]   options the backup was made with
 *   [backup:target]   pg_data and tablespaces/links (path, type, tablespace id/name)
 *   [db]              databases: name → {db-id, db-last-system-id}
 *   [metadata]        annotations
 *   [target:file]     file → {checksum, checksum-page, checksum-page-error, repo-size, rck, reference, size, timestamp, ...}
 *   [target:link]     link → {destination}
 *   [target:path]     directories
 *   [target:*:default] the most common mode/user/group, left out of each entry that matches
 *
 * In memory every file, path and link carries its full mode/user/group; defaults are worked out on
 * render. Unknown keys survive a load/render round trip.
 */
import { err } from "../common/error.ts";
import { byteOrder, jsonParse, jsonRender, type JsonValue } from "../common/json.ts";
import { isCompressType, type CompressType } from "../common/compress-type.ts";
import type { Storage } from "../storage/storage.ts";
import { InfoIni, InfoReader, renderInfo, REPO_FORMAT, REPO_VERSION, type IniEntry } from "./ini.ts";
import { loadInfoFile, loadInfoInto, saveInfoFile, writePieces, type InfoSink } from "./info-file.ts";
import { INFO_COPY_EXT, repoPath } from "./layout.ts";
import type { Annotation } from "./annotation.ts";
import { BLOCK_INCR_CHECKSUM_SIZE_MIN, BLOCK_INCR_SIZE_FACTOR } from "./block-map.ts";
import type { BackupType } from "./backup-info.ts";
import { ManifestFiles } from "./manifest-files.ts";

export type Owner = string | false;

export interface ManifestFile {
  name: string;
  size: number;
  timestamp: number;
  checksum?: string;
  checksumPage?: boolean;
  checksumPageError?: (number | [number, number])[];
  repoSize?: number;
  /** SHA-1 of the stored (compressed/encrypted) bytes. */
  rck?: string;
  /** Label of the backup that holds the stored file (absent: this backup). */
  reference?: string;
  mode: string;
  user: Owner;
  group: Owner;
  /** Bundled files (pgBackRest repo-bundle): bundle id and offset inside it. */
  bundleId?: number;
  bundleOffset?: number;
  /** Block incremental (repo-block): stored as super blocks plus a map (repo/block-map.ts). */
  blockIncr?: ManifestBlockIncr;
  /** Keys this version does not model, kept verbatim. */
  extra?: Record<string, JsonValue>;
}

/** A block incremental file: manifest keys bi (× 8192), bic and bim. */
export interface ManifestBlockIncr {
  /** Block size in bytes. */
  blockSize: number;
  checksumSize: number;
  /** Stored size of the map at the end of the file's repository bytes (0: none yet). */
  mapSize: number;
}

export interface ManifestPath {
  name: string;
  mode: string;
  user: Owner;
  group: Owner;
}

export interface ManifestLink {
  name: string;
  destination: string;
  user: Owner;
  group: Owner;
}

export interface ManifestTarget {
  name: string;
  path: string;
  type: "path" | "link";
  tablespaceId?: string;
  tablespaceName?: string;
  /** For a link to a single file: the file name (path is then its directory). */
  file?: string;
}

export interface ManifestDbEntry {
  name: string;
  id: number;
  lastSystemId: number;
}

export interface ManifestBackup {
  label: string;
  type: BackupType;
  prior?: string;
  /** Every backup that holds files of this one, oldest first, including itself. */
  reference: string[];
  archiveStart?: string;
  archiveStop?: string;
  lsnStart?: string;
  lsnStop?: string;
  timestampStart: number;
  timestampCopyStart?: number;
  timestampStop?: number;
  /** Small files are stored in bundles (repo-bundle): see ManifestFile.bundleId. */
  bundle?: boolean;
  /** Block incremental backup (repo-block): backup-block-incr. */
  blockIncr?: boolean;
  /**
   * backup-bundle-raw: every file of the backup is compressed and encrypted "raw" (no cipher
   * magic, gz as zlib, lz4 without content checksum). pgBackRest sets it with block incremental.
   */
  bundleRaw?: boolean;
}

export interface ManifestDb {
  id: number;
  systemId: bigint;
  version: string;
  catalogVersion: number;
  controlVersion: number;
}

/**
 * [backup:option]: the options a backup was made with (names without "option-"). The ones
 * pgbunker reads or writes are typed; others a newer pgBackRest writes are kept as they are.
 */
export interface ManifestOptions {
  "archive-check"?: boolean;
  "archive-copy"?: boolean;
  "backup-standby"?: boolean;
  /** Block incremental (pgBackRest 2.52+). */
  block?: boolean;
  "buffer-size"?: number;
  "checksum-page"?: boolean;
  /** Before compress-type: true meant gzip. */
  compress?: boolean;
  "compress-level"?: number;
  "compress-level-network"?: number;
  "compress-type"?: string;
  delta?: boolean;
  hardlink?: boolean;
  online?: boolean;
  "process-max"?: number;
  [other: string]: JsonValue | undefined;
}

/** Where a manifest keeps the backup's annotation: [metadata] annotation={"key":"value",...}. */
const ANNOTATION_SECTION = "metadata";
const ANNOTATION_KEY = "annotation";

const FILE_KEYS = new Set(["bi", "bic", "bim", "bni", "bno", "checksum", "checksum-page", "checksum-page-error", "group", "mode", "rck", "reference", "repo-size", "size", "timestamp", "user"]);

export class Manifest {
  backup: ManifestBackup;
  db: ManifestDb;
  options: ManifestOptions = {};
  readonly targets = new Map<string, ManifestTarget>();
  readonly dbs = new Map<string, ManifestDbEntry>();
  /** Compact (manifest-files.ts): get() and the iterators hand out copies; set() keeps a change. */
  readonly files: ManifestFiles;
  readonly paths: Map<string, ManifestPath>;
  readonly links: Map<string, ManifestLink>;
  annotation?: Annotation;

  /** How the backup's files are compressed: compress-type, or in older manifests compress=true (gzip). */
  get compressType(): CompressType {
    const type = this.options["compress-type"];
    if (type === undefined) return this.options.compress === true ? "gz" : "none";
    if (!isCompressType(type)) throw err("FormatError", `backup ${this.backup.label} uses unknown compress-type '${type}'`, "was it written by a newer pgBackRest? upgrade pgbunker.");
    return type;
  }
  /** Passphrase of this backup's files in an encrypted repository ([cipher] cipher-pass). */
  cipherPass?: string;
  /** Backrest format/version of the program that wrote the manifest. */
  format = REPO_FORMAT;
  programVersion = REPO_VERSION;
  /** Sections this version does not model, kept verbatim. */
  readonly #otherSections = new Map<string, [string, string][]>();
  readonly #otherBackupKeys = new Map<string, string>();

  constructor(backup: ManifestBackup, db: ManifestDb, bulk?: Bulk) {
    this.backup = backup;
    this.db = db;
    this.files = bulk?.files ?? new ManifestFiles();
    this.paths = bulk?.paths ?? new Map();
    this.links = bulk?.links ?? new Map();
  }

  // ---- parsing ------------------------------------------------------------------------------

  /**
   * A streaming reader's target (loadInfoInto): the small sections go into an InfoIni, the bulk
   * ones (one entry per file, path, link) straight into their objects, so a manifest is never held
   * as text or as an InfoIni of every file. Owners and modes left out of an entry (the section
   * default) are filled in at the end, since the default sections sort after the bulk ones.
   */
  static reader(file = "backup.manifest"): InfoSink<Manifest> {
    const head = new InfoIni();
    const headVisit = head.visitor();
    const bulk: Bulk = { files: new ManifestFiles(), paths: new Map(), links: new Map() };
    // Modes, owners and references repeat across files: one string each, not one per file.
    const interned = new Map<string, string>();
    const intern = (v: JsonValue | undefined): string | undefined => {
      if (v === undefined || v === null) return undefined;
      const str = String(v);
      const known = interned.get(str);
      if (known !== undefined) return known;
      interned.set(str, str);
      return str;
    };
    const owner = (v: JsonValue | undefined): Owner => (v === undefined ? (undefined as unknown as Owner) : v === false || v === null ? false : intern(v)!);
    return {
      visit(section, key, raw) {
        if (!BULK.has(section)) return headVisit(section, key, raw);
        if (key === undefined) return;
        const v = bulkValue(raw!);
        if (section === "target:file") bulk.files.set(key, fileOf(key, v, intern, owner));
        else if (section === "target:path") bulk.paths.set(key, { name: key, mode: intern(v.mode)!, user: owner(v.user), group: owner(v.group) });
        else bulk.links.set(key, { name: key, destination: String(v.destination), user: owner(v.user), group: owner(v.group) });
      },
      result: () => Manifest.#fromHead(head, file, bulk),
    };
  }

  static fromIni(ini: InfoIni, file = "backup.manifest"): Manifest {
    const r = Manifest.reader(file);
    for (const [section, key, raw] of ini.entries()) r.visit(section, key, raw);
    return r.result();
  }

  /** The manifest from its small sections (all but the bulk ones, which the reader has parsed into `bulk`). */
  static #fromHead(ini: InfoIni, file: string, bulk: Bulk): Manifest {
    const s = (sec: string, k: string) => {
      const v = ini.value(sec, k);
      return v === undefined || v === null ? undefined : String(v);
    };
    const n = (sec: string, k: string) => {
      const v = ini.value(sec, k);
      return v === undefined || v === null ? undefined : Number(v);
    };
    const ref = s("backup", "backup-reference");
    const m = new Manifest(
      {
        label: String(ini.need("backup", "backup-label", file)),
        type: String(ini.need("backup", "backup-type", file)) as BackupType,
        prior: s("backup", "backup-prior"),
        reference: ref ? ref.split(",") : [],
        archiveStart: s("backup", "backup-archive-start"),
        archiveStop: s("backup", "backup-archive-stop"),
        lsnStart: s("backup", "backup-lsn-start"),
        lsnStop: s("backup", "backup-lsn-stop"),
        timestampStart: n("backup", "backup-timestamp-start") ?? 0,
        timestampCopyStart: n("backup", "backup-timestamp-copy-start"),
        timestampStop: n("backup", "backup-timestamp-stop"),
        bundle: ini.value("backup", "backup-bundle") === true ? true : undefined,
        blockIncr: ini.value("backup", "backup-block-incr") === true ? true : undefined,
        bundleRaw: ini.value("backup", "backup-bundle-raw") === true ? true : undefined,
      },
      {
        id: Number(ini.need("backup:db", "db-id", file)),
        systemId: BigInt(ini.need("backup:db", "db-system-id", file) as bigint | number),
        version: String(ini.need("backup:db", "db-version", file)),
        catalogVersion: Number(ini.need("backup:db", "db-catalog-version", file)),
        controlVersion: Number(ini.need("backup:db", "db-control-version", file)),
      },
      bulk,
    );
    m.format = Number(ini.value("backrest", "backrest-format") ?? REPO_FORMAT);
    m.programVersion = String(ini.value("backrest", "backrest-version") ?? REPO_VERSION);
    const known = ["backup-archive-start", "backup-archive-stop", "backup-block-incr", "backup-bundle", "backup-bundle-raw", "backup-label", "backup-lsn-start", "backup-lsn-stop", "backup-prior", "backup-reference", "backup-timestamp-copy-start", "backup-timestamp-start", "backup-timestamp-stop", "backup-type"];
    for (const k of ini.keys("backup")) if (!known.includes(k)) m.#otherBackupKeys.set(k, ini.raw("backup", k)!);

    for (const k of ini.keys("backup:option")) m.options[k.replace(/^option-/, "")] = ini.value("backup:option", k)!;

    for (const k of ini.keys("backup:target")) {
      const v = ini.value("backup:target", k) as Record<string, JsonValue>;
      m.targets.set(k, {
        name: k,
        path: String(v.path),
        type: v.type === "link" ? "link" : "path",
        tablespaceId: v["tablespace-id"] === undefined ? undefined : String(v["tablespace-id"]),
        tablespaceName: v["tablespace-name"] === undefined ? undefined : String(v["tablespace-name"]),
        file: v.file === undefined ? undefined : String(v.file),
      });
    }
    for (const k of ini.keys("db")) {
      const v = ini.value("db", k) as Record<string, JsonValue>;
      m.dbs.set(k, { name: k, id: Number(v["db-id"]), lastSystemId: Number(v["db-last-system-id"]) });
    }
    const pass = ini.value("cipher", "cipher-pass");
    if (typeof pass === "string") m.cipherPass = pass;
    const ann = ini.value(ANNOTATION_SECTION, ANNOTATION_KEY);
    if (ann && typeof ann === "object") m.annotation = ann as Annotation;

    const modelled = new Set(["backrest", "cipher", "backup", "backup:db", "backup:option", "backup:target", "db", "metadata", "target:file:default", "target:link:default", "target:path:default", ...BULK]);
    for (const sec of ini.sectionNames()) if (!modelled.has(sec)) m.#otherSections.set(sec, ini.keys(sec).map((k) => [k, ini.raw(sec, k)!]));
    const fileDefault = defaults(ini, "target:file:default");
    m.files.resolveDefaults(String(fileDefault.mode ?? "0600"), ownerOf(undefined, fileDefault.user), ownerOf(undefined, fileDefault.group));
    resolveOwners(m.paths.values(), defaults(ini, "target:path:default"), "0700");
    resolveOwners(m.links.values(), defaults(ini, "target:link:default"), undefined);
    return m;
  }

  static parse(text: string, file = "backup.manifest"): Manifest {
    const r = Manifest.reader(file);
    const reader = new InfoReader(file, r.visit);
    reader.push(new TextEncoder().encode(text));
    reader.end();
    return r.result();
  }

  // ---- rendering ----------------------------------------------------------------------------

  /** The small sections as an InfoIni, with the bulk sections' defaults (`defs`). */
  #headIni(defs: BulkDefaults): InfoIni {
    const ini = new InfoIni();
    ini.setValue("backrest", "backrest-format", REPO_FORMAT);
    const b = this.backup;
    ini.setValue("backrest", "backrest-version", this.programVersion);
    const put = (sec: string, k: string, v: unknown) => {
      if (v !== undefined) ini.setValue(sec, k, v);
    };
    put("backup", "backup-archive-start", b.archiveStart);
    put("backup", "backup-archive-stop", b.archiveStop);
    put("backup", "backup-block-incr", b.blockIncr ? true : undefined);
    put("backup", "backup-bundle", b.bundle ? true : undefined);
    put("backup", "backup-bundle-raw", b.bundleRaw ? true : undefined);
    put("backup", "backup-label", b.label);
    put("backup", "backup-lsn-start", b.lsnStart);
    put("backup", "backup-lsn-stop", b.lsnStop);
    put("backup", "backup-prior", b.prior);
    put("backup", "backup-reference", b.reference.length ? b.reference.join(",") : undefined);
    put("backup", "backup-timestamp-copy-start", b.timestampCopyStart);
    put("backup", "backup-timestamp-start", b.timestampStart);
    put("backup", "backup-timestamp-stop", b.timestampStop);
    put("backup", "backup-type", b.type);
    for (const [k, raw] of this.#otherBackupKeys) ini.setRaw("backup", k, raw);

    ini.setValue("backup:db", "db-catalog-version", this.db.catalogVersion);
    ini.setValue("backup:db", "db-control-version", this.db.controlVersion);
    ini.setValue("backup:db", "db-id", this.db.id);
    ini.setValue("backup:db", "db-system-id", this.db.systemId);
    ini.setValue("backup:db", "db-version", this.db.version);

    for (const [k, v] of Object.entries(this.options)) if (v !== undefined) ini.setValue("backup:option", `option-${k}`, v);

    for (const t of this.targets.values())
      ini.setValue("backup:target", t.name, { file: t.file, path: t.path, "tablespace-id": t.tablespaceId, "tablespace-name": t.tablespaceName, type: t.type });
    for (const d of this.dbs.values()) ini.setValue("db", d.name, { "db-id": d.id, "db-last-system-id": d.lastSystemId });
    if (this.annotation && Object.keys(this.annotation).length) ini.setValue(ANNOTATION_SECTION, ANNOTATION_KEY, this.annotation);
    if (this.cipherPass) ini.setValue("cipher", "cipher-pass", this.cipherPass);

    for (const [sec, kv] of this.#otherSections) for (const [k, raw] of kv) ini.setRaw(sec, k, raw);
    putDefaults(ini, "target:file:default", defs.file);
    if (defs.link) putDefaults(ini, "target:link:default", defs.link);
    putDefaults(ini, "target:path:default", defs.path);
    return ini;
  }


  /**
   * The manifest as info-file entries in file order: the small sections from an InfoIni, the bulk
   * ones made one entry at a time from the model (nothing per file is built up front but the sorted
   * list of names).
   */
  *entries(): Generator<IniEntry> {
    const defs: BulkDefaults = {
      file: this.files.commonOwners("0600"),
      link: this.links.size > 0 ? commonDefaults(this.links.values(), undefined) : undefined,
      path: commonDefaults(this.paths.values(), "0700"),
    };
    const bulk: [string, () => Iterable<IniEntry>][] = [["target:file", () => this.#fileEntries(defs.file)]];
    if (defs.link) bulk.push(["target:link", () => this.#linkEntries(defs.link!)]);
    bulk.push(["target:path", () => this.#pathEntries(defs.path)]);
    let i = 0;
    for (const e of this.#headIni(defs).entries()) {
      if (e[1] === undefined) for (; i < bulk.length && byteOrder(bulk[i]![0], e[0]) < 0; i++) yield* bulk[i]![1]();
      yield e;
    }
    for (; i < bulk.length; i++) yield* bulk[i]![1]();
  }

  *#fileEntries(def: Defaults): Generator<IniEntry> {
    const sec = "target:file";
    yield [sec];
    for (const f of this.files.sorted()) yield [sec, f.name, fileValue(f, def)];
  }

  *#linkEntries(def: Defaults): Generator<IniEntry> {
    const sec = "target:link";
    yield [sec];
    for (const l of sortedByName(this.links.values()))
      yield [sec, l.name, jsonRender({ destination: l.destination, group: l.group === def.group ? undefined : l.group, user: l.user === def.user ? undefined : l.user })];
  }

  *#pathEntries(def: Defaults): Generator<IniEntry> {
    const sec = "target:path";
    yield [sec];
    for (const p of sortedByName(this.paths.values()))
      yield [sec, p.name, jsonRender({ group: p.group === def.group ? undefined : p.group, mode: p.mode === def.mode ? undefined : p.mode, user: p.user === def.user ? undefined : p.user })];
  }

  /** The text in pieces of ~64 KiB (what a save streams to storage). */
  renderPieces(): Iterable<string> {
    return renderInfo(this.entries());
  }

  render(): string {
    return [...this.renderPieces()].join("");
  }

  // ---- queries ------------------------------------------------------------------------------

  /**
   * Every file sorted by name, as an array of objects: for tests and small manifests only (a
   * command walks `files.sorted()`, one decoded file at a time).
   */
  fileList(): ManifestFile[] {
    return [...this.files.sorted()];
  }

  /** The label whose directory holds a file's stored bytes. */
  fileLabel(f: ManifestFile): string {
    return f.reference ?? this.backup.label;
  }

  /** Total size of the PostgreSQL files, and of what this backup itself stored. */
  sizes(): { size: number; sizeDelta: number; repoSize: number; repoSizeDelta: number; repoSizeMap: number; repoSizeMapDelta: number } {
    let size = 0, sizeDelta = 0, repoSize = 0, repoSizeDelta = 0, repoSizeMap = 0, repoSizeMapDelta = 0;
    for (const f of this.files.values()) {
      // A stored size of 0 means not recorded (pgBackRest counts the file's size then).
      const rs = f.repoSize || f.size;
      const map = f.blockIncr?.mapSize ?? 0;
      size += f.size;
      repoSize += rs;
      repoSizeMap += map;
      if (f.reference === undefined) {
        sizeDelta += f.size;
        repoSizeDelta += rs;
        repoSizeMapDelta += map;
      }
    }
    return { size, sizeDelta, repoSize, repoSizeDelta, repoSizeMap, repoSizeMapDelta };
  }

  /** Tablespace targets (pg_tblspc/OID). */
  tablespaces(): ManifestTarget[] {
    return [...this.targets.values()].filter((t) => t.tablespaceId !== undefined);
  }

  /** pg_data target's path (the original data directory). */
  get pgDataPath(): string {
    const t = this.targets.get("pg_data");
    if (!t) throw err("FormatError", `manifest of backup ${this.backup.label} has no pg_data target`);
    return t.path;
  }
}

/** Sections with one entry per file, path or link: read and rendered entry by entry, never through an InfoIni. */
const BULK = new Set(["target:file", "target:link", "target:path"]);

interface Bulk {
  files: ManifestFiles;
  paths: Map<string, ManifestPath>;
  links: Map<string, ManifestLink>;
}

interface BulkDefaults {
  file: Defaults;
  link?: Defaults;
  path: Defaults;
}

/**
 * A bulk entry's value. The engine's JSON.parse makes fresh strings (jsonParse's are slices of the
 * value text, which would keep each line alive through its checksum); jsonParse is kept for a value
 * with a long digit run, which may be an integer beyond 2^53.
 */
function bulkValue(raw: string): Record<string, JsonValue> {
  return (/\d{16}/.test(raw) ? jsonParse(raw) : JSON.parse(raw)) as Record<string, JsonValue>;
}

/** One [target:file] entry; only the keys present are set (a smaller object than one with every key). */
function fileOf(name: string, v: Record<string, JsonValue>, intern: (v: JsonValue | undefined) => string | undefined, owner: (v: JsonValue | undefined) => Owner): ManifestFile {
  const f: ManifestFile = { name, size: Number(v.size ?? 0), timestamp: Number(v.timestamp ?? 0), mode: intern(v.mode)!, user: owner(v.user), group: owner(v.group) };
  if (v.checksum !== undefined) f.checksum = String(v.checksum);
  if (v["checksum-page"] !== undefined) f.checksumPage = v["checksum-page"] === true;
  if (v["checksum-page-error"] !== undefined) f.checksumPageError = v["checksum-page-error"] as ManifestFile["checksumPageError"];
  if (v["repo-size"] !== undefined) f.repoSize = Number(v["repo-size"]);
  if (v.rck !== undefined) f.rck = String(v.rck);
  if (v.reference !== undefined) f.reference = intern(v.reference);
  if (v.bni !== undefined) f.bundleId = Number(v.bni);
  if (v.bno !== undefined) f.bundleOffset = Number(v.bno);
  if (v.bi !== undefined)
    f.blockIncr = {
      blockSize: Number(v.bi) * BLOCK_INCR_SIZE_FACTOR,
      checksumSize: v.bic === undefined ? BLOCK_INCR_CHECKSUM_SIZE_MIN : Number(v.bic),
      mapSize: v.bim === undefined ? 0 : Number(v.bim),
    };
  for (const key in v) if (!FILE_KEYS.has(key)) (f.extra ??= {})[key] = v[key]!;
  return f;
}

/**
 * A [target:file] entry's JSON: the keys present, in byte order, an owner or mode equal to the
 * section default left out. Written out by hand (a million files render on every partial save);
 * an entry with keys this version does not model goes through the generic renderer
 * (fileValueGeneric, which the unit test holds this one to).
 */
export function fileValue(f: ManifestFile, def: Defaults): string {
  if (f.extra) return fileValueGeneric(f, def);
  let s = "{";
  const b = f.blockIncr;
  if (b) {
    s += `"bi":${b.blockSize / BLOCK_INCR_SIZE_FACTOR},`;
    if (b.checksumSize !== BLOCK_INCR_CHECKSUM_SIZE_MIN) s += `"bic":${b.checksumSize},`;
    if (b.mapSize !== 0) s += `"bim":${b.mapSize},`;
  }
  if (f.bundleId !== undefined) s += `"bni":${f.bundleId},`;
  if (f.bundleOffset !== undefined) s += `"bno":${f.bundleOffset},`;
  if (f.checksum !== undefined) s += `"checksum":${JSON.stringify(f.checksum)},`;
  if (f.checksumPage !== undefined) s += `"checksum-page":${f.checksumPage},`;
  if (f.checksumPageError !== undefined) s += `"checksum-page-error":${jsonRender(f.checksumPageError)},`;
  if (f.group !== def.group) s += `"group":${jsonRender(f.group)},`;
  if (f.mode !== def.mode) s += `"mode":${jsonRender(f.mode)},`;
  if (f.rck !== undefined) s += `"rck":${JSON.stringify(f.rck)},`;
  if (f.reference !== undefined) s += `"reference":${JSON.stringify(f.reference)},`;
  if (f.repoSize !== undefined && f.repoSize !== f.size) s += `"repo-size":${f.repoSize},`;
  s += `"size":${f.size},"timestamp":${f.timestamp}`;
  if (f.user !== def.user) s += `,"user":${jsonRender(f.user)}`;
  return `${s}}`;
}

/** The same through jsonRender: the reference for fileValue, and the path for entries with unknown keys. */
export function fileValueGeneric(f: ManifestFile, def: Defaults): string {
  return jsonRender({
    ...f.extra,
    bi: f.blockIncr ? f.blockIncr.blockSize / BLOCK_INCR_SIZE_FACTOR : undefined,
    bic: f.blockIncr && f.blockIncr.checksumSize !== BLOCK_INCR_CHECKSUM_SIZE_MIN ? f.blockIncr.checksumSize : undefined,
    bim: f.blockIncr && f.blockIncr.mapSize !== 0 ? f.blockIncr.mapSize : undefined,
    bni: f.bundleId,
    bno: f.bundleOffset,
    checksum: f.checksum,
    "checksum-page": f.checksumPage,
    "checksum-page-error": f.checksumPageError,
    group: f.group === def.group ? undefined : f.group,
    mode: f.mode === def.mode ? undefined : f.mode,
    rck: f.rck,
    reference: f.reference,
    "repo-size": f.repoSize === undefined || f.repoSize === f.size ? undefined : f.repoSize,
    size: f.size,
    timestamp: f.timestamp,
    user: f.user === def.user ? undefined : f.user,
  });
}

/** Fill what entries left to the section default (the reader marks it undefined). */
function resolveOwners(items: Iterable<{ mode?: string; user: Owner; group: Owner }>, def: Record<string, JsonValue>, modeFallback: string | undefined): void {
  const mode = modeFallback === undefined ? undefined : String(def.mode ?? modeFallback);
  const user = ownerOf(undefined, def.user);
  const group = ownerOf(undefined, def.group);
  for (const i of items) {
    if (mode !== undefined && i.mode === undefined) i.mode = mode;
    if (i.user === undefined) i.user = user;
    if (i.group === undefined) i.group = group;
  }
}

function sortedByName<T extends { name: string }>(items: Iterable<T>): T[] {
  return [...items].sort((a, b) => byteOrder(a.name, b.name));
}

function ownerOf(v: JsonValue | undefined, def: JsonValue | undefined): Owner {
  const x = v === undefined ? def : v;
  return x === false || x === undefined || x === null ? false : String(x);
}

function defaults(ini: InfoIni, section: string): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const k of ini.keys(section)) out[k] = ini.value(section, k)!;
  return out;
}

export interface Defaults {
  mode?: string;
  user: Owner;
  group: Owner;
}

/** The most common mode/user/group (pgBackRest writes these as the section default); modeFallback undefined: no mode (links). */
function commonDefaults(items: Iterable<{ mode?: string; user: Owner; group: Owner }>, modeFallback: string | undefined): Defaults {
  const modes = new Map<string, number>();
  const users = new Map<Owner, number>();
  const groups = new Map<Owner, number>();
  const count = <T>(m: Map<T, number>, v: T) => m.set(v, (m.get(v) ?? 0) + 1);
  for (const i of items) {
    if (modeFallback !== undefined) count(modes, i.mode!);
    count(users, i.user);
    count(groups, i.group);
  }
  const top = <T>(counts: Map<T, number>, fallback: T): T => {
    let best = fallback;
    let n = -1;
    for (const [v, c] of counts) if (c > n) [best, n] = [v, c];
    return best;
  };
  return {
    mode: modeFallback === undefined ? undefined : top(modes, modeFallback),
    user: top(users, "postgres" as Owner),
    group: top(groups, "postgres" as Owner),
  };
}

function putDefaults(ini: InfoIni, section: string, d: Defaults): void {
  ini.setValue(section, "group", d.group);
  if (d.mode !== undefined) ini.setValue(section, "mode", d.mode);
  ini.setValue(section, "user", d.user);
}

/** Load a backup's manifest (main file, then .copy). */
export async function loadManifest(storage: Storage, stanza: string, label: string, cipherPass?: string): Promise<Manifest> {
  const path = repoPath.manifest(stanza, label);
  const m = await loadInfoInto(storage, path, { cipherPass, hint: `is backup ${label} complete? run 'pgbunker info' to list the backups.` }, () => Manifest.reader(storage.path(path)));
  return m!;
}

/**
 * Replace a saved manifest's annotation (main file and copy). The file is edited as an InfoIni, not
 * rebuilt through the Manifest model, so every other line of a manifest written by another program
 * (pgBackRest) stays byte for byte as it was; only the annotation and the checksum change.
 */
export async function saveManifestAnnotation(storage: Storage, stanza: string, label: string, annotation: Annotation | undefined, cipherPass?: string): Promise<void> {
  const path = repoPath.manifest(stanza, label);
  const ini = (await loadInfoFile(storage, path, { cipherPass, hint: `is backup ${label} complete? run 'pgbunker info' to list the backups.` }))!;
  if (annotation) ini.setValue(ANNOTATION_SECTION, ANNOTATION_KEY, annotation);
  else {
    ini.delete(ANNOTATION_SECTION, ANNOTATION_KEY);
    if (ini.keys(ANNOTATION_SECTION).length === 0) ini.deleteSection(ANNOTATION_SECTION);
  }
  await saveInfoFile(storage, path, ini, cipherPass);
}

/** The resumable partial manifest a running backup keeps (only the .copy exists until the end). */
export async function savePartialManifest(storage: Storage, stanza: string, m: Manifest, cipherPass?: string): Promise<void> {
  await writePieces(storage, repoPath.manifest(stanza, m.backup.label) + INFO_COPY_EXT, m.renderPieces(), { filters: cipherPass ? [{ type: "encrypt", pass: cipherPass }] : [] });
}

/** Final manifest: main + copy. Writing it is what completes the backup directory. */
export async function saveManifest(storage: Storage, stanza: string, m: Manifest, cipherPass?: string): Promise<void> {
  await saveInfoFile(storage, repoPath.manifest(stanza, m.backup.label), () => m.renderPieces(), cipherPass);
}

/** Ranges of page numbers as the manifest stores them: [1, [3, 5]]. */
export function pageErrorRanges(pages: readonly number[]): (number | [number, number])[] {
  const out: (number | [number, number])[] = [];
  const sorted = [...pages].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? sorted[i]! : [sorted[i]!, sorted[j]!]);
    i = j + 1;
  }
  return out;
}

/** "3, 5-6" for log messages. */
export function pageErrorText(ranges: readonly (number | [number, number])[]): string {
  return ranges.map((r) => (Array.isArray(r) ? `${r[0]}-${r[1]}` : String(r))).join(", ");
}
