// The validation toolkit every config section uses: a Checker that collects issues with their
// key paths, and small readers for values (strings, integers, durations, choices, references).
// Sections (schema.ts, and the health and vrrp sections) are written in terms of these.
import { parseDuration } from "./duration.ts";
import { didYouMean } from "./errors.ts";

export type PathSegment = string | number;
/** A validation problem; `at: "key"` when the key itself is wrong (unknown, bad name) rather than its value. */
export interface SchemaIssue {
  path: PathSegment[];
  message: string;
  at: "key" | "value";
}

/** How a wrong value is shown after "got": strings quoted, a missing value as "nothing". */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return Object.keys(value).length === 0 ? "an empty mapping" : "a mapping";
  return String(value);
}

export type Mapping = Record<string, unknown>;

/** Reads one value at `path`: returns it normalized, or records an issue and returns undefined. */
export type Read<T> = (c: Checker, value: unknown, path: PathSegment[]) => T | undefined;

/** Collects issues; its helpers record a problem and return undefined so validation carries on. */
export class Checker {
  readonly issues: SchemaIssue[] = [];

  fail(path: PathSegment[], message: string, at: "key" | "value" = "value"): undefined {
    this.issues.push({ path, message, at });
    return undefined;
  }

  expected(path: PathSegment[], what: string, got: unknown, hint = ""): undefined {
    return this.fail(path, `expected ${what}, got ${describeValue(got)}${hint}`);
  }

  checkKeys(m: Mapping, path: PathSegment[], allowed: readonly string[]): void {
    for (const key of Object.keys(m)) {
      if (allowed.includes(key)) continue;
      const guess = didYouMean(key, allowed);
      const hint = guess === null ? `allowed keys: ${allowed.join(", ")}` : `did you mean "${guess}"?`;
      this.fail([...path, key], `unknown key (${hint})`, "key");
    }
  }

  /** A required key: absent reads as undefined, which every reader reports as "got nothing". */
  required<T>(m: Mapping, path: PathSegment[], key: string, read: Read<T>): T | undefined {
    return read(this, valueOf(m, key), [...path, key]);
  }

  /** An optional key: the fallback stands in when it is absent (or invalid, which is already reported). */
  optional<T, D>(m: Mapping, path: PathSegment[], key: string, read: Read<T>, fallback: D): T | D {
    const value = valueOf(m, key);
    return value === undefined ? fallback : read(this, value, [...path, key]) ?? fallback;
  }

  mapping(value: unknown, path: PathSegment[], what: string): Mapping | undefined {
    return isMapping(value) ? value : this.expected(path, what, value);
  }

  /** A non-empty list; an invalid one yields no items, so callers need no special case. */
  list(value: unknown, path: PathSegment[], what: string): unknown[] {
    if (Array.isArray(value) && value.length > 0) return value;
    this.expected(path, what, value);
    return [];
  }
}

/** Remembers the index where each key was first seen, to report duplicates against it. */
export class FirstSeen {
  readonly #firstIndex = new Map<string, number>();

  /** Undefined the first time `key` is seen; afterwards the index it was first seen at. */
  check(key: string, index: number): number | undefined {
    const first = this.#firstIndex.get(key);
    if (first === undefined) this.#firstIndex.set(key, index);
    return first;
  }
}

export function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A key's value; `key:` with nothing after it (YAML null) counts as absent, so defaults apply. */
export function valueOf(m: Mapping, key: string): unknown {
  return Object.hasOwn(m, key) && m[key] !== null ? m[key] : undefined;
}

export function suggestion(word: string, candidates: readonly string[]): string {
  const guess = didYouMean(word, candidates);
  return guess === null ? "" : ` (did you mean "${guess}"?)`;
}

export function string(what: string): Read<string> {
  return (c, value, path) => typeof value === "string" && value !== "" ? value : c.expected(path, what, value);
}

export function integer(min: number, max: number): Read<number> {
  return (c, value, path) =>
    typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
      ? value
      : c.expected(path, `an integer ${min}..${max}`, value);
}

export const boolean: Read<boolean> = (c, value, path) =>
  typeof value === "boolean" ? value : c.expected(path, "true or false", value);

/** A string with units; a bare number is rejected because its unit would be a guess. */
export function duration({ zeroAllowed }: { zeroAllowed: boolean }): Read<number> {
  return (c, value, path) => {
    const ms = typeof value === "string" ? parseDuration(value) : null;
    if (ms === null) return c.expected(path, `a duration like "2s" or "150ms"`, value);
    return ms > 0 || zeroAllowed ? ms : c.expected(path, "a duration greater than zero", value);
  };
}

export function choice<T extends string>(choices: readonly T[]): Read<T> {
  return (c, value, path) => {
    if (typeof value === "string" && (choices as readonly string[]).includes(value)) return value as T;
    const hint = typeof value === "string" ? suggestion(value, choices) : "";
    return c.expected(path, `one of ${choices.join(", ")}`, value, hint);
  };
}

/** The name of something defined elsewhere in the file (a listener, a pool). */
export function reference(kind: string, names: readonly string[]): Read<string> {
  return (c, value, path) => {
    if (typeof value !== "string") return c.expected(path, `a ${kind} name`, value);
    if (names.includes(value)) return value;
    return c.expected(path, `the name of a defined ${kind}`, value, suggestion(value, names));
  };
}

/** One item or a non-empty list of them: `method: GET` means `method: [GET]`. */
export function oneOrMany<T>(what: string, readItem: Read<T>): Read<T[]> {
  return (c, value, path) => {
    if (!Array.isArray(value)) {
      const item = readItem(c, value, path);
      return item === undefined ? undefined : [item];
    }
    if (value.length === 0) return c.expected(path, `one or a list of ${what}`, value);
    const items = value.map((item, i) => readItem(c, item, [...path, i]));
    return items.every((item) => item !== undefined) ? items as T[] : undefined;
  };
}

export function regExp(c: Checker, source: string, path: PathSegment[]): RegExp | undefined {
  try {
    return new RegExp(source);
  } catch (error) {
    const reason = error instanceof Error ? ` (${error.message})` : "";
    return c.expected(path, "a valid regular expression", source, reason);
  }
}
