/**
 * Ending a helper process the harness started (sshd, pgbunker server, Azurite, the GCS server):
 * signal it only while it still runs, and return once it has exited, so that its files and port
 * can be reused or removed at once.
 */
export async function stopChild(p: { exitCode: number | null; kill(signal?: NodeJS.Signals): void; exited: Promise<number> } | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!p || p.exitCode !== null) return;
  p.kill(signal);
  await p.exited;
}
