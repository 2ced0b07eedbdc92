/**
 * Command-line options of bench/run.ts. Pure: parsing and validation only, unit-tested.
 */

/** Every measured scenario, in the order a run executes them (see scenarios.ts). */
export const SCENARIOS = ["full", "incr", "restore", "push"] as const;
export type ScenarioGroup = (typeof SCENARIOS)[number];
/** The full backup variants of the "full" group (scenarios.ts FULL_VARIANTS ids without "full-"). */
export const FULL_VARIANT_NAMES = ["gz-pm2", "none-pm2", "lz4-pm1", "lz4-pm2"] as const;

export interface BenchOptions {
  /** Target size of the data directory (without WAL), bytes. */
  size: number;
  /** Repetitions of every measurement (the report shows the median). */
  reps: number;
  /** WAL segments pushed by the archive-push measurement. */
  segments: number;
  /** pgbench transactions per client (2 clients) before each incremental backup. */
  pgbenchTx: number;
  /** Scenario groups to run (default: all). */
  only: ScenarioGroup[];
  /** Full backup variants (scenario ids, "full-lz4-pm2"...) of the full group; lz4-pm2 always runs. */
  fullVariants: string[];
  /** Work directory (default: a new temp dir, removed at the end unless keep). */
  dir?: string;
  /** Keep the work directory (cluster, repositories) after the run. */
  keep: boolean;
  /** Where the report goes (the generated part of this file is replaced, the rest kept). */
  out: string;
  /** Also record a CPU profile of one pgbunker full backup (perf, cpu-clock). */
  profile: boolean;
  /** Compare with pgbackrest and pg_basebackup (off: measure pgbunker alone, for quick checks). */
  compare: boolean;
  /** pgbunker executable to measure (default: dist/pgbunker, rebuilt when sources changed). */
  binary?: string;
}

export const DEFAULTS: BenchOptions = {
  size: 3 * 1024 ** 3,
  reps: 3,
  segments: 100,
  pgbenchTx: 2000,
  only: [...SCENARIOS],
  fullVariants: FULL_VARIANT_NAMES.map((n) => `full-${n}`),
  keep: false,
  out: "bench/RESULTS.md",
  profile: false,
  compare: true,
};

export const USAGE = `usage: bun bench/run.ts [options]   (as root: clusters and tools run as user postgres)
  --size=SIZE        data directory size to generate (default 3GiB; units: K M G T, powers of 1024)
  --reps=N           repetitions per measurement, median reported (default 3)
  --segments=N       WAL segments pushed by the archive-push measurement (default 100)
  --pgbench-tx=N     pgbench transactions per client before each incremental backup (default 2000)
  --only=LIST        scenario groups, comma-separated: ${SCENARIOS.join(",")} (default all)
  --full=LIST        full backup variants of the full group: ${FULL_VARIANT_NAMES.join(",")} (default all;
                     lz4-pm2 always runs, the later groups start from its backup)
  --dir=PATH         work directory (default: new temp dir; removed afterwards unless --keep)
  --keep             keep the work directory
  --out=FILE         report file (default bench/RESULTS.md; text outside the generated block is kept)
  --profile          also profile one pgbunker full backup (perf) into bench/profile-*.txt
  --no-compare       measure pgbunker only (no pgBackRest 2.45 or 2.59.1, no pg_basebackup)
  --binary=PATH      pgbunker executable to measure (default dist/pgbunker, rebuilt when sources changed;
                     another build, e.g. of an older commit, gives before/after figures)`;

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "3GiB", "3GB", "3g", "512MB", "1048576" → bytes (powers of 1024, as pgBackRest's sizes). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new Error(`invalid size '${text}': expected a number with an optional unit K, M, G or T (e.g. 3GB)`);
  const bytes = Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (bytes <= 0) throw new Error(`invalid size '${text}': must be greater than zero`);
  return bytes;
}

function positiveInt(name: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new Error(`invalid --${name} '${text}': expected a whole number of at least 1`);
  return Number(text);
}

export function parseOptions(argv: readonly string[]): BenchOptions | "help" {
  const o: BenchOptions = { ...DEFAULTS, only: [...DEFAULTS.only], fullVariants: [...DEFAULTS.fullVariants] };
  for (const arg of argv) {
    if (arg === "--help" || arg === "-h") return "help";
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unexpected argument '${arg}' (see --help)`);
    const [, name, value] = m as unknown as [string, string, string | undefined];
    const need = (): string => {
      if (value === undefined || value === "") throw new Error(`option --${name} needs a value (--${name}=...)`);
      return value;
    };
    switch (name) {
      case "size": o.size = parseSize(need()); break;
      case "reps": o.reps = positiveInt(name, need()); break;
      case "segments": o.segments = positiveInt(name, need()); break;
      case "pgbench-tx": o.pgbenchTx = positiveInt(name, need()); break;
      case "dir": o.dir = need(); break;
      case "binary": o.binary = need(); break;
      case "out": o.out = need(); break;
      case "keep": o.keep = true; break;
      case "profile": o.profile = true; break;
      case "no-compare": o.compare = false; break;
      case "only": {
        const groups = need().split(",").map((s) => s.trim()).filter(Boolean);
        const bad = groups.filter((g) => !(SCENARIOS as readonly string[]).includes(g));
        if (bad.length) throw new Error(`unknown scenario group '${bad.join(",")}' in --only: expected some of ${SCENARIOS.join(",")}`);
        o.only = groups as ScenarioGroup[];
        break;
      }
      case "full": {
        const names = need().split(",").map((s) => s.trim()).filter(Boolean);
        const bad = names.filter((n) => !(FULL_VARIANT_NAMES as readonly string[]).includes(n));
        if (bad.length) throw new Error(`unknown full backup variant '${bad.join(",")}' in --full: expected some of ${FULL_VARIANT_NAMES.join(",")}`);
        o.fullVariants = names.map((n) => `full-${n}`);
        break;
      }
      default: throw new Error(`unknown option --${name} (see --help)`);
    }
  }
  return o;
}
