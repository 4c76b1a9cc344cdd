// The `access_log` key, as nginx's `access_log path format;`: on a listener (http, tcp or udp) or
// at the top level as the default for every listener that does not say. `off` (the default) or
// a mapping with the file (or `stdout`), the format and how often buffered lines are written.
import { type Checker, choice, duration, isMapping, type Mapping, type PathSegment, string, valueOf } from "../config/checker.ts";

export const ACCESS_LOG_FORMATS = ["combined", "json"] as const;
export type AccessLogFormat = typeof ACCESS_LOG_FORMATS[number];

export interface AccessLogConfig {
  /** A file path, or "stdout". */
  path: string;
  format: AccessLogFormat;
  /** Longest a line waits in the buffer before it is written (nginx `flush=`). */
  flushMs: number;
}

const KEYS = ["path", "format", "flush"] as const;
const WHAT = "off, a file path, stdout, or a mapping with path and format (combined or json)";

/** Reads an `access_log` value: null for `off` (or `false`), undefined after an error. */
export function readAccessLog(c: Checker, value: unknown, path: PathSegment[]): AccessLogConfig | null | undefined {
  if (value === "off" || value === false) return null;
  // nginx's `access_log path;`: a path (or stdout) alone, in the combined format.
  if (typeof value === "string") return readAccessLog(c, { path: value }, path);
  const m = isMapping(value) ? value : undefined;
  if (m === undefined) return c.expected(path, WHAT, value);
  c.checkKeys(m, path, KEYS);
  const file = c.required(m, path, "path", string("a file path or stdout"));
  if (file !== undefined && file !== "stdout" && !file.startsWith("/")) {
    c.fail([...path, "path"], `expected an absolute file path or stdout, got ${JSON.stringify(file)}`);
    return undefined;
  }
  const format = c.optional(m, path, "format", choice(ACCESS_LOG_FORMATS), "combined");
  const flushMs = c.optional(m, path, "flush", duration({ zeroAllowed: false }), 1000);
  return file === undefined ? undefined : { path: file, format, flushMs };
}

/** A listener's `access_log`, as a field to spread into its config: none when the key is absent
 * (the top-level default applies then, src/control/schema.ts), so configs without it read as
 * before. */
export function readListenerAccessLog(c: Checker, m: Mapping, p: PathSegment[]): { accessLog?: AccessLogConfig | null } {
  if (valueOf(m, "access_log") === undefined) return {};
  const accessLog = readAccessLog(c, m.access_log, [...p, "access_log"]);
  return accessLog === undefined ? {} : { accessLog };
}
