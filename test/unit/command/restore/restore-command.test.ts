import { expect, test } from "bun:test";
import { archiveGetCommand } from "../../../../src/command/restore/restore-command.ts";
import { parseConfig } from "../../../../src/config/parse.ts";

test("restore_command: archive-get with the command-line and PGBUNKER_* options it understands, never secrets or restore-only ones", () => {
  const cfg = parseConfig({
    argv: ["--stanza=main", "--pg1-path=/data/new dir", "--config=/etc/x.conf", "--process-max=4", "--log-level-console=info", "--type=time", "--target=2024-01-01 00:00:00", "--delta", "--repo=2", "--cmd=/opt/pgbunker", "restore"],
    env: { PGBUNKER_REPO2_PATH: "/backup/repo", PGBUNKER_REPO2_CIPHER_PASS: "secret", PGBUNKER_BUFFER_SIZE: "2MiB" },
    configSections: new Map([["global", [{ key: "repo2-host-user", value: "backup", file: "/etc/x.conf", line: 1 }]]]),
  });
  expect(archiveGetCommand(cfg)).toBe(
    `/opt/pgbunker --buffer-size=2MiB --config=/etc/x.conf "--pg1-path=/data/new dir" --repo=2 --repo2-path=/backup/repo --stanza=main archive-get %f "%p"`,
  );
});
