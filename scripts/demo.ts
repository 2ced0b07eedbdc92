/**
 * The demo: the built executable checks its native layer and worker threads on this machine.
 * (The backup → restore demo replaces this once backup and restore land.)
 */
const exe = new URL("../dist/pgbunker", import.meta.url).pathname;
const run = (args: string[]) => {
  const r = Bun.spawnSync([exe, ...args], { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) process.exit(r.exitCode ?? 1);
};
run(["version"]);
run(["--process-max=2", "self-check"]);
