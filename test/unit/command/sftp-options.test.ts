/**
 * repoN-sftp-* options → the SFTP driver's SSH target: pgBackRest's names, defaults and required
 * options, ~ paths, the default known hosts files, and the combinations pgBackRest refuses.
 */
import { expect, test } from "bun:test";
import { sftpTarget } from "../../../src/command/shared/sftp.ts";
import { storageSpec } from "../../../src/command/shared/storage.ts";
import { parseConfigText } from "../../../src/config/ini-config.ts";
import { parseConfig } from "../../../src/config/parse.ts";
import { userHome } from "../../../src/common/user.ts";
import { failure } from "../../harness/failure.ts";

const BASE = ["[global]", "repo2-type=sftp", "repo2-path=/backups", "repo2-sftp-host=sftp.example.com", "repo2-sftp-host-user=backup", "repo2-sftp-private-key-file=~/.ssh/id_ed25519", "[demo]", "pg1-path=/data"];

function cfgOf(lines: string[], argv: string[] = ["--stanza=demo", "info"]) {
  return parseConfig({ argv, env: {}, configSections: parseConfigText(lines.join("\n"), "test.conf") });
}

test("defaults: port 22, strict, OpenSSH's known hosts files, the key under the home directory; option names in hints", () => {
  const t = sftpTarget(cfgOf(BASE), 2);
  const home = userHome()!;
  expect(t).toEqual({
    host: "sftp.example.com", port: 22, user: "backup", keyFile: `${home}/.ssh/id_ed25519`, keyCheck: "strict", connectTimeout: 60,
    knownHostsFiles: [`${home}/.ssh/known_hosts`, `${home}/.ssh/known_hosts2`, "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
    option: "repo2-sftp-host",
    names: { port: "repo2-sftp-host-port", user: "repo2-sftp-host-user", keyFile: "repo2-sftp-private-key-file", keyCheck: "repo2-sftp-host-key-check-type" },
  });
  // A worker gets the same target (plain data), rooted at repo2-path.
  expect(storageSpec(cfgOf(BASE, ["--stanza=demo", "--repo=2", "info"]), "repo")).toEqual({ kind: "sftp", base: "/backups", target: t, timeout: 60, readOnly: false });
});

test("every option set: port, passphrase, public key, known hosts list, fingerprint", () => {
  const t = sftpTarget(cfgOf([...BASE.slice(0, 6), "repo2-sftp-host-port=2222", "repo2-sftp-private-key-passphrase=secret words", "repo2-sftp-public-key-file=/keys/id.pub",
    "repo2-sftp-host-key-check-type=fingerprint", "repo2-sftp-host-key-hash-type=sha1", "repo2-sftp-host-fingerprint=0a1b", "io-timeout=15", ...BASE.slice(6)]), 2);
  expect(t).toMatchObject({ port: 2222, passphrase: "secret words", publicKeyFile: "/keys/id.pub", keyCheck: "fingerprint", fingerprint: { hash: "sha1", value: "0a1b" }, connectTimeout: 15 });
  const list = sftpTarget(cfgOf([...BASE.slice(0, 6), "repo2-sftp-known-host=/etc/a", "repo2-sftp-known-host=~/b", ...BASE.slice(6)]), 2);
  expect(list.knownHostsFiles).toEqual(["/etc/a", `${userHome()}/b`]);
});

test("required: host, user, private key file; fingerprint and its hash type for check type fingerprint", async () => {
  for (const [drop, option] of [[3, "repo2-sftp-host"], [4, "repo2-sftp-host-user"], [5, "repo2-sftp-private-key-file"]] as const) {
    const e = await failure((async () => sftpTarget(cfgOf(BASE.filter((_, i) => i !== drop)), 2))());
    expect(e.kind).toBe("OptionRequiredError");
    expect(e.message).toBe(`info command requires option: ${option}`);
  }
  const noPrint = await failure((async () => sftpTarget(cfgOf([...BASE, "repo2-sftp-host-key-check-type=fingerprint"].filter((l) => l !== "[demo]" && l !== "pg1-path=/data")), 2))());
  expect(noPrint.message).toBe("info command requires option: repo2-sftp-host-fingerprint");
});

test("a passphrase is secure: refused on the command line, like the other secrets", async () => {
  const e = await failure((async () => cfgOf(BASE, ["--stanza=demo", "--repo2-sftp-private-key-passphrase=x", "info"]))());
  expect(e.kind).toBe("OptionInvalidError");
});

test("repo2-host with repo2-type=sftp is refused: the SFTP server is reached from here", async () => {
  const e = await failure((async () => storageSpec(cfgOf([...BASE.slice(0, 6), "repo2-host=backup1", ...BASE.slice(6)], ["--stanza=demo", "--repo=2", "info"]), "repo"))());
  expect(e.kind).toBe("OptionInvalidError");
  expect(e.message).toContain("repo2-host and repo2-type=sftp cannot be used together");
});
