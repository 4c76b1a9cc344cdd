// Config errors as operators see them: one line each, pointing at the file position and key path.

export interface ConfigError {
  /** Key path like `pools.api.servers[1].weight`, or `(root)` / `(yaml)`. */
  path: string;
  message: string;
  /** 1-based position of the offending YAML node, when it is known. */
  line?: number;
  col?: number;
}

/** One `FILE:LINE:COL: PATH: MESSAGE` line per error (`FILE: PATH: MESSAGE` when the position is unknown). */
export function formatConfigErrors(file: string, errors: ConfigError[]): string {
  return errors.map((error) => `${file}${formatPosition(error)}: ${error.path}: ${error.message}`).join("\n");
}

function formatPosition(error: ConfigError): string {
  if (error.line === undefined) return "";
  return error.col === undefined ? `:${error.line}` : `:${error.line}:${error.col}`;
}

/**
 * The candidate closest to a misspelt word, or null when none is close enough to be a plausible typo
 * (distance ≤ max(2, ⌊len/3⌋)). Case is ignored so "WRR" still suggests "wrr".
 */
export function didYouMean(word: string, candidates: readonly string[]): string | null {
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = levenshtein(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= limit ? best : null;
}

/** Edit distance (insertions, deletions, substitutions), keeping one row of the table at a time. */
function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length];
}

/** `pools.api.servers[1].weight`; keys that would be ambiguous with dots are quoted: `pools["v1.api"]`. */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return "(root)";
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) text += text === "" ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}
