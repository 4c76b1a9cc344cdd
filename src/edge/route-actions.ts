// What a route does when it does not forward to a pool (nginx `return`): `redirect` (a Location
// built from a template, or the same URL on another scheme: HTTP -> HTTPS) or `respond` (a fixed
// status, headers and body). A route has exactly one of pool, redirect and respond. The answers
// are built here as HTTP/1.1 bytes; src/edge/local-answer.ts writes them for HTTP/1.1 and HTTP/2.
import { type Checker, choice, integer, type Mapping, type PathSegment, type Read, reference, valueOf } from "../config/checker.ts";
import type { RequestHead } from "../http1/request-head.ts";

export interface RedirectAction {
  kind: "redirect";
  status: 301 | 302 | 303 | 307 | 308;
  /** The Location template, or null for a scheme redirect (same host and request URI). */
  to: TemplatePart[] | null;
  scheme: "http" | "https" | null;
  port: number | null;
}
export interface RespondAction {
  kind: "respond";
  status: number;
  /** Names lowercased. */
  headers: [string, string][];
  body: string;
}
export type RouteAction = RedirectAction | RespondAction;

/** A literal, or a request variable. */
export type TemplatePart = string | { variable: TemplateVariable };
const VARIABLES = ["scheme", "host", "request_uri", "uri", "args"] as const;
type TemplateVariable = typeof VARIABLES[number];

const TARGET_KEYS = ["pool", "redirect", "respond"] as const;
const REDIRECT_KEYS = ["to", "scheme", "port", "status"] as const;
const RESPOND_KEYS = ["status", "headers", "body"] as const;
const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;
/** Framing is Fulcrum's to write. */
const FRAMING_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"]);

/** Reads a "$name" / "${name}" template; unknown variables are config errors. */
function template(c: Checker, text: string, path: PathSegment[]): TemplatePart[] | undefined {
  const parts: TemplatePart[] = [];
  const re = /\$(?:\{([a-z_]+)\}|([a-z_]+))/g;
  let last = 0, bad = false;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const name = m[1] ?? m[2];
    if (!(VARIABLES as readonly string[]).includes(name)) {
      c.fail(path, `unknown variable $${name} (known: ${VARIABLES.map((v) => `$${v}`).join(", ")})`);
      bad = true;
    }
    if (m.index > last) parts.push(text.slice(last, m.index));
    parts.push({ variable: name as TemplateVariable });
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return bad ? undefined : parts;
}

const redirect: Read<RedirectAction> = (c, value, p) => {
  const m = c.mapping(value, p, "a mapping with to or scheme (and status)");
  if (m === undefined) return undefined;
  c.checkKeys(m, p, REDIRECT_KEYS);
  const hasTo = valueOf(m, "to") !== undefined, hasScheme = valueOf(m, "scheme") !== undefined;
  if (hasTo === hasScheme) {
    c.fail(p, hasTo ? "expected to or scheme, not both" : "expected to (a URL) or scheme (http or https)");
    return undefined;
  }
  let to: TemplatePart[] | null = null;
  if (hasTo) {
    const text = valueOf(m, "to");
    // Visible ASCII only: it becomes a Location header (non-ASCII is percent-encoded in a URL).
    if (typeof text !== "string" || !/^(https?:\/\/[\x21-\x7e]+|\/[\x21-\x7e]*|\$[\x21-\x7e]*)$/.test(text)) {
      return c.expected([...p, "to"], `a URL ("https://example.com/new"), a path ("/new") or a template ("https://$host$request_uri") of visible ASCII`, text);
    }
    to = template(c, text, [...p, "to"]) ?? null;
    if (to === null) return undefined;
  }
  if (hasTo && valueOf(m, "port") !== undefined) c.fail([...p, "port"], "port goes with scheme (a to URL names its own)", "key");
  return {
    kind: "redirect",
    status: c.optional(m, p, "status", statusOf(REDIRECT_STATUSES), 301),
    to,
    scheme: hasScheme ? c.required(m, p, "scheme", choice(["http", "https"] as const)) ?? null : null,
    port: c.optional(m, p, "port", integer(1, 65535), null),
  };
};

function statusOf<T extends number>(allowed: readonly T[]): Read<T> {
  return (c, value, path) =>
    (allowed as readonly unknown[]).includes(value) ? value as T : c.expected(path, `one of ${allowed.join(", ")}`, value);
}

function respond(headerMap: Read<[string, string][]>): Read<RespondAction> {
  return (c, value, p) => {
    const m = c.mapping(value, p, "a mapping with status (and headers, body)");
    if (m === undefined) return undefined;
    c.checkKeys(m, p, RESPOND_KEYS);
    const status = c.required(m, p, "status", integer(200, 599));
    const headers = c.optional(m, p, "headers", headerMap, []).map(([n, v]): [string, string] => [n.toLowerCase(), v]);
    for (const [n] of headers) if (FRAMING_HEADERS.has(n)) c.fail([...p, "headers", n], `${n} is written by Fulcrum from the body`, "key");
    const body = valueOf(m, "body");
    if (body !== undefined && typeof body !== "string") c.expected([...p, "body"], "a string", body);
    const text = typeof body === "string" ? body : "";
    if (text !== "" && (status === 204 || status === 304)) c.fail([...p, "body"], `a ${status} response has no body`);
    if (status === undefined) return undefined;
    if (text !== "" && !headers.some(([n]) => n === "content-type")) headers.push(["content-type", "text/plain; charset=utf-8"]);
    return { kind: "respond", status, headers, body: text };
  };
}

/** A route's target: exactly one of pool, redirect and respond. */
export function readRouteTarget(
  c: Checker, m: Mapping, p: PathSegment[], poolNames: readonly string[], headerMap: Read<[string, string][]>,
): { pool: string; action: RouteAction | null } {
  const present = TARGET_KEYS.filter((k) => valueOf(m, k) !== undefined);
  // Without any, the pool is what is missing (most routes have one).
  if (present.length === 0) return { pool: c.required(m, p, "pool", reference("pool", poolNames)) ?? "", action: null };
  if (present.length !== 1) {
    c.fail([...p, present[1]], `expected exactly one of pool, redirect and respond per route, got ${present.join(" and ")}`, "key");
    return { pool: "", action: null };
  }
  if (present[0] === "pool") return { pool: c.required(m, p, "pool", reference("pool", poolNames)) ?? "", action: null };
  const action = present[0] === "redirect" ? c.required(m, p, "redirect", redirect) : c.required(m, p, "respond", respond(headerMap));
  return { pool: "", action: action ?? null };
}

export const STATUS_REASONS: Record<number, string> = {
  200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently", 302: "Found",
  303: "See Other", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
  401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 410: "Gone", 429: "Too Many Requests",
  500: "Internal Server Error", 503: "Service Unavailable",
};

/** An answer Fulcrum gives itself: a route's action, or an access rule's refusal. */
export interface LocalAnswer {
  status: number;
  headers: [string, string][];
  body: string;
  /** What it counts as in the listener's errors (refusals), or null (a route's own answer). */
  error: "denied" | "unauthorized" | "auth_busy" | null;
}

function expand(parts: TemplatePart[], req: RequestHead, proto: string): string {
  let out = "";
  for (const part of parts) {
    if (typeof part === "string") { out += part; continue; }
    switch (part.variable) {
      case "scheme": out += proto; break;
      case "host": out += req.host; break;
      case "request_uri": out += req.target; break;
      case "uri": out += req.path; break;
      case "args": { const q = req.target.indexOf("?"); out += q < 0 ? "" : req.target.slice(q + 1); break; }
    }
  }
  return out;
}

/** The answer of a redirect or respond route to this request. `fallbackHost`: for a request
 * without Host (HTTP/1.0), the address it came to. */
export function actionAnswer(action: RouteAction, req: RequestHead, proto: "http" | "https", fallbackHost: string): LocalAnswer {
  if (action.kind === "respond") return { status: action.status, headers: action.headers, body: action.body, error: null };
  let location: string;
  if (action.to) location = expand(action.to, req, proto);
  else {
    const host = req.host || (fallbackHost.includes(":") ? `[${fallbackHost}]` : fallbackHost);
    location = `${action.scheme}://${host}${action.port === null ? "" : `:${action.port}`}${req.target}`;
  }
  return { status: action.status, headers: [["location", location]], body: "", error: null };
}
