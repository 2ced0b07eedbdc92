import { expect, test } from "bun:test";
import { parseListPage } from "../../../src/storage/s3/list.ts";
import { xmlDecode, xmlEncode, xmlText } from "../../../src/storage/http/xml.ts";

test("ListObjectsV2 page: keys decoded, sizes, times, prefixes, continuation only when truncated", () => {
  const xml = `<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>tok&amp;1</NextContinuationToken>`
    + `<Contents><Key>a/x&amp;y &lt;1&gt;</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified><Size>12</Size></Contents>`
    + `<CommonPrefixes><Prefix>a/sub/</Prefix></CommonPrefixes></ListBucketResult>`;
  const p = parseListPage(xml);
  expect(p.objects).toEqual([{ key: "a/x&y <1>", size: 12, mtime: Date.UTC(2024, 0, 2, 3, 4, 5) / 1000 }]);
  expect(p.prefixes).toEqual(["a/sub/"]);
  expect(p.next).toBe("tok&1");
  expect(parseListPage(xml.replace("<IsTruncated>true", "<IsTruncated>false")).next).toBeUndefined();
});

test("entities round trip; error bodies read by tag", () => {
  expect(xmlDecode(xmlEncode(`a&b<c>"d'`))).toBe(`a&b<c>"d'`);
  expect(xmlDecode("&#65;&#x42;")).toBe("AB");
  expect(xmlText("<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>", "Code")).toBe("NoSuchBucket");
  expect(xmlText("<Error/>", "Code")).toBeUndefined();
});
