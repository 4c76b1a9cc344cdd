// Durations as operators write them: "150ms", "2s", "1m30s", "1.5s".

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;

// Units must appear largest first and at most once ("1m30s", not "30s1m" or "1s1s"),
// so a duration reads the same way to everyone.
const UNIT_ORDER: readonly Unit[] = ["h", "m", "s", "ms"];

// One "<number><unit>" part; "ms" is tried before "m" so "150ms" is not read as "150m" + "s".
const PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;

/** Milliseconds for a duration string, rounded to an integer; null if it is not one. */
export function parseDuration(s: string): number | null {
  if (s.length === 0) return null;
  let total = 0;
  let lastUnitRank = -1;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const match = PART.exec(s);
    if (match === null) return null;
    const unit = match[2] as Unit;
    const rank = UNIT_ORDER.indexOf(unit);
    if (rank <= lastUnitRank) return null;
    lastUnitRank = rank;
    total += Number(match[1]) * UNIT_MS[unit];
  }
  const ms = Math.round(total);
  return Number.isSafeInteger(ms) ? ms : null;
}

/** A duration in the same notation parseDuration reads, e.g. 90500 → "1m30s500ms". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return "0ms";
  let text = ms < 0 ? "-" : "";
  for (const unit of UNIT_ORDER) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * UNIT_MS[unit];
  }
  return text;
}
