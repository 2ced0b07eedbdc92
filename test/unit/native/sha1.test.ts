/** native/sha1.ts (libcrypto) gives the SHA-1 of the standard vectors and of streamed buffers, as Bun's hasher does. */
import { expect, test } from "bun:test";
import { Sha1 } from "../../../src/native/sha1.ts";
import { sha1Hex } from "../../../src/filter/sha1.ts";

const bun = (d: Uint8Array | string) => new Bun.CryptoHasher("sha1").update(d).digest("hex");

test("FIPS 180 vectors: empty, abc, and the 448-bit message", () => {
  expect(new Sha1().digest()).toBe("da39a3ee5e6b4b0d3255bfef95601890afd80709");
  expect(sha1Hex("abc")).toBe("a9993e364706816aba3e25717850c26c9cd0d89d");
  expect(sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe("84983e441c3bd26ebaae4aa1f95129e5e54670f1");
});

test("a 16 MiB buffer streamed in uneven pieces (and empty ones) hashes as the whole", () => {
  const data = new Uint8Array(16 * 1024 * 1024 + 13);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const h = new Sha1();
  for (let o = 0, step = 1; o < data.length; o += step, step = (step * 7 + 1) % 3_000_000) h.update(data.subarray(o, o + step)).update(new Uint8Array(0));
  expect(h.digest()).toBe(bun(data));
});
