import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, ensureBuilt, pgbunker } from "../harness/pgbunker.ts";

describe("the compiled executable", () => {
  test("is one file that runs from any directory; its workers call liblz4", () => {
    ensureBuilt();
    const dir = mkdtempSync(join(tmpdir(), "pgb-exe-"));
    const copy = join(dir, "pgbunker");
    copyFileSync(BINARY, copy);
    Bun.spawnSync(["chmod", "755", copy]);
    // Nothing else from the repository is needed: run the copy from an unrelated directory.
    const r = Bun.spawnSync([copy, "--process-max=2", "self-check"], { cwd: "/", env: { PATH: "/usr/bin:/bin" } });
    const out = r.stdout.toString();
    expect(r.exitCode).toBe(0);
    expect(out).toContain("ok   crc32c: 0xe3069283");
    expect(out).toMatch(/ok {3}lz4: 4194304 → \d+ bytes, round trip identical/);
    expect(out).toMatch(/ok {3}workers: 2 threads ran 4 lz4 jobs/);
    expect(statSync(copy).size).toBeGreaterThan(1_000_000);
    rmSync(dir, { recursive: true, force: true });
  });

  test("version and help", () => {
    const v = pgbunker(["version"], { asRoot: true });
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^pgbunker \d+\.\d+\.\d+\n$/);
    const h = pgbunker(["help"], { asRoot: true });
    expect(h.stdout).toContain("stanza-create");
    const hb = pgbunker(["help", "backup", "process-max"], { asRoot: true });
    expect(hb.code).toBe(0);
    expect(hb.stdout).toContain("allowed: 1-999");
    expect(pgbunker(["backup", "--help"], { asRoot: true }).stdout).toContain("'backup' command help");
  });

  test("bad input: clear message on stderr, pgBackRest exit codes, nothing on stdout", () => {
    const cases: [string[], number, RegExp][] = [
      [["nope"], 48, /ERROR: \[048\]: invalid command 'nope'/],
      [["--bogus", "info"], 31, /ERROR: \[031\]: invalid option '--bogus'/],
      [["--process-max=x", "--stanza=a", "--pg1-path=/x", "backup"], 32, /'x' is not valid for 'process-max' option/],
      [["--set=x", "--stanza=a", "--pg1-path=/x", "backup"], 31, /option 'set' not valid for command 'backup'/],
      [["backup"], 37, /backup command requires option: stanza/],
      [["--repo1-cipher-pass=x", "info"], 31, /not allowed on the command-line\n\s+HINT:/],
    ];
    for (const [args, code, msg] of cases) {
      const r = pgbunker(args, { asRoot: true });
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(msg);
      expect(r.stdout).toBe("");
    }
  });

  test("reads no .env or bunfig.toml from the working directory (archive_command runs in the data directory)", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgb-exe-cwd-"));
    try {
      // Bun executables load both by default: a .env could set PGBUNKER_* options behind the
      // configuration's back, a bunfig.toml preload code.
      writeFileSync(join(dir, ".env"), "PGBUNKER_LOG_LEVEL_CONSOLE=bogus\n");
      writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
      writeFileSync(join(dir, "preload.ts"), 'console.log("preloaded");\n');
      const r = pgbunker(["--no-config", `--repo1-path=${join(dir, "repo")}`, "info"], { asRoot: true, cwd: dir });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(r.stdout).toBe("No stanzas exist in the repository.\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
