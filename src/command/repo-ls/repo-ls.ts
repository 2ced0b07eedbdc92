/**
 * The 'repo-ls' command: list a path of the repository (repo-path, or the repository host's), as
 * pgBackRest does, so that scripts written for `pgbackrest repo-ls` read the same output:
 *  - text: one name per line; json: one object {NAME: {type, size, time | destination}, ...};
 *  - with --recurse names carry their path below the listed one, each directory before its content
 *    (after it with --sort=desc: the whole listing reversed); links are listed, not followed;
 *  - --filter is a regular expression tested on those names; a directory that does not match is
 *    still walked, its content may match;
 *  - a file lists as ".", a missing path as nothing; json always starts with the path itself "."
 *    (when the filter lets it through), so a missing path and an empty one look alike, as on
 *    object stores.
 */
import { err } from "../../common/error.ts";
import { byteOrder } from "../../common/json.ts";
import type { Config } from "../../config/parse.ts";
import type { Storage, StorageInfo } from "../../storage/storage.ts";
import { repoRelativePath } from "../shared/repos.ts";
import { storageRepo } from "../shared/storage.ts";
import { stdoutWrite } from "../shared/stdout.ts";

export type SortOrder = "asc" | "desc" | "none";

export async function run(cfg: Config): Promise<number> {
  if (cfg.params.length > 1) throw err("ParamInvalidError", "only one path may be specified", "list one path at a time; --recurse lists what is below it.");
  const storage = await storageRepo(cfg, { readOnly: true });
  try {
    const path = cfg.params.length === 1 ? repoRelativePath(storage, cfg.params[0]!) : "";
    const filter = compileFilter(cfg.str("filter"));
    const out = new Output(cfg.str("output") === "json");
    const top = await storage.info(path, { ignoreMissing: true });
    if (top?.type === "file") {
      // A file is matched by its whole path, as pgBackRest does (there is no listed name to match).
      if (!filter || filter.test(storage.path(path))) out.entry({ ...top, name: "." });
    } else {
      if (out.json && (!filter || filter.test("."))) out.entry({ name: ".", type: "path", size: 0, mtime: 0, mode: 0, uid: 0, gid: 0 });
      for await (const e of listEntries(storage, path, { recurse: cfg.bool("recurse"), sort: (cfg.get("sort")) as SortOrder }))
        if ((!filter || filter.test(e.name)) && !out.entry(e)) return 0; // the reader went away
    }
    out.end();
    return 0;
  } finally {
    await storage.close();
  }
}

function compileFilter(expression: string | undefined): RegExp | undefined {
  if (expression === undefined) return undefined;
  try {
    return new RegExp(expression);
  } catch (e) {
    throw err("FormatError", `invalid --filter regular expression '${expression}': ${(e as Error).message}`, "the filter is a regular expression, e.g. --filter='\\.info$'.");
  }
}

/**
 * Entries below `path` in listing order, names relative to `path`. Each directory is read when it
 * is reached, so a large repository streams instead of being held in memory whole.
 */
export async function* listEntries(storage: Storage, path: string, opts: { recurse: boolean; sort: SortOrder }, prefix = ""): AsyncGenerator<StorageInfo> {
  const list = (await storage.list(path, { ignoreMissing: true })) ?? [];
  if (opts.sort === "asc") list.sort((a, b) => byteOrder(a.name, b.name));
  else if (opts.sort === "desc") list.sort((a, b) => byteOrder(b.name, a.name));
  for (const e of list) {
    const entry = { ...e, name: prefix ? `${prefix}/${e.name}` : e.name };
    const below = opts.recurse && e.type === "path" ? listEntries(storage, path ? `${path}/${e.name}` : e.name, opts, entry.name) : undefined;
    if (opts.sort !== "desc") yield entry;
    if (below) yield* below;
    if (opts.sort === "desc") yield entry;
  }
}

/** One entry as pgBackRest's json prints it: "NAME":{"type":...} with size and time for files. */
export function entryJson(e: StorageInfo): string {
  const parts = [`"type":"${e.type}"`];
  if (e.type === "file") parts.push(`"size":${e.size}`, `"time":${e.mtime}`);
  if (e.type === "link") parts.push(`"destination":${JSON.stringify(e.linkDestination ?? "")}`);
  return `${JSON.stringify(e.name)}:{${parts.join(",")}}`;
}

/** Buffered stdout in the chosen format; entry() is false once the reader has gone away. */
class Output {
  readonly json: boolean;
  #buf: string[] = [];
  #size = 0;
  #count = 0;
  #open = true;

  constructor(json: boolean) {
    this.json = json;
    if (json) this.#push("{");
  }

  entry(e: StorageInfo): boolean {
    if (this.json) this.#push(`${this.#count > 0 ? "," : ""}${entryJson(e)}`);
    else this.#push(`${e.name}\n`);
    this.#count++;
    if (this.#size >= 64 * 1024) this.#flush();
    return this.#open;
  }

  end(): void {
    if (this.json) this.#push("}\n");
    this.#flush();
  }

  #push(s: string): void {
    this.#buf.push(s);
    this.#size += s.length;
  }

  #flush(): void {
    if (this.#open && this.#buf.length) this.#open = stdoutWrite(this.#buf.join(""));
    this.#buf = [];
    this.#size = 0;
  }
}
