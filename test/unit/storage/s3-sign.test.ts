import { expect, test } from "bun:test";
import { canonicalQuery, EMPTY_SHA256, encodePath, signRequest } from "../../../src/storage/s3/sign.ts";

// The worked example of AWS's "Signature Calculations for the Authorization Header" (GET Object).
test("SigV4: AWS's documented GET Object example gives its documented signature", () => {
  const h = signRequest(
    { method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", query: {}, headers: { Range: "bytes=0-9" }, payloadHash: EMPTY_SHA256, region: "us-east-1", now: new Date("2013-05-24T00:00:00Z") },
    { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
  );
  expect(h.authorization).toBe(
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
});

test("SigV4: keys and query values are encoded per RFC 3986, query sorted", () => {
  expect(encodePath("/b/a dir/x+y(1)*.txt")).toBe("/b/a%20dir/x%2By%281%29%2A.txt");
  expect(canonicalQuery({ prefix: "a/b", "list-type": "2", delimiter: "/" })).toBe("delimiter=%2F&list-type=2&prefix=a%2Fb");
});
