// keepalived.conf text → a stream of tokens per line, read as keepalived's own reader does
// (lib/parser.c: decomment, read_line, alloc_strvec): `#` and `!` start a comment anywhere outside
// double quotes (`\#`, `\!` escape them), a `{` or `}` outside quotes ends the words before it and
// stands alone, a double-quoted string is one word without its quotes, and a line starting with
// `include` (or includer/m/w/b/a) names files to read in its place.

export type IncludeKind = "include" | "includer" | "includem" | "includew" | "includeb" | "includea";

export type Token =
  | { kind: "words"; line: number; words: string[] }
  | { kind: "open"; line: number }
  | { kind: "close"; line: number }
  | { kind: "include"; line: number; include: IncludeKind; pattern: string };

export class LexError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

const INCLUDE = /^include([rmwba]?)[ \t]+(.*)$/;

/** Every token of one file's text, in order, with 1-based line numbers. */
export function lex(text: string): Token[] {
  const tokens: Token[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    let rest = decomment(raw.replace(/\r+$/, ""), line);
    // A brace splits a line; what follows it is read again as a line of its own (keepalived's line_residue).
    while (rest !== "") {
      if (rest[0] === "@") throw new LexError(line, "conditional configuration (@config_id) is not supported by the importer");
      if (rest[0] === "$") throw new LexError(line, "parameter definitions ($NAME=...) are not supported by the importer");
      if (rest.startsWith("~SEQ") || rest.startsWith("~LST")) {
        throw new LexError(line, "sequence and list blocks (~SEQ, ~LST) are not supported by the importer");
      }
      const include = INCLUDE.exec(rest);
      if (include) {
        const pattern = include[2].trim();
        if (pattern === "") throw new LexError(line, "include needs a file name");
        tokens.push({ kind: "include", line, include: `include${include[1]}` as IncludeKind, pattern });
        break;
      }
      if (rest[0] === "{" || rest[0] === "}") {
        tokens.push({ kind: rest[0] === "{" ? "open" : "close", line });
        rest = rest.slice(1).trimStart();
        continue;
      }
      const brace = firstBraceOutsideQuotes(rest);
      const head = brace < 0 ? rest : rest.slice(0, brace);
      const words = splitWords(head, line);
      if (words.length > 0) tokens.push({ kind: "words", line, words });
      rest = brace < 0 ? "" : rest.slice(brace);
    }
  });
  return tokens;
}

/** The line without its comment and surrounding blanks; `\#` and `\!` outside quotes become `#` and `!`. */
export function decomment(line: string, lineNo = 0): string {
  let out = "";
  let quote = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (ch === '"') {
      quote = !quote;
    } else if (ch === "\\" && i + 1 < line.length) {
      const next = line[i + 1];
      if (!quote && (next === "#" || next === "!")) {
        out += next;
        i++;
        continue;
      }
      out += ch + next;
      i++;
      continue;
    } else if (!quote && (ch === "#" || ch === "!")) {
      break;
    }
    out += ch;
  }
  if (quote) throw new LexError(lineNo, "unterminated quote");
  return out.trim();
}

function firstBraceOutsideQuotes(s: string): number {
  let quote = false;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '"') quote = !quote;
    else if (!quote && (s[i] === "{" || s[i] === "}")) return i;
  }
  return -1;
}

/** Blank-separated words; a word that starts with `"` runs to the next `"` and loses its quotes. */
export function splitWords(s: string, lineNo = 0): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === " " || s[i] === "\t") { i++; continue; }
    if (s[i] === '"') {
      const end = s.indexOf('"', i + 1);
      if (end < 0) throw new LexError(lineNo, "unterminated quote");
      words.push(s.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    let end = i;
    while (end < s.length && s[end] !== " " && s[end] !== "\t" && s[end] !== '"') end++;
    words.push(s.slice(i, end));
    i = end;
  }
  return words;
}
