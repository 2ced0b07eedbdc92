/**
 * Keeps the dependency direction of DESIGN.md true:
 *   common ← native ← filter ← storage/protocol ← repo/postgres ← worker ← command ← main
 * A module may import only from its own folder and folders to its left.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const SRC = join(import.meta.dir, "../../src");

const ALLOWED: Record<string, string[]> = {
  common: ["native"], // lock.ts takes flock through the helper
  native: ["common"],
  config: ["common"],
  filter: ["common", "native"],
  protocol: ["common", "native", "filter", "storage", "postgres", "repo", "worker", "config"],
  storage: ["common", "native", "filter", "protocol", "config"],
  postgres: ["common", "native", "filter", "storage"],
  repo: ["common", "native", "filter", "storage", "postgres"],
  worker: ["common", "native", "filter", "storage", "repo", "postgres"],
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
    if (!folder) continue; // main.ts, worker.ts, job-table.ts, version.ts may import anything
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
