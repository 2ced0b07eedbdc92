/** Shared Key string to sign: the order of the standard headers, x-ms-* and the resource. */
import { expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { sharedKeyAuthorization, stringToSign } from "../../../src/storage/azure/sign.ts";

const input = {
  method: "PUT",
  account: "acct",
  path: "/acct/cont/dir/a%20b",
  query: { comp: "block", blockid: "QUJD" },
  headers: { "content-length": "0", "x-ms-version": "2024-08-04", "x-ms-date": "Mon, 07 Dec 2026 01:00:00 GMT", "x-ms-blob-type": "  BlockBlob ", range: "bytes=0-9", host: "ignored" },
};

test("twelve standard lines (zero length signed empty), x-ms headers sorted and trimmed, then account + path + sorted parameters", () => {
  expect(stringToSign(input).split("\n")).toEqual([
    "PUT", "", "", "", "", "", "", "", "", "", "", "bytes=0-9",
    "x-ms-blob-type:BlockBlob", "x-ms-date:Mon, 07 Dec 2026 01:00:00 GMT", "x-ms-version:2024-08-04",
    "/acct/acct/cont/dir/a%20b", "blockid:QUJD", "comp:block",
  ]);
});

test("the signature is HMAC-SHA256 keyed by the decoded account key, base64", () => {
  const key = Buffer.from("secret key bytes").toString("base64");
  const expected = createHmac("sha256", Buffer.from("secret key bytes")).update(stringToSign(input)).digest("base64");
  expect(sharedKeyAuthorization(input, key)).toBe(`SharedKey acct:${expected}`);
});
