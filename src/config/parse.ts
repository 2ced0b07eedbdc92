/**
 * Build a validated Config from the command line, `PGBUNKER_*` / `PGBACKREST_*` environment
 * variables and INI config files, with pgBackRest's precedence:
 *
 *   command line  >  environment  >  [stanza:command]  >  [stanza]  >  [global:command]  >  [global]  >  default
 *
 * Every option is checked against the table in options.ts: known name, valid for the command,
 * allowed in its source (secure options never on the command line), value of the right type.
 */
import { err } from "../common/error.ts";
import { logWarn } from "../common/log.ts";
import { loadConfigFiles, type ConfigSections } from "./ini-config.ts";
import { configLocation } from "./location.ts";
import {
  COMMANDS, INDEX_MAX, OPTIONS, isCommand, optionDef, optionRules,
  optionValidFor, type CommandName, type DefaultedKey, type OptionDef, type OptionKey, type OptionValueOf, type PgOptionName,
  type RepoOptionName,
} from "./options.ts";
import { convertValue, renderValue, type OptionValue } from "./value.ts";

export type OptionSource = "cli" | "env" | "config" | "default";

interface Resolved {
  def: OptionDef;
  /** Canonical key: `process-max`, `repo2-path`, `pg1-port`. */
  key: string;
  index?: number;
}


export function indexedKey(def: OptionDef, index: number): string {
  if (!def.indexed) return def.name;
  return `${def.indexed}${index}-${def.name.slice(def.indexed.length + 1)}`;
}

/** Resolve a user-written option name (maybe indexed, maybe deprecated) to its definition. */
export function resolveOptionName(raw: string): Resolved | undefined {
  const m = /^(repo|pg|db)(\d+)-(.+)$/.exec(raw);
  if (m) {
    const kind = m[1] === "db" ? "pg" : m[1]!;
    const index = Number(m[2]);
    const def = optionDef(`${kind}-${m[3]}`) ?? deprecatedDef(`${m[1]}-${m[3]}`);
    if (!def || def.indexed !== kind || index < 1 || index > INDEX_MAX[def.indexed]) return undefined;
    return { def, key: indexedKey(def, index), index };
  }
  const def = optionDef(raw) ?? deprecatedDef(raw);
  if (!def) return undefined;
  if (def.indexed) return { def, key: indexedKey(def, 1), index: 1 };
  return { def, key: def.name };
}

function deprecatedDef(raw: string): OptionDef | undefined {
  return OPTIONS.find((d) => d.deprecated?.includes(raw));
}

interface RawSetting {
  resolved: Resolved;
  texts: string[];
  source: OptionSource;
  negate?: boolean;
  reset?: boolean;
}

export interface ParseInput {
  argv: string[];
  env?: Record<string, string | undefined>;
  /** For tests: config sections given directly instead of read from files. */
  configSections?: ConfigSections;
  /** For tests: where the default config homes are (default /etc). */
  etc?: string;
}

/**
 * Environment prefixes, the first winning when both set an option: pgbunker's own, then
 * pgBackRest's, so the environment of a host migrating from pgBackRest keeps working.
 */
export const ENV_PREFIXES = ["PGBUNKER_", "PGBACKREST_"] as const;

/**
 * A command's role: pgBackRest runs the background half of asynchronous archiving as
 * `archive-push:async` / `archive-get:async`; the role is what tells the two halves apart.
 */
export type CommandRole = "async";
const ROLE_COMMANDS: Partial<Record<CommandName, readonly CommandRole[]>> = { "archive-push": ["async"], "archive-get": ["async"] };

export class Config {
  readonly command: CommandName;
  readonly params: readonly string[];
  role?: CommandRole;
  readonly #values = new Map<string, OptionValue>();
  readonly #sources = new Map<string, OptionSource>();
  /** Remote commands receive their options pre-parsed; `helpRequested` for `COMMAND --help`. */
  helpRequested = false;
  /** The configuration files read, in order (none with --no-config or when none exists). */
  configFiles: readonly string[] = [];

  constructor(command: CommandName, params: readonly string[]) {
    this.command = command;
    this.params = params;
  }

  set(key: string, value: OptionValue, source: OptionSource): void {
    this.#values.set(key, value);
    this.#sources.set(key, source);
  }

  unset(key: string): void {
    this.#values.delete(key);
    this.#sources.delete(key);
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  source(key: string): OptionSource | undefined {
    return this.#sources.get(key);
  }

  raw(key: string): OptionValue | undefined {
    return this.#values.get(key);
  }

  /**
   * An option's value, typed by the table: a number for integer/size/time options, a boolean, the
   * enum's allowed values, a list or a hash. An option the table gives a default always has one
   * (the parser filled it in, or the table's is returned), so its getter never returns undefined.
   */
  get<K extends OptionKey>(key: K): K extends DefaultedKey ? OptionValueOf<K> : OptionValueOf<K> | undefined {
    const v = this.#values.get(key);
    if (v !== undefined) return v as never;
    // The remote command gets no defaults applied (its options come from the caller): the table's.
    const def = resolveOptionName(key)?.def;
    return (def?.default !== undefined ? convertValue(def, def.default, undefined) : undefined) as never;
  }

  str(key: OptionKey): string | undefined {
    const v = this.#values.get(key);
    return v === undefined ? undefined : String(v);
  }

  /** A string option that must be present (the parser has already enforced required options). */
  req(key: OptionKey): string {
    const v = this.str(key);
    if (v === undefined) throw err("OptionRequiredError", `${this.command} command requires option: ${key}`);
    return v;
  }

  num(key: OptionKey): number | undefined {
    const v = this.#values.get(key);
    return v === undefined ? undefined : Number(v);
  }

  bool(key: OptionKey): boolean {
    return this.#values.get(key) === true;
  }

  list(key: OptionKey): string[] {
    return (this.#values.get(key) as string[] | undefined) ?? [];
  }

  hash(key: OptionKey): Record<string, string> {
    return (this.#values.get(key) as Record<string, string> | undefined) ?? {};
  }

  /** Indexes (N of repoN-/pgN-) that have any option set; [1] when none. */
  indexes(kind: "repo" | "pg"): number[] {
    const found = new Set<number>();
    for (const [key, src] of this.#sources) {
      if (src === "default") continue;
      const m = new RegExp(`^${kind}(\\d+)-`).exec(key);
      if (m) found.add(Number(m[1]));
    }
    return found.size === 0 ? [1] : [...found].sort((a, b) => a - b);
  }

  /** The repository this command works on: --repo, else the first configured. */
  get repoIndex(): number {
    return this.num("repo") ?? this.indexes("repo")[0]!;
  }

  /** `repo-path` → `repo2-path` (the command's repository unless `index` says another). */
  repoKey<N extends RepoOptionName>(name: N, index = this.repoIndex): `repo${number}-${N extends `repo-${infer R}` ? R : never}` {
    return name.replace(/^repo-/, `repo${index}-`) as never;
  }

  pgKey<N extends PgOptionName>(name: N, index = 1): `pg${number}-${N extends `pg-${infer R}` ? R : never}` {
    return name.replace(/^pg-/, `pg${index}-`) as never;
  }

  /** Options in `--key=value` form, sorted, secure values redacted (for the command-begin line). */
  describe(): string {
    const parts: string[] = [];
    for (const key of [...this.#values.keys()].sort()) {
      const src = this.#sources.get(key);
      if (src === "default") continue;
      const r = resolveOptionName(key);
      if (!r) continue;
      const v = this.#values.get(key)!;
      if (r.def.type === "boolean") parts.push(v ? `--${key}` : `--no-${key}`);
      else for (const t of renderValue(r.def, v)) parts.push(`--${key}=${r.def.secure ? "<redacted>" : quoteIfNeeded(t)}`);
    }
    return parts.join(" ");
  }

  /** The command as logged and as its process is started: `archive-push` or `archive-push:async`. */
  get commandName(): string {
    return this.role ? `${this.command}:${this.role}` : this.command;
  }

  /**
   * Options that came from the command line, as arguments (`--key=value`, `--no-key`), minus
   * `omit`. Used when pgbunker starts itself (the async archive process): config files and the
   * environment are read again by the child, so only the command line needs passing on.
   * `sources`: also pass on options from those sources (restore_command runs in PostgreSQL's
   * environment, not the restoring user's, so `PGBUNKER_*` settings must be written out).
   */
  cliArgs(omit: readonly string[] = [], sources: readonly OptionSource[] = ["cli"]): string[] {
    const out: string[] = [];
    for (const key of [...this.#values.keys()].sort()) {
      if (!sources.includes(this.#sources.get(key)!) || omit.includes(key)) continue;
      const r = resolveOptionName(key);
      if (!r) continue;
      const v = this.#values.get(key)!;
      if (r.def.type === "boolean") out.push(v ? `--${key}` : `--no-${key}`);
      else for (const t of renderValue(r.def, v)) out.push(`--${key}=${t}`);
    }
    return out;
  }

  /** Every explicitly set option as plain data (for a remote or a worker to rebuild the Config). */
  toJSON(): { command: CommandName; params: readonly string[]; values: [string, OptionValue, OptionSource][]; role?: CommandRole } {
    return { command: this.command, params: this.params, values: [...this.#values].map(([k, v]) => [k, v, this.#sources.get(k)!]), role: this.role };
  }

  static fromJSON(data: ReturnType<Config["toJSON"]>): Config {
    const cfg = new Config(data.command, data.params);
    cfg.role = data.role;
    for (const [k, v, s] of data.values) cfg.set(k, v, s);
    return cfg;
  }

  /** Copy with a different command, keeping the options valid for it (a backup running expire). */
  forCommand(command: CommandName, params: readonly string[] = []): Config {
    const cfg = new Config(command, params);
    for (const [k, v] of this.#values) {
      const r = resolveOptionName(k);
      if (r && optionValidFor(r.def, command)) cfg.set(k, v, this.#sources.get(k)!);
    }
    applyDefaults(cfg);
    return cfg;
  }
}

function quoteIfNeeded(t: string): string {
  return /\s/.test(t) ? `"${t}"` : t;
}

/** Parse argv + env + config files into a Config. Throws PgbError on any invalid input. */
export function parseConfig(input: ParseInput): Config {
  const env = input.env ?? {};
  const { command, params, cli, help, role } = parseArgv(input.argv);
  const cfg = new Config(command, params);
  cfg.role = role;
  cfg.helpRequested = help;
  if (command === "help" || command === "version") return cfg;

  const settings = new Map<string, RawSetting>();
  for (const s of cli) {
    checkValidFor(s.resolved.def, command, "cli");
    addSetting(settings, s);
  }
  for (const s of parseEnv(env, command)) if (!settings.has(s.resolved.key)) settings.set(s.resolved.key, s);

  const stanza = settings.get("stanza")?.texts[0];
  let sections = input.configSections;
  if (!sections) {
    const loaded = loadConfigFiles(configLocation(locationGiven(settings), input.etc));
    sections = loaded.sections;
    cfg.configFiles = loaded.files;
  }
  applyConfigSections(settings, sections, command, stanza);

  for (const s of settings.values()) {
    if (s.reset) continue;
    const rules = optionRules(s.resolved.def, command);
    if (s.negate) {
      cfg.set(s.resolved.key, false, s.source);
      continue;
    }
    if (s.resolved.def.unsupported && s.texts.some((t) => t !== (rules.default ?? "n")))
      throw err("FeatureNotSupportedError", `option '${s.resolved.key}' is not supported by pgbunker`, "remove it from the command line or configuration.");
    cfg.set(s.resolved.key, combine(s.resolved.def, s.texts.map((t) => convertValue(s.resolved.def, t, rules.allow))), s.source);
  }

  applyDefaults(cfg);
  applyValueDependent(cfg);
  checkDependencies(cfg, settings);
  checkRequired(cfg);
  return cfg;
}

function combine(def: OptionDef, values: OptionValue[]): OptionValue {
  if (def.type === "list") return values.flat() as string[];
  if (def.type === "hash") return Object.assign({}, ...(values as Record<string, string>[]));
  return values[0]!;
}

interface ParsedArgv {
  command: CommandName;
  params: string[];
  cli: RawSetting[];
  help: boolean;
  role?: CommandRole;
}

function parseArgv(argv: string[]): ParsedArgv {
  const positional: string[] = [];
  const cli: RawSetting[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (arg === "--version") {
      positional.unshift("version");
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      positional.push(arg);
      continue;
    }
    const body = arg.slice(2);
    const eq = body.indexOf("=");
    let name = eq === -1 ? body : body.slice(0, eq);
    let text: string | undefined = eq === -1 ? undefined : body.slice(eq + 1);
    let negate = false;
    let reset = false;
    let resolved = resolveOptionName(name);
    if (!resolved && name.startsWith("no-")) {
      resolved = resolveOptionName(name.slice(3));
      negate = resolved !== undefined;
    }
    if (!resolved && name.startsWith("reset-")) {
      resolved = resolveOptionName(name.slice(6));
      reset = resolved !== undefined;
    }
    if (!resolved) throw err("OptionInvalidError", `invalid option '--${name}'`, "run 'pgbunker help COMMAND' for the options of a command.");
    name = resolved.key;
    const def = resolved.def;
    if (def.secure)
      throw err("OptionInvalidError", `option '${name}' is not allowed on the command-line`, [
        "this option could expose secrets in the process list.",
        "specify the option in a configuration file or an environment variable instead.",
      ]);
    if (negate) {
      if (def.type !== "boolean" && def.name !== "config") throw err("OptionInvalidError", `option '${name}' cannot be negated`, "only y/n options and --no-config can be negated.");
      if (text !== undefined) throw err("OptionInvalidError", `option '--no-${name}' does not take a value`);
    } else if (reset) {
      if (def.section === "cli") throw err("OptionInvalidError", `option '${name}' cannot be reset`, "only options that may appear in a config file can be reset.");
      if (text !== undefined) throw err("OptionInvalidError", `option '--reset-${name}' does not take a value`);
    } else if (text === undefined) {
      if (def.type === "boolean") text = "y";
      else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) text = argv[++i]!;
      else throw err("OptionInvalidValueError", `option '${name}' requires a value`, `use --${name}=VALUE.`);
    }
    cli.push({ resolved, texts: text === undefined ? [] : [text], source: "cli", negate, reset });
  }

  let first = positional.shift();
  if (first === undefined) return { command: "help", params: [], cli, help };
  let role: CommandRole | undefined;
  const colon = first.indexOf(":");
  if (colon > 0) {
    const base = first.slice(0, colon);
    const r = first.slice(colon + 1) as CommandRole;
    if (isCommand(base) && ROLE_COMMANDS[base]?.includes(r)) {
      first = base;
      role = r;
    }
  }
  if (!isCommand(first))
    throw err("CommandInvalidError", `invalid command '${first}'`, `valid commands: ${Object.keys(COMMANDS).join(", ")}.`);
  if (help) return { command: "help", params: [first, ...positional], cli: [], help: true };
  return { command: first, params: positional, cli, help, role };
}

function checkValidFor(def: OptionDef, command: CommandName, source: OptionSource): void {
  if (command === "help" || command === "version") return;
  if (!optionValidFor(def, command) && source === "cli")
    throw err("OptionInvalidError", `option '${def.name}' not valid for command '${command}'`, `run 'pgbunker help ${command}' for its options.`);
}

function addSetting(settings: Map<string, RawSetting>, s: RawSetting): void {
  const prev = settings.get(s.resolved.key);
  if (!prev) {
    settings.set(s.resolved.key, s);
    return;
  }
  if (prev.negate !== s.negate || prev.reset !== s.reset)
    throw err("OptionInvalidError", `option '${s.resolved.key}' cannot be set and negated`);
  if (s.resolved.def.type !== "list" && s.resolved.def.type !== "hash")
    throw err("OptionInvalidError", `option '${s.resolved.key}' cannot be set multiple times`);
  prev.texts.push(...s.texts);
}

/**
 * Options from the environment, as pgBackRest reads PGBACKREST_*: `PREFIX_OPTION_NAME` (indexed
 * as `PREFIX_REPO1_PATH`), booleans `y`/`n`, lists and hashes split on `:`, an empty value an
 * error; unknown names and `NO_`/`RESET_` forms are warned about and ignored, options not valid
 * for the command skipped. PGBUNKER_ is read before PGBACKREST_ and wins.
 */
function parseEnv(env: Record<string, string | undefined>, command: CommandName): RawSetting[] {
  const out = new Map<string, RawSetting>();
  for (const prefix of ENV_PREFIXES) {
    for (const [name, value] of Object.entries(env)) {
      if (!name.startsWith(prefix) || value === undefined) continue;
      const optName = name.slice(prefix.length).toLowerCase().replace(/_/g, "-");
      const resolved = resolveOptionName(optName);
      if (!resolved) {
        const form = /^(no|reset)-(.+)$/.exec(optName);
        const plain = form && resolveOptionName(form[2]!) ? `${prefix}${form[2]!.toUpperCase().replace(/-/g, "_")}` : undefined;
        if (plain && form![1] === "no") logWarn(`environment contains invalid negate option '${optName}' (${name}): use ${plain}=n`);
        else if (plain) logWarn(`environment contains invalid reset option '${optName}' (${name}): leave ${plain} unset`);
        else logWarn(`environment contains invalid option '${optName}' (${name})`);
        continue;
      }
      if (!optionValidFor(resolved.def, command) || out.has(resolved.key)) continue;
      const origin = `environment variable ${name}`;
      if (value === "") throw err("OptionInvalidValueError", `${origin} must have a value`, `unset it, or give option '${resolved.key}' a value.`);
      const def = resolved.def;
      if (def.type === "boolean" && value !== "y" && value !== "n")
        throw err("OptionInvalidValueError", `${origin} (boolean option '${resolved.key}') must be 'y' or 'n'`, `found '${value}'.`);
      const texts = def.type === "list" || def.type === "hash" ? value.split(":") : [value];
      out.set(resolved.key, { resolved, texts, source: "env" });
    }
  }
  return [...out.values()];
}

/** The config location options as given on the command line or in the environment. */
function locationGiven(settings: Map<string, RawSetting>) {
  const text = (k: string) => {
    const s = settings.get(k);
    return s && !s.negate && !s.reset ? s.texts[0] : undefined;
  };
  return {
    config: text("config"),
    configNegated: settings.get("config")?.negate === true,
    configPath: text("config-path"),
    includePath: text("config-include-path"),
  };
}

/** A value pgBackRest allows that pgbunker cannot honour yet (repo1-host-type=tls): refuse it, saying where it was set. */
function applyConfigSections(settings: Map<string, RawSetting>, sections: ConfigSections, command: CommandName, stanza?: string): void {
  const order: string[] = [];
  if (stanza !== undefined) order.push(`${stanza}:${command}`, stanza);
  order.push(`global:${command}`, "global");
  for (const section of order) {
    const entries = sections.get(section);
    if (!entries) continue;
    const isGlobal = section === "global" || section.startsWith("global:");
    const seenHere = new Map<string, RawSetting>();
    for (const e of entries) {
      const resolved = resolveOptionName(e.key);
      if (!resolved) {
        logWarn(`configuration file contains invalid option '${e.key}'`);
        continue;
      }
      const def = resolved.def;
      if (def.section === "cli" && def.name !== "stanza") {
        logWarn(`configuration file contains command-line only option '${e.key}'`);
        continue;
      }
      if (def.section === "stanza" && isGlobal) {
        logWarn(`configuration file contains stanza-only option '${e.key}' in global section '${section}'`);
        continue;
      }
      if (!optionValidFor(def, command)) continue;
      const existing = settings.get(resolved.key);
      if (existing && existing.source !== "config") continue; // command line / env win
      const here = seenHere.get(resolved.key);
      if (here) {
        if (def.type !== "list" && def.type !== "hash")
          throw err("OptionInvalidError", `option '${resolved.key}' cannot be set multiple times`, `remove the duplicate at line ${e.line} of '${e.file}'.`);
        here.texts.push(e.value);
        continue;
      }
      if (existing) continue; // a higher-priority section already set it
      if (def.type === "boolean" && e.value !== "y" && e.value !== "n")
        throw err("OptionInvalidValueError", `boolean option '${e.key}' must be 'y' or 'n'`, `found '${e.value}' at line ${e.line} of '${e.file}'.`);
      const s: RawSetting = { resolved, texts: [e.value], source: "config" };
      seenHere.set(resolved.key, s);
      settings.set(resolved.key, s);
    }
  }
}

/** Fill defaults: plain options once, indexed options for every configured index. */
function applyDefaults(cfg: Config): void {
  const command = cfg.command;
  for (const def of OPTIONS) {
    if (!optionValidFor(def, command) || command === "remote") continue;
    const rules = optionRules(def, command);
    if (rules.default === undefined) continue;
    const keys = def.indexed ? cfg.indexes(def.indexed).map((i) => indexedKey(def, i)) : [def.name];
    for (const key of keys)
      if (!cfg.has(key)) cfg.set(key, convertValue(def, rules.default, undefined), "default");
  }
}

/** An option with `depends` set explicitly is valid only when the other option has one of the values. */
function checkDependencies(cfg: Config, settings: Map<string, RawSetting>): void {
  for (const def of OPTIONS) {
    const dep = def.depends;
    const s = dep && settings.get(def.name);
    if (!dep || !s || s.reset || !optionValidFor(s.resolved.def, cfg.command)) continue;
    const value = cfg.raw(dep.option);
    if (value !== undefined && dep.values.includes(String(value))) continue;
    if (s.source === "config") {
      cfg.unset(def.name);
      continue;
    }
    throw err(
      "OptionInvalidError",
      `option '${def.name}' not valid without option '${dep.option}' in (${dep.values.map((v) => `'${v}'`).join(", ")})`,
      `add --${dep.option}=VALUE or remove --${def.name}.`,
    );
  }
}

/**
 * Options whose default and range follow another option's value (compress-level follows
 * compress-type): fill the default for that value, and refuse a value out of its range here, at
 * parse time, rather than deep inside a worker.
 */
function applyValueDependent(cfg: Config): void {
  for (const def of OPTIONS) {
    const by = def.byValueOf;
    if (!by || !optionValidFor(def, cfg.command) || cfg.command === "remote") continue;
    // An indexed option follows the option of its own index (repo2-storage-upload-chunk-size by repo2-type).
    const otherDef = OPTIONS.find((o) => o.name === by.option);
    const pairs: [string, string][] = def.indexed
      ? cfg.indexes(def.indexed).map((i) => [indexedKey(def, i), otherDef ? indexedKey(otherDef, i) : by.option])
      : [[def.name, by.option]];
    for (const [key, otherKey] of pairs) {
      const other = cfg.raw(otherKey);
      if (other === undefined) continue;
      const range = by.ranges[String(other)];
      const value = cfg.raw(key);
      if (value === undefined) {
        const fallback = by.defaults[String(other)];
        if (fallback !== undefined) cfg.set(key, fallback, "default");
        continue;
      }
      if (range && (Number(value) < range[0] || Number(value) > range[1]))
        throw err(
          "OptionInvalidValueError",
          `'${value}' is out of range for '${key}' option when '${otherKey}' option is '${other}'`,
          `use a ${key} from ${range[0]} to ${range[1]} for ${otherKey}=${other}.`,
        );
    }
  }
}

function checkRequired(cfg: Config): void {
  for (const def of OPTIONS) {
    if (!optionValidFor(def, cfg.command) || cfg.command === "remote") continue;
    if (!optionRules(def, cfg.command).required) continue;
    const key = def.indexed ? indexedKey(def, 1) : def.name;
    if (def.indexed && cfg.indexes(def.indexed).some((i) => cfg.has(indexedKey(def, i)))) continue;
    if (!cfg.has(key))
      throw err(
        "OptionRequiredError",
        `${cfg.command} command requires option: ${key}`,
        def.section === "stanza" ? "does this stanza exist?" : undefined,
      );
  }
}
