/**
 * Help text, generated from the command and option tables: `help`, `help COMMAND`,
 * `help COMMAND OPTION`.
 */
import { err } from "../common/error.ts";
import { COMMANDS, OPTIONS, isCommand, optionRules, optionValidFor, type CommandName, type OptionDef } from "./options.ts";
import { resolveOptionName } from "./parse.ts";
import { formatSize } from "./value.ts";

export function helpText(version: string, params: readonly string[]): string {
  const [cmd, opt] = params;
  if (cmd === undefined) return helpMain(version);
  if (!isCommand(cmd)) throw err("CommandInvalidError", `invalid command '${cmd}'`, "run 'pgbunker help' for the list of commands.");
  if (opt === undefined) return helpCommand(version, cmd);
  return helpOption(version, cmd, opt);
}

function helpMain(version: string): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = [
    `pgbunker ${version} - PostgreSQL backup and restore (pgBackRest compatible)`,
    "",
    "Usage:",
    "    pgbunker [options] [command]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).filter(([c]) => c !== "remote").map(([c, d]) => `    ${c.padEnd(width)}  ${d.summary}`),
    "",
    "Use 'pgbunker help [command]' for more information.",
  ];
  return lines.join("\n") + "\n";
}

function describeDefault(def: OptionDef, cmd: CommandName): string {
  const rules = optionRules(def, cmd);
  const parts: string[] = [];
  if (rules.default !== undefined) parts.push(`default: ${rules.default}`);
  if (rules.allow) parts.push(`allowed: ${rules.allow.join(", ")}`);
  else if (def.range) {
    const show = (n: number) => (def.type === "size" ? formatSize(n) : String(n));
    parts.push(`allowed: ${show(def.range[0])}-${show(def.range[1])}`);
  }
  if (rules.required) parts.push("required");
  return parts.length ? ` [${parts.join(", ")}]` : "";
}

function displayName(def: OptionDef): string {
  return def.indexed ? def.name.replace(/^(repo|pg)-/, "$11-") : def.name;
}

function helpCommand(version: string, cmd: CommandName): string {
  const d = COMMANDS[cmd];
  const opts = OPTIONS.filter((o) => optionValidFor(o, cmd) && cmd !== "remote" && !/^repo-(azure|gcs|s3|storage)-/.test(o.name))
    .sort((a, b) => (displayName(a) < displayName(b) ? -1 : 1));
  const width = Math.max(0, ...opts.map((o) => displayName(o).length + 2));
  const lines = [`pgbunker ${version} - '${cmd}' command help`, "", d.summary, "", `Usage: pgbunker [options] ${cmd}${d.params ? " " + d.params : ""}`, ""];
  if (opts.length) {
    lines.push("Options:", "");
    for (const o of opts) lines.push(`  --${displayName(o).padEnd(width)}${o.summary}${describeDefault(o, cmd)}`);
    lines.push("", "Indexed options (repo1-, pg1-) take any index from 1 to 256.", "Use 'pgbunker help " + cmd + " OPTION' for more about an option.");
  }
  return lines.join("\n") + "\n";
}

function helpOption(version: string, cmd: CommandName, name: string): string {
  const r = resolveOptionName(name);
  if (!r) throw err("OptionInvalidError", `option '${name}' is not valid for command '${cmd}'`, `run 'pgbunker help ${cmd}' for its options.`);
  const def = r.def;
  if (!optionValidFor(def, cmd)) throw err("OptionInvalidError", `option '${name}' is not valid for command '${cmd}'`);
  const lines = [
    `pgbunker ${version} - '${cmd}' command - '${displayName(def)}' option help`,
    "",
    def.summary,
    "",
    `type: ${def.type}${describeDefault(def, cmd)}`,
  ];
  if (def.secure) lines.push("secure: set it in a config file or PGBUNKER_ (or PGBACKREST_) environment variable, never on the command line.");
  if (def.indexed) lines.push(`indexed: ${def.indexed}1-${def.name.slice(def.indexed.length + 1)} ... ${def.indexed}256-${def.name.slice(def.indexed.length + 1)}`);
  if (def.deprecated?.length) lines.push(`deprecated names: ${def.deprecated.join(", ")}`);
  if (def.note) lines.push("", def.note);
  return lines.join("\n") + "\n";
}
