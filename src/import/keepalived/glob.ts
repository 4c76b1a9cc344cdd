// The file patterns keepalived's `include` takes (glob(3) with GLOB_BRACE): `*`, `?`, `[...]` within
// one path component, csh braces `{a,b}` anywhere; a wildcard never matches a leading dot. Each
// brace alternative's matches are sorted, alternatives stay in the order written, and directories
// are left out (keepalived skips them).
import { readdir, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";

const WILDCARD = /[*?[]/;

/** True when the pattern can match other names than itself. */
export function hasWildcards(pattern: string): boolean {
  return WILDCARD.test(pattern) || expandBraces(pattern).length > 1;
}

/** csh brace expansion: "a{b,c{d,e}}f" → ["abf", "acdf", "acef"]; an unmatched brace stays literal. */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf("{");
  if (open < 0) return [pattern];
  let depth = 0;
  const commas: number[] = [];
  for (let i = open; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "{") depth++;
    else if (ch === "," && depth === 1) commas.push(i);
    else if (ch === "}" && --depth === 0) {
      const head = pattern.slice(0, open);
      const tail = pattern.slice(i + 1);
      const cuts = [open, ...commas, i];
      const alternatives = cuts.slice(0, -1).map((cut, k) => pattern.slice(cut + 1, cuts[k + 1]));
      return alternatives.flatMap((alt) => expandBraces(head + alt + tail));
    }
  }
  // No closing brace: the "{" is a literal character; expand what follows it.
  return expandBraces(pattern.slice(open + 1)).map((rest) => pattern.slice(0, open + 1) + rest);
}

/** A regular expression for one path component of a pattern. */
export function componentRegExp(component: string): RegExp {
  let re = "";
  for (let i = 0; i < component.length; i++) {
    const ch = component[i];
    if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else if (ch === "[") {
      const end = component.indexOf("]", i + 2);
      if (end < 0) { re += "\\["; continue; }
      let body = component.slice(i + 1, end);
      const negated = body[0] === "!" || body[0] === "^";
      if (negated) body = body.slice(1);
      re += `[${negated ? "^" : ""}${body.replace(/[\\\]]/g, "\\$&")}]`;
      i = end;
    } else re += ch.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The files (not directories) `pattern` names, relative patterns read from `dir`. */
export async function globFiles(pattern: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const alternative of expandBraces(pattern)) {
    const absolute = isAbsolute(alternative) ? alternative : join(dir, alternative);
    const matches = await matchComponents("/", absolute.split("/").filter((c) => c !== ""));
    for (const file of matches.sort()) if (!out.includes(file)) out.push(file);
  }
  return out;
}

async function matchComponents(base: string, components: string[]): Promise<string[]> {
  if (components.length === 0) return (await kind(base)) === "file" ? [base] : [];
  const [first, ...rest] = components;
  if (!WILDCARD.test(first)) {
    const next = join(base, first);
    if (rest.length > 0 && (await kind(next)) !== "dir") return [];
    return matchComponents(next, rest);
  }
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return [];
  }
  const re = componentRegExp(first);
  const hidden = first.startsWith(".");
  const out: string[] = [];
  for (const name of names.sort()) {
    if (!re.test(name) || (name.startsWith(".") && !hidden)) continue;
    out.push(...await matchComponents(join(base, name), rest));
  }
  return out;
}

async function kind(path: string): Promise<"file" | "dir" | null> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? "dir" : s.isFile() ? "file" : null;
  } catch {
    return null;
  }
}
