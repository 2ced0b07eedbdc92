/** URI encoding as object stores sign and route it (S3's SigV4, Azure's Shared Key, GCS). */

/** RFC 3986 encoding: everything but A-Z a-z 0-9 - . _ ~ is %XX. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An object key as a URI path: each segment encoded, the slashes kept. */
export function encodePath(path: string): string {
  return path.split("/").map(uriEncode).join("/");
}

/** A query string in the order given; a parameter with an empty value is sent bare ("?uploads"). */
export function queryString(query: Record<string, string>): string {
  const qs = Object.entries(query).map(([k, v]) => (v === "" ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(v)}`)).join("&");
  return qs ? `?${qs}` : "";
}
