/**
 * User and group names ↔ ids from /etc/passwd and /etc/group (what a manifest records and what a
 * restore running as root sets). Read once per process; no dependency on getpwnam.
 */
import { readFileSync } from "node:fs";

interface IdMaps {
  byId: Map<number, string>;
  byName: Map<string, number>;
}

function load(file: string): IdMaps {
  const byId = new Map<number, string>();
  const byName = new Map<string, number>();
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { byId, byName };
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 3 || f[0]!.startsWith("#")) continue;
    const id = Number(f[2]);
    if (!Number.isInteger(id)) continue;
    if (!byId.has(id)) byId.set(id, f[0]!);
    if (!byName.has(f[0]!)) byName.set(f[0]!, id);
  }
  return { byId, byName };
}

let users: IdMaps | undefined;
let groups: IdMaps | undefined;

export function userName(uid: number): string | undefined {
  return (users ??= load("/etc/passwd")).byId.get(uid);
}

export function groupName(gid: number): string | undefined {
  return (groups ??= load("/etc/group")).byId.get(gid);
}

export function userId(name: string): number | undefined {
  return (users ??= load("/etc/passwd")).byName.get(name);
}

export function groupId(name: string): number | undefined {
  return (groups ??= load("/etc/group")).byName.get(name);
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * Home directory of a user (default: the one running pgbunker) from /etc/passwd, as OpenSSH finds
 * ~/.ssh: $HOME may still name another user's home after su or runuser.
 */
export function userHome(uid = process.getuid?.() ?? 0): string | undefined {
  let text = "";
  try {
    text = readFileSync("/etc/passwd", "utf8");
  } catch {
    return process.env.HOME;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 6 && Number(f[2]) === uid) return f[5];
  }
  return process.env.HOME;
}
