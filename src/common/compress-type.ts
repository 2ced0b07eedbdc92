/**
 * Facts about the repository's compression types, shared by the option table (which checks
 * compress-level against the type at parse time) and the filters (which run the codecs): the
 * type names, their file extensions, and each type's default level and valid range, as
 * pgBackRest defines them.
 */

export const COMPRESS_TYPES = ["none", "bz2", "gz", "lz4", "zst"] as const;
export type CompressType = (typeof COMPRESS_TYPES)[number];
export type CodecType = Exclude<CompressType, "none">;

export const COMPRESS_EXT: Record<CompressType, string> = { none: "", lz4: ".lz4", gz: ".gz", zst: ".zst", bz2: ".bz2" };

/** Default level per type, as pgBackRest chooses them. */
export const COMPRESS_LEVEL_DEFAULT: Record<CodecType, number> = { lz4: 1, gz: 6, zst: 3, bz2: 9 };

/** Valid level range per type. */
export const COMPRESS_LEVEL_RANGE: Record<CodecType, readonly [number, number]> = {
  lz4: [-5, 12], gz: [0, 9], zst: [-7, 22], bz2: [1, 9],
};

export function isCompressType(name: string): name is CompressType {
  return (COMPRESS_TYPES as readonly string[]).includes(name);
}
