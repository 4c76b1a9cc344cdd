// Reads a keepalived.conf and the files it includes into a tree of statements. An include is
// textual, as in keepalived: the included files' lines stand in its place, even inside a block.
// Relative patterns are read from the including file's directory (keepalived changes into it).
// Nesting is bounded and a file that includes itself, directly or not, is refused.
import { readFile, realpath } from "node:fs/promises";
import { dirname, relative, resolve } from "node:path";
import { globFiles, hasWildcards } from "./glob.ts";
import { lex, LexError, type Token } from "./lexer.ts";

/** Where a statement was written. */
export interface Origin {
  /** As the operator knows it: the path given, or the included file relative to the working directory. */
  file: string;
  line: number;
}

export interface Statement extends Origin {
  keyword: string;
  args: string[];
  /** The `{ ... }` that follows it, or null when it has none. */
  block: Statement[] | null;
}

/** A problem the reader found that does not stop it (a missing optional include). */
export interface ReadNote extends Origin {
  message: string;
}

export interface ReadResult {
  statements: Statement[];
  notes: ReadNote[];
  files: string[];
}

/** The input cannot be read or parsed; `file` and `line` when known. */
export class ReadError extends Error {
  constructor(message: string, readonly origin: Origin | null) {
    super(origin ? `${origin.file}:${origin.line}: ${message}` : message);
  }
}

export const MAX_INCLUDE_DEPTH = 8;
export const MAX_FILES = 256;

type Placed = Token & { file: string };

export async function readKeepalived(path: string, cwd: string): Promise<ReadResult> {
  const state = { files: [] as string[], notes: [] as ReadNote[] };
  const tokens = await readFileTokens(resolve(cwd, path), path, cwd, [], state, null);
  return { statements: buildTree(tokens), notes: state.notes, files: state.files };
}

async function readFileTokens(
  absolute: string, shown: string, cwd: string, stack: string[], state: { files: string[]; notes: ReadNote[] }, from: Origin | null,
): Promise<Placed[]> {
  let real: string;
  let text: string;
  try {
    real = await realpath(absolute);
    text = await readFile(real, "utf8");
  } catch (e) {
    throw new ReadError(`cannot read ${shown}: ${(e as { code?: string }).code ?? String(e)}`, from);
  }
  if (stack.includes(real)) {
    throw new ReadError(`include cycle: ${[...stack, real].map((f) => relative(cwd, f) || f).join(" -> ")}`, from);
  }
  if (stack.length >= MAX_INCLUDE_DEPTH) throw new ReadError(`includes nested deeper than ${MAX_INCLUDE_DEPTH} files`, from);
  if (state.files.length >= MAX_FILES) throw new ReadError(`more than ${MAX_FILES} files included`, from);
  state.files.push(shown);
  let tokens: Token[];
  try {
    tokens = lex(text);
  } catch (e) {
    if (e instanceof LexError) throw new ReadError(e.message, { file: shown, line: e.line });
    throw e;
  }
  const out: Placed[] = [];
  for (const token of tokens) {
    if (token.kind !== "include") {
      out.push({ ...token, file: shown });
      continue;
    }
    const origin = { file: shown, line: token.line };
    const files = await globFiles(token.pattern, dirname(real));
    if (files.length === 0) {
      // Plain include and includer forgive a missing file (as keepalived does); includem/w/b/a make it an error.
      const message = `${token.include} ${token.pattern}: ${hasWildcards(token.pattern) ? "no file matches" : "no such file"}`;
      if (token.include === "include" || token.include === "includer") state.notes.push({ ...origin, message });
      else throw new ReadError(message, origin);
      continue;
    }
    for (const file of files) {
      const name = relative(cwd, file);
      out.push(...await readFileTokens(file, name.startsWith("../../") ? file : name, cwd, [...stack, real], state, origin));
    }
  }
  return out;
}

/** One file's text as statements, includes not followed (for tests and tools that have no files). */
export function statementsOf(text: string, file: string): Statement[] {
  let tokens: Token[];
  try {
    tokens = lex(text);
  } catch (e) {
    if (e instanceof LexError) throw new ReadError(e.message, { file, line: e.line });
    throw e;
  }
  const include = tokens.find((t) => t.kind === "include");
  if (include) throw new ReadError("include is only followed when reading files", { file, line: include.line });
  return buildTree(tokens.map((t) => ({ ...t, file })));
}

/** Statements and their blocks; a `{` belongs to the statement just before it (on its line or the one above). */
function buildTree(tokens: Placed[]): Statement[] {
  const root: Statement[] = [];
  const open: { block: Statement[]; owner: Statement }[] = [];
  let previous: Statement | null = null;
  for (const token of tokens) {
    const at = { file: token.file, line: token.line };
    const current = open.length > 0 ? open[open.length - 1].block : root;
    if (token.kind === "words") {
      const statement: Statement = { ...at, keyword: token.words[0], args: token.words.slice(1), block: null };
      current.push(statement);
      previous = statement;
    } else if (token.kind === "open") {
      if (previous === null || previous.block !== null) throw new ReadError("'{' without a keyword before it", at);
      previous.block = [];
      open.push({ block: previous.block, owner: previous });
      previous = null;
    } else if (token.kind === "close") {
      if (open.length === 0) throw new ReadError("'}' without a block to close", at);
      open.pop();
      previous = null;
    }
  }
  if (open.length > 0) {
    const { owner } = open[open.length - 1];
    throw new ReadError(`the block of ${owner.keyword} is not closed`, { file: owner.file, line: owner.line });
  }
  return root;
}
