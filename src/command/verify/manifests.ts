/**
 * The manifests verify reads through, loaded when a backup needs them and dropped when the next
 * backup does not: one backup chain's manifests in memory at a time, not every backup's (a parsed
 * manifest costs about a KiB per file, the largest part of verify's memory with many files).
 */
import type { BackupInfo } from "../../repo/backup-info.ts";
import type { Storage } from "../../storage/storage.ts";
import { loadManifestChecked, type ManifestLoad } from "./collect.ts";

/** Labels of one chain share the full backup's label (LABEL_FULL or LABEL_FULL_..D/I). */
const chainOf = (label: string) => label.slice(0, 16);

export class ManifestCache {
  /** The manifests loaded now: what locateFile, fileJob and the block check look in. */
  readonly loaded = new Map<string, ManifestLoad>();
  /** The first load of each label (state, notes, warnings), kept without its Manifest once dropped. */
  readonly #states = new Map<string, ManifestLoad>();
  readonly #storage: Storage;
  readonly #stanza: string;
  readonly #backupInfo: BackupInfo;
  /** Labels whose manifest may be loaded: the backup directories (of the set's scope with --set). */
  allowed: ReadonlySet<string>;

  constructor(storage: Storage, stanza: string, backupInfo: BackupInfo, allowed: ReadonlySet<string>) {
    this.#storage = storage;
    this.#stanza = stanza;
    this.#backupInfo = backupInfo;
    this.allowed = allowed;
  }

  /** A backup's manifest (undefined when its directory is not there or not allowed), loaded once while kept. */
  async load(label: string): Promise<ManifestLoad | undefined> {
    if (!this.allowed.has(label)) return undefined;
    let m = this.loaded.get(label);
    if (!m) {
      m = await loadManifestChecked(this.#storage, this.#stanza, label, this.#backupInfo);
      this.loaded.set(label, m);
      if (!this.#states.has(label)) this.#states.set(label, m);
    }
    return m;
  }

  /** What the first load of a label found (its Manifest only while loaded). */
  state(label: string): ManifestLoad | undefined {
    return this.#states.get(label);
  }

  /**
   * Make `label` and every backup its files are read through loaded: the backups that store its
   * files, and their references (a block map may point into any of them). Manifests of other
   * chains are dropped first, so two chains are never in memory together.
   */
  async prepare(label: string): Promise<ManifestLoad | undefined> {
    for (const l of [...this.loaded.keys()]) if (chainOf(l) !== chainOf(label)) this.#drop(l);
    const own = await this.load(label);
    const need = new Set([label]);
    if (own?.manifest) {
      for (const r of own.manifest.backup.reference) need.add(r);
      for (const f of own.manifest.files.values()) if (f.reference !== undefined) need.add(f.reference);
    }
    for (const l of [...need]) {
      const m = await this.load(l);
      if (m?.manifest) for (const r of m.manifest.backup.reference) need.add(r);
    }
    for (const l of need) await this.load(l);
    for (const l of [...this.loaded.keys()]) if (!need.has(l)) this.#drop(l);
    return own;
  }

  #drop(label: string): void {
    this.loaded.delete(label);
    const s = this.#states.get(label);
    if (s?.manifest) this.#states.set(label, { ...s, manifest: undefined });
  }
}
