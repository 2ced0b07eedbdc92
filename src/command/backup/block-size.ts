/**
 * Which files a block incremental backup (repo-block) stores by blocks, and with which block and
 * checksum size: pgBackRest's three maps, with its defaults, overridable by the repo-block-*-map
 * options. The block size grows with the file so that a map stays about one block long; old files
 * (rarely changed) get larger blocks, and the oldest none at all.
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import { parseSize } from "../../config/value.ts";
import { BLOCK_INCR_CHECKSUM_SIZE_MIN } from "../../repo/block-map.ts";
import type { ManifestBlockIncr } from "../../repo/manifest.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const DAY = 86400;

export interface BlockRules {
  /** File size → block size, largest first. */
  size: { from: number; blockSize: number }[];
  /** File age (seconds) → block multiplier, oldest first. */
  age: { from: number; multiplier: number }[];
  /** Block size → checksum size, largest first. */
  checksum: { from: number; checksumSize: number }[];
}

export const BLOCK_RULES_DEFAULT: BlockRules = {
  size: [
    [914, 88], [740, 80], [585, 72], [448, 64], [329, 56], [228, 48], [146, 40], [96, 32], [43, 24], [11, 16],
  ].map(([m, k]) => ({ from: m! * MiB, blockSize: k! * KiB })).concat([{ from: 16 * KiB, blockSize: 8 * KiB }]),
  age: [{ from: 28 * DAY, multiplier: 0 }, { from: 14 * DAY, multiplier: 4 }, { from: 7 * DAY, multiplier: 2 }],
  checksum: [[4 * MiB, 6], [2 * MiB, 5], [MiB, 4], [512 * KiB, 3], [128 * KiB, 2], [32 * KiB, 1]].map(([b, extra]) => ({ from: b!, checksumSize: BLOCK_INCR_CHECKSUM_SIZE_MIN + extra! })),
};

/** The rules of repoN, from its options (each map replaces the default map when given). */
export function blockRules(cfg: Config): BlockRules {
  const sizeOf = (key: string, text: string): number => {
    const n = parseSize(text);
    if (n === undefined || n <= 0 || n > 0xffffffff) throw err("OptionInvalidValueError", `'${text}' is not valid for '${key}' option`, "expected a size such as 8KiB or 1GiB.");
    return n;
  };
  const intOf = (key: string, text: string, min: number): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min) throw err("OptionInvalidValueError", `'${text}' is not valid for '${key}' option`, `expected a whole number of at least ${min}.`);
    return n;
  };
  const rules: BlockRules = { ...BLOCK_RULES_DEFAULT };
  const sizeKey = cfg.repoKey("repo-block-size-map");
  const ageKey = cfg.repoKey("repo-block-age-map");
  const sumKey = cfg.repoKey("repo-block-checksum-size-map");
  if (cfg.has(sizeKey)) rules.size = Object.entries(cfg.hash(sizeKey)).map(([k, v]) => ({ from: sizeOf(sizeKey, k), blockSize: sizeOf(sizeKey, v) }));
  if (cfg.has(ageKey)) rules.age = Object.entries(cfg.hash(ageKey)).map(([k, v]) => ({ from: intOf(ageKey, k, 0) * DAY, multiplier: intOf(ageKey, v, 0) }));
  if (cfg.has(sumKey)) rules.checksum = Object.entries(cfg.hash(sumKey)).map(([k, v]) => ({ from: sizeOf(sumKey, k), checksumSize: intOf(sumKey, v, BLOCK_INCR_CHECKSUM_SIZE_MIN) }));
  rules.size.sort((a, b) => b.from - a.from);
  rules.age.sort((a, b) => b.from - a.from);
  rules.checksum.sort((a, b) => b.from - a.from);
  return rules;
}

/** Block incremental settings of a new file, or undefined when it is stored whole. */
export function blockIncrOf(rules: BlockRules, size: number, timestamp: number, backupStart: number): ManifestBlockIncr | undefined {
  if (size === 0) return undefined;
  let blockSize = rules.size.find((r) => size >= r.from)?.blockSize ?? 0;
  const age = rules.age.find((r) => backupStart - timestamp >= r.from);
  if (age) blockSize *= age.multiplier;
  if (blockSize === 0) return undefined;
  const checksumSize = rules.checksum.find((r) => blockSize >= r.from)?.checksumSize ?? BLOCK_INCR_CHECKSUM_SIZE_MIN;
  return { blockSize, checksumSize, mapSize: 0 };
}
