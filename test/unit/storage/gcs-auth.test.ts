/** The service-account JWT: RS256 over header.claims, claims as Google's token endpoint wants them. */
import { expect, test } from "bun:test";
import { createVerify, generateKeyPairSync } from "node:crypto";
import { serviceJwt } from "../../../src/storage/gcs/auth.ts";

test("header, claims (issuer, scope, audience, one hour) and a signature the public key verifies", () => {
  const pair = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
  const jwt = serviceJwt({ client_email: "sa@p.iam.gserviceaccount.com", private_key: pair.privateKey, token_uri: "https://oauth2.googleapis.com/token" }, 1_700_000_000);
  const [h, c, s] = jwt.split(".");
  expect(JSON.parse(Buffer.from(h!, "base64url").toString())).toEqual({ alg: "RS256", typ: "JWT" });
  expect(JSON.parse(Buffer.from(c!, "base64url").toString())).toEqual({
    iss: "sa@p.iam.gserviceaccount.com", scope: "https://www.googleapis.com/auth/devstorage.read_write", aud: "https://oauth2.googleapis.com/token", iat: 1_700_000_000, exp: 1_700_003_600,
  });
  expect(createVerify("RSA-SHA256").update(`${h}.${c}`).verify(pair.publicKey, Buffer.from(s!, "base64url"))).toBe(true);
});
