/**
 * A pgbunker remote that fails on purpose, deterministically: the command a config names as
 * repoN-host-cmd / pgN-host-cmd is this wrapper, which counts its starts and, on the start it is
 * armed for, kills its whole session (the remote included, as a crash or a dropped link would)
 * once the remote has sent a given number of bytes. No timing is involved: which session and
 * how far into it are fixed by the test.
 */
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mkdirAsPostgres } from "./cluster.ts";

export class RemoteFault {
  readonly dir: string;
  /** The wrapper to use as the remote command. */
  readonly command: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.command = join(dir, "pgbunker-remote");
  }

  /** `dir` is made (owned by postgres, whom sshd runs the wrapper as); `binary` is the real pgbunker. */
  static create(dir: string, binary: string): RemoteFault {
    const f = new RemoteFault(mkdirAsPostgres(dir));
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    writeFileSync(f.command, [
      "#!/bin/sh",
      `dir=${q(dir)}`,
      'n=$(( $(cat "$dir/starts" 2>/dev/null || echo 0) + 1 ))',
      'echo "$n" > "$dir/starts"',
      'if [ "$n" = "$(cat "$dir/cut-at" 2>/dev/null)" ]; then',
      // The session is its own process group (sshd's setsid): kill 0 ends the remote with it.
          // dd passes each read on at once (head's stdio would hold the greeting back) and stops at the count.
      `  ${q(binary)} "$@" | { dd iflag=count_bytes count="$(cat "$dir/cut-bytes")" bs=64K status=none; touch "$dir/killed"; kill -KILL 0; }`,
      "  exit 1",
      "fi",
      `exec ${q(binary)} "$@"`,
      "",
    ].join("\n"));
    chmodSync(f.command, 0o755);
    f.arm(0, 0);
    return f;
  }

  /** Count starts from zero; kill start number `start` (0: none) after `bytes` bytes of its output. */
  arm(start: number, bytes: number): void {
    for (const name of ["starts", "killed"]) rmSync(join(this.dir, name), { force: true });
    writeFileSync(join(this.dir, "cut-at"), start ? String(start) : "");
    writeFileSync(join(this.dir, "cut-bytes"), String(bytes));
    chmodSync(join(this.dir, "cut-at"), 0o644);
    chmodSync(join(this.dir, "cut-bytes"), 0o644);
  }

  /** How often the remote was started since arm(). */
  starts(): number {
    const file = join(this.dir, "starts");
    return existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : 0;
  }

  /** Whether the armed start was killed. */
  killed(): boolean {
    return existsSync(join(this.dir, "killed"));
  }
}
