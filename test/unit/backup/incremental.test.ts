import { expect, test } from "bun:test";
import { decideFile, referencePrior } from "../../../src/command/backup/incremental.ts";
import { Manifest, type ManifestFile } from "../../../src/repo/manifest.ts";

function prior(copyStart: number): Manifest {
  const m = new Manifest(
    { label: "20240101-000000F", type: "full", reference: ["20240101-000000F"], timestampStart: copyStart - 5, timestampCopyStart: copyStart },
    { id: 1, systemId: 1n, version: "15", catalogVersion: 1, controlVersion: 1 },
  );
  const f = (name: string, size: number, timestamp: number): ManifestFile => ({ name, size, timestamp, checksum: size ? "a".repeat(40) : undefined, repoSize: size + 10, rck: "b".repeat(40), mode: "0600", user: "postgres", group: "postgres" });
  m.files.set("pg_data/old", f("pg_data/old", 100, copyStart - 100));
  m.files.set("pg_data/same-second", f("pg_data/same-second", 100, copyStart));
  m.files.set("pg_data/second-before", f("pg_data/second-before", 100, copyStart - 1));
  m.files.set("pg_data/empty", f("pg_data/empty", 0, copyStart + 50));
  return m;
}

const cur = (name: string, size: number, timestamp: number): ManifestFile => ({ name, size, timestamp, mode: "0600", user: "postgres", group: "postgres" });

test("size + mtime decide, but never across the prior backup's copy-start second", () => {
  const p = prior(1000);
  expect(decideFile(cur("pg_data/old", 100, 900), p, false).kind).toBe("reference");
  expect(decideFile(cur("pg_data/old", 101, 900), p, false).kind).toBe("copy");
  expect(decideFile(cur("pg_data/old", 100, 901), p, false).kind).toBe("copy");
  // Modified in (or just before) the second the prior backup started copying: cannot be trusted.
  expect(decideFile(cur("pg_data/same-second", 100, 1000), p, false).kind).toBe("copy");
  expect(decideFile(cur("pg_data/second-before", 100, 999), p, false).kind).toBe("copy");
  expect(decideFile(cur("pg_data/new", 100, 900), p, false).kind).toBe("copy");
  expect(decideFile(cur("pg_data/old", 100, 900), undefined, false).kind).toBe("copy");
  // Zero-size files reference the prior copy whatever their time.
  expect(decideFile(cur("pg_data/empty", 0, 5000), p, false).kind).toBe("reference");
});

test("delta: same size means check the SHA-1; different size means copy", () => {
  const p = prior(1000);
  expect(decideFile(cur("pg_data/old", 100, 12345), p, true)).toMatchObject({ kind: "delta", label: "20240101-000000F" });
  expect(decideFile(cur("pg_data/old", 99, 900), p, true).kind).toBe("copy");
});

test("a reference carries the prior copy's checksum, sizes and label", () => {
  const p = prior(1000);
  const f = cur("pg_data/old", 100, 900);
  const d = decideFile(f, p, false);
  if (d.kind !== "reference") throw new Error("expected reference");
  referencePrior(f, d.prior, d.label);
  expect(f).toMatchObject({ checksum: "a".repeat(40), repoSize: 110, rck: "b".repeat(40), reference: "20240101-000000F", timestamp: 900 });
  // A file the prior itself referenced keeps pointing at the backup that holds it.
  p.files.set("pg_data/old", { ...p.files.get("pg_data/old")!, reference: "20231231-000000F" });
  expect(decideFile(cur("pg_data/old", 100, 900), p, false)).toMatchObject({ label: "20231231-000000F" });
});
