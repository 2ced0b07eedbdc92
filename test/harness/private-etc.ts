/**
 * Run a command as postgres with a private /etc, to test where pgbunker looks for its
 * configuration by default without touching the host's /etc (other tests run pgbackrest, which
 * reads /etc/pgbackrest/pgbackrest.conf and /etc/pgbackrest.conf).
 *
 * The command runs in a mount namespace of its own (`unshare -m`, mounts private, so nothing is
 * seen outside it) where /etc is an overlay of the host's /etc whose changes land in a temp dir:
 * /etc/pgbunker, /etc/pgbackrest and /etc/pgbackrest.conf are removed there, then `files` are
 * put in place. When the command ends the namespace and its mounts are gone; the temp dir is
 * removed. Needs root (the tests run as root; PostgreSQL commands run as postgres).
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tempDir, type RunResult } from "./cluster.ts";

/** The config homes a test controls: emptied in the private /etc before `files` are added. */
const CONTROLLED = ["/etc/pgbunker", "/etc/pgbackrest", "/etc/pgbackrest.conf"];

/**
 * Run `cmd` as postgres with `files` (absolute paths under /etc → contents) as the only content
 * of the controlled config homes; `env` is the command's whole environment besides PATH.
 */
export function runWithPrivateEtc(files: Record<string, string>, cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): RunResult {
  const dir = tempDir("pgbunker-etc-");
  try {
    const stage = join(dir, "stage");
    mkdirSync(stage);
    for (const [path, text] of Object.entries(files)) {
      if (!path.startsWith("/etc/")) throw new Error(`private /etc: '${path}' is not under /etc`);
      const to = join(stage, path.slice("/etc/".length));
      mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
      writeFileSync(to, text);
      chmodSync(to, 0o644);
    }
    for (const d of ["upper", "work"]) mkdirSync(join(dir, d));
    const script = [
      "set -e",
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/upper,workdir=${dir}/work /etc`,
      `rm -rf ${CONTROLLED.join(" ")}`,
      `cp -R ${stage}/. /etc/`,
      'exec runuser -u postgres -- "$@"',
    ].join("\n");
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", ...opts.env };
    const r = Bun.spawnSync(
      ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", "env", "-i", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...cmd],
      { cwd: opts.cwd ?? "/tmp", stdin: "ignore", env: { PATH: env.PATH } },
    );
    const out = { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    if (/^(unshare|mount|rm|cp): /m.test(out.stderr)) throw new Error(`private /etc could not be set up:\n${out.stderr}`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
