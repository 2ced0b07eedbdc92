/**
 * The 'info' command: for each stanza (--stanza, or every stanza found in the repositories), what
 * each repository (--repo, or all configured) holds, with the stanza's lock and stop state on this
 * host; printed as text in pgBackRest's layout or as pgBackRest-compatible json. A broken or missing
 * stanza is a status in the output, not an error: the exit code is 0 whenever the report printed.
 */
import { err } from "../../common/error.ts";
import { lockState, stopped } from "../../common/lock.ts";
import type { Config } from "../../config/parse.ts";
import { gatherRepo, repoStanzas } from "./gather.ts";
import { infoJson } from "./json.ts";
import type { StanzaInfo } from "./model.ts";
import { infoText } from "./text.ts";
import { repoIndexes } from "../archive/common.ts";
import { storageRepo } from "../shared/storage.ts";

export async function run(cfg: Config): Promise<number> {
  const set = cfg.str("set");
  const stanzaOpt = cfg.str("stanza");
  if (set !== undefined && stanzaOpt === undefined)
    throw err("OptionInvalidError", "option 'set' not valid without option 'stanza'", "add --stanza=NAME: a backup label belongs to one stanza.");
  const repos = repoIndexes(cfg);

  let names: string[];
  if (stanzaOpt !== undefined) names = [stanzaOpt];
  else {
    const found = new Set<string>();
    for (const key of repos) for (const s of await repoStanzas(await storageRepo(cfg, { repo: key, readOnly: true }))) found.add(s);
    names = [...found].sort();
  }

  const lockPath = cfg.get("lock-path");
  const stanzas: StanzaInfo[] = [];
  for (const name of names) {
    const repoInfo = [];
    for (const key of repos) repoInfo.push(await gatherRepo(cfg, key, name, { set, type: cfg.str("type") }));
    const lock = lockState(lockPath, name, "backup");
    stanzas.push({ name, repos: repoInfo, lock: { held: lock.held, percentComplete: lock.percentComplete }, stopped: stopped(lockPath, name) });
  }

  process.stdout.write(cfg.str("output") === "json" ? infoJson(stanzas, set !== undefined) : infoText(stanzas, set !== undefined));
  return 0;
}
