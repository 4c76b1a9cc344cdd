// Command-line flags, checked against the flags each command declares: `--name value`,
// `--name=value`, `-n value` for a one-letter alias, and boolean `--flag`. An unknown flag, a value
// flag without its value, a value given to a boolean flag or a stray argument is an error.
import { didYouMean } from "../config/errors.ts";

export interface FlagSpec {
  name: string;
  /** Other spellings: one letter is written `-c`, longer ones `--from`. */
  aliases?: string[];
  /** The value's placeholder in help, e.g. "FILE"; absent for a boolean flag. */
  value?: string;
  help: string;
}

export interface ParsedArgs {
  /** By each flag's name (not the alias it was given as): its value, or true for a boolean. */
  flags: Map<string, string | true>;
  positional: string[];
}

export type ParseResult = { ok: true; args: ParsedArgs } | { ok: false; error: string };

/** Every command takes --help. */
export const HELP_FLAG: FlagSpec = { name: "help", aliases: ["h"], help: "show this command's flags" };

/** How a flag is written on the command line: `--name`, or `-n` for one letter. */
export function spelling(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/** `maxPositional`: how many plain arguments the command takes (most take none). */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], maxPositional = 0): ParseResult {
  const all = [...specs, HELP_FLAG];
  const bySpelling = new Map<string, FlagSpec>();
  for (const spec of all) for (const n of [spec.name, ...spec.aliases ?? []]) bySpelling.set(spelling(n), spec);
  const flags = new Map<string, string | true>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("-") || arg === "-") { rest.push(arg); continue; }
    const eq = arg.indexOf("=");
    const written = eq >= 0 ? arg.slice(0, eq) : arg;
    const spec = bySpelling.get(written);
    if (!spec) {
      // One or two letters are too short to guess from.
      const word = written.replace(/^--?/, "");
      const names = all.flatMap((s) => [s.name, ...(s.aliases ?? []).filter((a) => a.length > 1)]);
      const hint = word.length > 2 ? didYouMean(word, names) : null;
      return { ok: false, error: `unknown flag ${written}${hint ? ` (did you mean ${spelling(hint)}?)` : ""}` };
    }
    if (!spec.value) {
      if (eq >= 0) return { ok: false, error: `${written} takes no value` };
      flags.set(spec.name, true);
      continue;
    }
    // A value flag takes the next argument unless that is another flag.
    const value = eq >= 0 ? arg.slice(eq + 1) : i + 1 < argv.length && !/^-./.test(argv[i + 1]) ? argv[++i] : "";
    if (value === "") return { ok: false, error: `${written} needs a value (${spec.value})` };
    flags.set(spec.name, value);
  }
  if (rest.length > maxPositional) return { ok: false, error: `unexpected argument "${rest[maxPositional]}"` };
  return { ok: true, args: { flags, positional: rest } };
}

/** The first of `names` given a value. */
export function flag(args: ParsedArgs, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = args.flags.get(n);
    if (typeof v === "string") return v;
  }
  return undefined;
}

/** The flags part of a command's --help: one line per flag with its spellings and value. */
export function flagLines(specs: readonly FlagSpec[]): string[] {
  const rows = [...specs, HELP_FLAG].map((s) => {
    const spellings = [...(s.aliases ?? []).filter((a) => a.length === 1), s.name, ...(s.aliases ?? []).filter((a) => a.length > 1)];
    return [spellings.map(spelling).join(", ") + (s.value ? ` ${s.value}` : ""), s.help];
  });
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`);
}
