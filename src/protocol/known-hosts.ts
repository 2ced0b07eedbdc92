/**
 * Host key checking the way OpenSSH does it, from the same files: the user's known_hosts (or the
 * file an option names) and the system-wide /etc/ssh/ssh_known_hosts. Entries are read in
 * OpenSSH's format: plain or hashed (`|1|salt|hash`) host names, comma-separated patterns with
 * `*`, `?` and `!` negation, `[host]:port` for ports other than 22, `@revoked` markers.
 * (`@cert-authority` lines are skipped: host certificates are not supported.)
 */
import { createHash, createHmac } from "node:crypto";

export interface KnownHostEntry {
  marker?: "revoked" | "cert-authority";
  /** Comma-separated patterns as written, or undefined for a hashed entry. */
  patterns?: string[];
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
  file: string;
  line: number;
}

export type HostKeyStatus =
  | { status: "known"; entry: KnownHostEntry }
  /** The host is listed with another key of the same type: it changed, or someone is in between. */
  | { status: "changed"; entry: KnownHostEntry }
  | { status: "revoked"; entry: KnownHostEntry }
  | { status: "unknown" };

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0]!.startsWith("@")) {
      const m = fields.shift()!;
      if (m === "@revoked") marker = "revoked";
      else if (m === "@cert-authority") marker = "cert-authority";
      else return;
    }
    const [hosts, keyType, keyB64] = fields;
    if (!hosts || !keyType || !keyB64) return;
    const key = Buffer.from(keyB64, "base64");
    if (key.byteLength === 0) return;
    const entry: KnownHostEntry = { marker, keyType, key, file, line: i + 1 };
    if (hosts.startsWith("|1|")) {
      const [, , salt, hash] = hosts.split("|");
      if (!salt || !hash) return;
      entry.hashed = { salt: Buffer.from(salt, "base64"), hash: Buffer.from(hash, "base64") };
    } else entry.patterns = hosts.split(",");
    out.push(entry);
  });
  return out;
}

/** The name a host is listed under: `host` on port 22, `[host]:port` otherwise. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function wildcard(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
  return re.test(name);
}

export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  if (entry.hashed) {
    const h = createHmac("sha1", entry.hashed.salt).update(name).digest();
    return h.equals(entry.hashed.hash);
  }
  let matched = false;
  for (const p of entry.patterns ?? []) {
    if (p.startsWith("!")) {
      if (wildcard(p.slice(1), name)) return false;
    } else if (wildcard(p, name)) matched = true;
  }
  return matched;
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.byteLength < 4) return "unknown";
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString("latin1");
}

export function checkHostKey(entries: readonly KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyStatus {
  const name = hostKeyName(host, port);
  const type = keyTypeOf(key);
  for (const e of entries) if (e.marker === "revoked" && e.key.equals(key)) return { status: "revoked", entry: e };
  let changed: KnownHostEntry | undefined;
  for (const e of entries) {
    if (e.marker || !entryMatches(e, name)) continue;
    if (e.key.equals(key)) return { status: "known", entry: e };
    if (e.keyType === type) changed ??= e;
  }
  return changed ? { status: "changed", entry: changed } : { status: "unknown" };
}

/** Key types listed for a host, so the handshake can prefer a key we can check. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = hostKeyName(host, port);
  const types = new Set<string>();
  for (const e of entries) if (!e.marker && entryMatches(e, name)) types.add(e.keyType);
  return [...types];
}

/** `SHA256:...` as `ssh-keygen -l` and OpenSSH's messages print it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/** A known_hosts line for a key accepted on first connection. */
export function knownHostsLine(host: string, port: number, key: Buffer): string {
  return `${hostKeyName(host, port)} ${keyTypeOf(key)} ${key.toString("base64")}\n`;
}

/** The host key's digest in hex, as pgBackRest's repoN-sftp-host-fingerprint is written (`base64 -d | sha1sum`). */
export function hostKeyDigest(key: Buffer, hash: "md5" | "sha1" | "sha256"): string {
  return createHash(hash).update(key).digest("hex");
}
