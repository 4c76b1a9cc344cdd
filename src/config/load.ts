// YAML text → a validated config, with every error pointing at a line and column of the file. The
// validator is the caller's (src/control/schema.ts assembles it from the parts' sections), so this
// toolkit knows no part.

import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type YAMLError,
} from "yaml";
import { type ConfigError, formatConfigErrors, formatPath } from "./errors.ts";
import type { SchemaIssue } from "./checker.ts";

export type Validated<T> = { ok: true; config: T } | { ok: false; issues: SchemaIssue[] };

export type ParseResult<T> =
  | { ok: true; config: T }
  | { ok: false; errors: ConfigError[]; /** the errors formatted for `file`, one per line */ message: string };

export function parseConfig<T>(text: string, file: string, validate: (raw: unknown) => Validated<T>): ParseResult<T> {
  const lineCounter = new LineCounter();
  // prettyErrors off: messages stay one line; positions are added from the line counter instead.
  // logLevel "error": nothing is printed to the console; whatever matters is reported as a ConfigError.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, logLevel: "error" });
  if (doc.errors.length > 0) return failure(file, doc.errors.map((error) => syntaxError(error, lineCounter)));

  let raw: unknown;
  try {
    raw = doc.toJS(); // throws e.g. when aliases expand too much (a "billion laughs" document)
  } catch (error) {
    return failure(file, [{ path: "(yaml)", message: error instanceof Error ? error.message : String(error) }]);
  }
  const result = validate(raw);
  if (result.ok) return result;
  const errors = result.issues.map((issue) => validationError(issue, doc, lineCounter));
  return failure(file, errors.sort(byPosition)); // file order reads best; stable, so ties keep check order
}

function byPosition(a: ConfigError, b: ConfigError): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.col ?? 0) - (b.col ?? 0);
}

function failure(file: string, errors: ConfigError[]): { ok: false; errors: ConfigError[]; message: string } {
  return { ok: false, errors, message: formatConfigErrors(file, errors) };
}

function syntaxError(error: YAMLError, lineCounter: LineCounter): ConfigError {
  return { path: "(yaml)", message: error.message, ...lineCounter.linePos(error.pos[0]) };
}

function validationError(issue: SchemaIssue, doc: Document, lineCounter: LineCounter): ConfigError {
  const error: ConfigError = { path: formatPath(issue.path), message: issue.message };
  const node = locate(doc, issue);
  const offset = node?.range?.[0];
  return offset === undefined ? error : { ...error, ...lineCounter.linePos(offset) };
}

/**
 * The YAML node an issue is about, found by walking its key path through the document.
 * When the path goes missing part-way (a required key that is absent), this is the key that owns the
 * deepest part that exists, so "pools.api.servers: expected ..., got nothing" points at the "api:" line.
 */
function locate(doc: Document, issue: SchemaIssue): Node | null {
  let node: unknown = doc.contents;
  let nearest = doc.contents as Node | null;
  for (const [i, segment] of issue.path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (pair === undefined) return nearest;
      const key = pair.key as Node;
      const isLast = i === issue.path.length - 1;
      // An empty value (`weight:`) has no useful position of its own; its key does.
      const valueIsEmpty = pair.value === null || (isScalar(pair.value) && pair.value.value === null);
      if (isLast && (issue.at === "key" || valueIsEmpty)) return key;
      nearest = key;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number" && node.items[segment] !== undefined) {
      node = node.items[segment];
      nearest = node as Node;
    } else {
      return nearest;
    }
  }
  return (node as Node | null) ?? nearest;
}
