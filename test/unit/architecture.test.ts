/**
 * Keeps the layers of ARCHITECTURE.md true (its "Layers and the import fence" table):
 *   common/native ← config, filter ← protocol ← storage ← postgres ← repo ← worker ← command ← main
 * A module may import only from its own folder and the folders listed for it here.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const SRC = join(import.meta.dir, "../../src");

const ALLOWED: Record<string, string[]> = {
  // The foundation: common's locks and log stamps take two libc calls through native, and
  // native's bindings throw common's errors. Neither imports anything else.
  common: ["native"],
  native: ["common"],
  config: ["common"],
  filter: ["common", "native"],
  // Frames, the client side and the SSH transport: opaque data, no storage or PostgreSQL types.
  protocol: ["common"],
  storage: ["common", "native", "filter", "protocol"],
  postgres: ["common", "native", "filter", "storage", "protocol"],
  repo: ["common", "native", "filter", "storage", "postgres"],
  // The pool runs whatever job table it is given (command/jobs.ts): it knows no job itself.
  worker: ["common"],
  command: ["common", "native", "filter", "storage", "protocol", "repo", "postgres", "worker", "config"],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

test("imports point one way", () => {
  const violations: string[] = [];
  for (const file of files(SRC)) {
    const rel = relative(SRC, file);
    const folder = rel.includes("/") ? rel.split("/")[0]! : "";
    if (!folder) continue; // main.ts, worker.ts and version.ts may import anything
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+["'](\.[^"']+)["']|import\(["'](\.[^"']+)["']\)/g)) {
      const spec = m[1] ?? m[2]!;
      const target = relative(SRC, join(file, "..", spec));
      if (target.startsWith("..")) continue;
      const tf = target.includes("/") ? target.split("/")[0]! : "";
      if (tf === folder) continue;
      if (tf === "" && target === "version.ts") continue;
      if (!(ALLOWED[folder] ?? []).includes(tf)) violations.push(`${rel} imports ${target}`);
    }
  }
  expect(violations).toEqual([]);
});
