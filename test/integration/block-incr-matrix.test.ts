/**
 * Block incremental (repo-block) with encryption and every compression type, on one small
 * cluster: repo1 holds pgBackRest 2.59.1's encrypted block chain, repo2..repo6 one pgbunker chain
 * each (aes-256-cbc, compress-type lz4, zst, gz, bz2, none): full → change pages of t → incr. Both
 * tools' chains are taken at the same two data points. pgBackRest verifies and restores each of
 * pgbunker's incrs (replaying to the end of the backup) with t's data; pgbunker restores
 * pgBackRest's. The unencrypted lz4 case, delta restore and info are in block-incr.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../harness/cluster.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { blockStored, latestLabel, manifestVia, PGBR, printedLabel, snapshot } from "./block-incr-lib.ts";
import { makeStanza, removeStanza, STANZA } from "./restore-lib.ts";

const TYPES = ["lz4", "zst", "gz", "bz2", "none"] as const;
/** repoN of each pgbunker chain; repo1 is pgBackRest's. */
const repoOf = (i: number) => i + 2;
const TABLES = ["t"];

let env: StanzaEnv;
const tmpBase = tempDir("pgb-block-matrix-");
/** [full, incr] labels by repo key. */
const chains = new Map<number, string[]>();
/** Table data at the full and at the incr. */
const data: string[] = [];
/** The relation file of t (manifest name). */
let tFile = "";

function backupAll(type: "full" | "incr"): void {
  env.backrestOk(["--repo=1", `--type=${type}`, "--compress-type=zst", "backup"], PGBR);
  chains.set(1, [...(chains.get(1) ?? []), latestLabel(env, 1)]);
  TYPES.forEach((compress, i) => {
    const out = env.runOk([`--repo=${repoOf(i)}`, `--type=${type}`, `--compress-type=${compress}`, "--log-level-console=info", "backup"]);
    chains.set(repoOf(i), [...(chains.get(repoOf(i)) ?? []), printedLabel(out)]);
  });
}

beforeAll(async () => {
  const global: Record<string, string | number | boolean> = { "repo1-bundle": true, "repo1-block": true, "repo1-cipher-type": "aes-256-cbc", "repo1-cipher-pass": "pgBackRest-block-pass" };
  TYPES.forEach((_, i) => {
    const k = repoOf(i);
    Object.assign(global, {
      [`repo${k}-path`]: join(tmpBase, `repo${k}`), [`repo${k}-bundle`]: true, [`repo${k}-block`]: true, [`repo${k}-retention-full`]: 99,
      [`repo${k}-cipher-type`]: "aes-256-cbc", [`repo${k}-cipher-pass`]: `pgbunker-block-pass-${k}`,
    });
  });
  // Named pgbackrest.conf: pgBackRest's backup wants its name in archive_command, which runs pgbunker.
  env = await makeStanza({ archiver: "pgbunker", configName: "pgbackrest.conf", global });
  const c = env.cluster;
  // About 1.3 MB: stored by 8 KiB blocks, of which the changes below touch a few dozen.
  await c.query("create table t (id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 20000) g");
  tFile = `pg_data/${await c.scalar("select pg_relation_filepath('t')")}`;
  await c.query("checkpoint");
  data.push(await snapshot(c, TABLES));
  backupAll("full");
  await c.query("update t set v = 'changed' where id % 700 = 0; delete from t where id between 15000 and 15100; insert into t select g, 'new' from generate_series(30001, 30500) g");
  await c.query("checkpoint");
  data.push(await snapshot(c, TABLES));
  backupAll("incr");
}, 600_000);

afterAll(async () => {
  await removeStanza(env, [tmpBase]);
});

describe("pgbunker's encrypted block chains, one per compress type", () => {
  TYPES.forEach((compress, i) => {
    const repo = repoOf(i);
    test(`${compress}: the incr is encrypted and block incremental; pgBackRest 2.59.1 verifies the chain and restores the incr with t's data`, async () => {
      const [full, incr] = chains.get(repo)!;
      const m = manifestVia(env, repo, incr!);
      expect({ block: m.backup.blockIncr, compress: m.options["compress-type"] }).toEqual({ block: true, compress });
      // t changed: stored again, by blocks (its map also points into the full).
      expect(blockStored(m).map((f) => f.name)).toContain(tFile);
      expect(readFileSync(join(tmpBase, `repo${repo}`, "backup", STANZA, incr!, "backup.manifest")).includes("[backup]")).toBe(false);

      const v = env.backrest([`--repo=${repo}`, "--log-level-console=warn", "verify", "--output=text", "--verbose"], PGBR);
      expect({ code: v.code, full: v.stdout.includes(`backup: ${full}, status: valid`), incr: v.stdout.includes(`backup: ${incr}, status: valid`) }).toEqual({ code: 0, full: true, incr: true });
      // pgbunker's verify says the same (its raw, encrypted bundle members decrypt without the cipher magic).
      expect(env.run([`--repo=${repo}`, "--log-level-console=warn", "verify", "--output=text", "--verbose"]).stdout).toBe(v.stdout);

      const c = await env.restoreAndStart("pgbackrest-2.59", incr!, [`--repo=${repo}`, "--type=immediate", "--target-action=promote"]);
      expect(await snapshot(c, TABLES)).toBe(data[1]!);
      c.stop("immediate");
    });
  });
});

describe("pgBackRest 2.59.1's encrypted block chain", () => {
  test("is block incremental; pgbunker verifies it and restores the incr with t's data", async () => {
    const [full, incr] = chains.get(1)!;
    expect(blockStored(manifestVia(env, 1, incr!)).map((f) => f.name)).toContain(tFile);
    const v = env.run(["--repo=1", "--log-level-console=warn", "verify", "--output=text", "--verbose"]);
    expect({ code: v.code, full: v.stdout.includes(`backup: ${full}, status: valid`), incr: v.stdout.includes(`backup: ${incr}, status: valid`) }).toEqual({ code: 0, full: true, incr: true });
    expect(v.stdout).toBe(env.backrestOk(["--repo=1", "--log-level-console=warn", "verify", "--output=text", "--verbose"], PGBR));
    const c = await env.restoreAndStart("pgbunker", incr!, ["--repo=1", "--type=immediate", "--target-action=promote"]);
    expect(await snapshot(c, TABLES)).toBe(data[1]!);
    c.stop("immediate");
  });
});
