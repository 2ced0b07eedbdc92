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
import { byteOrder, type JsonValue } from "../common/json.ts";
import { isCompressType, type CompressType } from "../common/compress-type.ts";
import type { Storage } from "../storage/storage.ts";
import { InfoIni, REPO_FORMAT, REPO_VERSION } from "./ini.ts";
import { loadInfoFile, saveInfoFile } from "./info-file.ts";
import { INFO_COPY_EXT, repoPath } from "./layout.ts";
import type { Annotation } from "./annotation.ts";
import { BLOCK_INCR_CHECKSUM_SIZE_MIN, BLOCK_INCR_SIZE_FACTOR } from "./block-map.ts";
import type { BackupType } from "./backup-info.ts";

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
  readonly files = new Map<string, ManifestFile>();
  readonly paths = new Map<string, ManifestPath>();
  readonly links = new Map<string, ManifestLink>();
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

  constructor(backup: ManifestBackup, db: ManifestDb) {
    this.backup = backup;
    this.db = db;
  }

  // ---- parsing ------------------------------------------------------------------------------

  static fromIni(ini: InfoIni, file = "backup.manifest"): Manifest {
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

    const fileDef = defaults(ini, "target:file:default");
    for (const k of ini.keys("target:file")) {
      const v = ini.value("target:file", k) as Record<string, JsonValue>;
      const f: ManifestFile = {
        name: k,
        size: Number(v.size ?? 0),
        timestamp: Number(v.timestamp ?? 0),
        checksum: v.checksum === undefined ? undefined : String(v.checksum),
        checksumPage: v["checksum-page"] === undefined ? undefined : v["checksum-page"] === true,
        checksumPageError: v["checksum-page-error"] as ManifestFile["checksumPageError"],
        repoSize: v["repo-size"] === undefined ? undefined : Number(v["repo-size"]),
        rck: v.rck === undefined ? undefined : String(v.rck),
        reference: v.reference === undefined ? undefined : String(v.reference),
        mode: v.mode === undefined ? String(fileDef.mode ?? "0600") : String(v.mode),
        user: ownerOf(v.user, fileDef.user),
        group: ownerOf(v.group, fileDef.group),
        bundleId: v.bni === undefined ? undefined : Number(v.bni),
        bundleOffset: v.bno === undefined ? undefined : Number(v.bno),
        blockIncr: v.bi === undefined ? undefined : {
          blockSize: Number(v.bi) * BLOCK_INCR_SIZE_FACTOR,
          checksumSize: v.bic === undefined ? BLOCK_INCR_CHECKSUM_SIZE_MIN : Number(v.bic),
          mapSize: v.bim === undefined ? 0 : Number(v.bim),
        },
      };
      for (const [key, val] of Object.entries(v)) if (!FILE_KEYS.has(key)) (f.extra ??= {})[key] = val;
      m.files.set(k, f);
    }
    const pathDef = defaults(ini, "target:path:default");
    for (const k of ini.keys("target:path")) {
      const v = ini.value("target:path", k) as Record<string, JsonValue>;
      m.paths.set(k, { name: k, mode: v.mode === undefined ? String(pathDef.mode ?? "0700") : String(v.mode), user: ownerOf(v.user, pathDef.user), group: ownerOf(v.group, pathDef.group) });
    }
    const linkDef = defaults(ini, "target:link:default");
    for (const k of ini.keys("target:link")) {
      const v = ini.value("target:link", k) as Record<string, JsonValue>;
      m.links.set(k, { name: k, destination: String(v.destination), user: ownerOf(v.user, linkDef.user), group: ownerOf(v.group, linkDef.group) });
    }

    const modelled = new Set(["backrest", "cipher", "backup", "backup:db", "backup:option", "backup:target", "db", "metadata", "target:file", "target:file:default", "target:link", "target:link:default", "target:path", "target:path:default"]);
    for (const sec of ini.sectionNames()) if (!modelled.has(sec)) m.#otherSections.set(sec, ini.keys(sec).map((k) => [k, ini.raw(sec, k)!]));
    return m;
  }

  static parse(text: string, file = "backup.manifest"): Manifest {
    return Manifest.fromIni(InfoIni.parse(text, file), file);
  }

  // ---- rendering ----------------------------------------------------------------------------

  toIni(): InfoIni {
    const ini = new InfoIni();
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

    const fileDef = commonDefaults([...this.files.values()], true);
    ini.ensureSection("target:file");
    for (const f of this.files.values()) {
      ini.setValue("target:file", f.name, {
        ...f.extra,
        bi: f.blockIncr ? f.blockIncr.blockSize / BLOCK_INCR_SIZE_FACTOR : undefined,
        bic: f.blockIncr && f.blockIncr.checksumSize !== BLOCK_INCR_CHECKSUM_SIZE_MIN ? f.blockIncr.checksumSize : undefined,
        bim: f.blockIncr && f.blockIncr.mapSize !== 0 ? f.blockIncr.mapSize : undefined,
        bni: f.bundleId,
        bno: f.bundleOffset,
        checksum: f.checksum,
        "checksum-page": f.checksumPage,
        "checksum-page-error": f.checksumPageError,
        group: f.group === fileDef.group ? undefined : f.group,
        mode: f.mode === fileDef.mode ? undefined : f.mode,
        rck: f.rck,
        reference: f.reference,
        "repo-size": f.repoSize === undefined || f.repoSize === f.size ? undefined : f.repoSize,
        size: f.size,
        timestamp: f.timestamp,
        user: f.user === fileDef.user ? undefined : f.user,
      });
    }
    putDefaults(ini, "target:file:default", fileDef);

    if (this.links.size > 0) {
      const linkDef = commonDefaults([...this.links.values()], false);
      for (const l of this.links.values())
        ini.setValue("target:link", l.name, { destination: l.destination, group: l.group === linkDef.group ? undefined : l.group, user: l.user === linkDef.user ? undefined : l.user });
      putDefaults(ini, "target:link:default", linkDef);
    }

    const pathDef = commonDefaults([...this.paths.values()], true);
    ini.ensureSection("target:path");
    for (const p of this.paths.values())
      ini.setValue("target:path", p.name, {
        group: p.group === pathDef.group ? undefined : p.group,
        mode: p.mode === pathDef.mode ? undefined : p.mode,
        user: p.user === pathDef.user ? undefined : p.user,
      });
    putDefaults(ini, "target:path:default", pathDef);

    for (const [sec, kv] of this.#otherSections) for (const [k, raw] of kv) ini.setRaw(sec, k, raw);
    return ini;
  }

  render(): string {
    return this.toIni().render();
  }

  // ---- queries ------------------------------------------------------------------------------

  /** Files sorted by name. */
  fileList(): ManifestFile[] {
    return [...this.files.values()].sort((a, b) => byteOrder(a.name, b.name));
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

function ownerOf(v: JsonValue | undefined, def: JsonValue | undefined): Owner {
  const x = v === undefined ? def : v;
  return x === false || x === undefined || x === null ? false : String(x);
}

function defaults(ini: InfoIni, section: string): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const k of ini.keys(section)) out[k] = ini.value(section, k)!;
  return out;
}

interface Defaults {
  mode?: string;
  user: Owner;
  group: Owner;
}

/** The most common mode/user/group (pgBackRest writes these as the section default). */
function commonDefaults(items: { mode?: string; user: Owner; group: Owner }[], withMode: boolean): Defaults {
  const top = <T>(vals: T[], fallback: T): T => {
    const counts = new Map<T, number>();
    for (const v of vals) counts.set(v, (counts.get(v) ?? 0) + 1);
    let best = fallback;
    let n = -1;
    for (const [v, c] of counts) if (c > n) [best, n] = [v, c];
    return best;
  };
  return {
    mode: withMode ? top(items.map((i) => i.mode!), withMode ? "0600" : undefined!) : undefined,
    user: top(items.map((i) => i.user), "postgres" as Owner),
    group: top(items.map((i) => i.group), "postgres" as Owner),
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
  const ini = await loadInfoFile(storage, path, { cipherPass, hint: `is backup ${label} complete? run 'pgbunker info' to list the backups.` });
  return Manifest.fromIni(ini!, storage.path(path));
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
  await storage.put(repoPath.manifest(stanza, m.backup.label) + INFO_COPY_EXT, m.render(), { filters: cipherPass ? [{ type: "encrypt", pass: cipherPass }] : [] });
}

/** Final manifest: main + copy. Writing it is what completes the backup directory. */
export async function saveManifest(storage: Storage, stanza: string, m: Manifest, cipherPass?: string): Promise<void> {
  await saveInfoFile(storage, repoPath.manifest(stanza, m.backup.label), m.toIni(), cipherPass);
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
