/**
 * Sizes in info text, the way pgBackRest prints them: bytes below 1KB ("489B"), else one decimal
 * in the largest unit ("8.3KB", "6.0MB"), except that the decimal is left out when its truncated
 * tenth is zero ("37MB" for 37.06MB, "9MB" for 9.09MB). Units are powers of 1024.
 */
const UNITS = ["KB", "MB", "GB", "TB", "PB"];

/** value/unit to one decimal like C's "%.1f": round half to even on exact ties. */
function oneDecimal(value: number, unit: number): string {
  const scaled = (value * 10) / unit;
  const floor = Math.floor(scaled);
  const frac = scaled - floor;
  // Only an exact binary tie can differ from toFixed (which rounds ties up).
  const tenths = frac === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(scaled);
  return `${Math.floor(tenths / 10)}.${tenths % 10}`;
}

export function formatSize(size: number): string {
  if (size < 1024) return `${size}B`;
  let unit = 1024;
  let i = 0;
  while (i < UNITS.length - 1 && size >= unit * 1024) {
    unit *= 1024;
    i++;
  }
  const truncatedTenth = Math.floor((size * 10) / unit) % 10;
  return truncatedTenth === 0 ? `${Math.floor(size / unit)}${UNITS[i]}` : `${oneDecimal(size, unit)}${UNITS[i]}`;
}
