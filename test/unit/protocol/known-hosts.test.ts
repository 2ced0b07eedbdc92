import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkHostKey, fingerprint, knownHostsLine, knownKeyTypes, parseKnownHosts } from "../../../src/protocol/known-hosts.ts";

const dir = mkdtempSync(join(tmpdir(), "pgbunker-kh-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keypair(name: string, type = "ed25519"): { line: string; blob: Buffer } {
  const file = join(dir, name);
  Bun.spawnSync(["ssh-keygen", "-q", "-t", type, "-N", "", "-f", file]);
  const [t, b64] = readFileSync(`${file}.pub`, "utf8").split(" ");
  return { line: `${t} ${b64}`, blob: Buffer.from(b64!, "base64") };
}

const a = keypair("a");
const b = keypair("b");
const r = keypair("r", "ecdsa");

test("plain names, [host]:port, patterns and negation", () => {
  const entries = parseKnownHosts([
    "# comment",
    `db1,10.0.0.5 ${a.line}`,
    `[db1]:2222 ${b.line}`,
    `*.example.com,!evil.example.com ${a.line}`,
    `@cert-authority *.example.com ${b.line}`,
    "",
  ].join("\n"), "kh");
  expect(checkHostKey(entries, "db1", 22, a.blob).status).toBe("known");
  expect(checkHostKey(entries, "10.0.0.5", 22, a.blob).status).toBe("known");
  expect(checkHostKey(entries, "db1", 2222, b.blob).status).toBe("known");
  // Port 2222 is listed with key b: key a there is a changed key (same type), not unknown.
  const changed = checkHostKey(entries, "db1", 2222, a.blob);
  expect(changed.status).toBe("changed");
  expect(changed.status === "changed" && changed.entry.line).toBe(3);
  expect(checkHostKey(entries, "DB1", 22, a.blob).status).toBe("known");
  expect(checkHostKey(entries, "db2", 22, a.blob).status).toBe("unknown");
  expect(checkHostKey(entries, "x.example.com", 22, a.blob).status).toBe("known");
  expect(checkHostKey(entries, "evil.example.com", 22, a.blob).status).toBe("unknown");
  // A key of another type for a listed host is unknown (OpenSSH asks, we refuse unless accept-new).
  expect(checkHostKey(entries, "db1", 22, r.blob).status).toBe("unknown");
  expect(knownKeyTypes(entries, "db1", 2222)).toEqual(["ssh-ed25519"]);
});

test("hashed entries as ssh-keygen -H writes them, and @revoked", () => {
  const file = join(dir, "hashed");
  writeFileSync(file, `db1 ${a.line}\n[db1]:2222 ${b.line}\n`);
  expect(Bun.spawnSync(["ssh-keygen", "-q", "-H", "-f", file]).exitCode).toBe(0);
  const text = readFileSync(file, "utf8");
  expect(text).toStartWith("|1|");
  expect(text).not.toContain("db1");
  const entries = parseKnownHosts(text, file);
  expect(checkHostKey(entries, "db1", 22, a.blob).status).toBe("known");
  expect(checkHostKey(entries, "db1", 2222, b.blob).status).toBe("known");
  expect(checkHostKey(entries, "db1", 2222, a.blob).status).toBe("changed");
  expect(checkHostKey(entries, "db2", 22, a.blob).status).toBe("unknown");
  const revoked = parseKnownHosts(`@revoked * ${a.line}\n${text}`, file);
  expect(checkHostKey(revoked, "db1", 22, a.blob).status).toBe("revoked");
});

test("fingerprint and the line written for accept-new match OpenSSH", () => {
  const out = Bun.spawnSync(["ssh-keygen", "-l", "-f", join(dir, "a.pub")]).stdout.toString();
  expect(out).toContain(fingerprint(a.blob));
  expect(knownHostsLine("db1", 22, a.blob)).toBe(`db1 ${a.line}\n`);
  expect(knownHostsLine("127.0.0.1", 2200, a.blob)).toBe(`[127.0.0.1]:2200 ${a.line}\n`);
  // ssh-keygen -F finds our line (it is valid known_hosts syntax).
  const file = join(dir, "ours");
  writeFileSync(file, knownHostsLine("127.0.0.1", 2200, a.blob));
  expect(Bun.spawnSync(["ssh-keygen", "-F", "[127.0.0.1]:2200", "-f", file]).exitCode).toBe(0);
});
