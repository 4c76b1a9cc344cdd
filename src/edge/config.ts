// The edge's sections: `listeners` and `routes` (and, in src/edge/options.ts, the listener
// options and a pool's HTTP keys). Read by the schema in src/control/schema.ts.
import {
  type Checker, choice, FirstSeen, isMapping, type Mapping, oneOrMany, type PathSegment, type Read, reference, regExp,
  string, valueOf, describeValue,
} from "../config/checker.ts";
import { DEFAULT_PRIORITY, PRIORITIES } from "../balancer/pool.ts";
import { formatHostPort, type HostPort, hostPort } from "../config/address.ts";
import { LISTENER_OPTION_KEYS, type ListenerOptions, readListenerOptions } from "./options.ts";
import { CLIENT_LIMIT_KEYS, type ClientLimits, NO_CLIENT_LIMITS, readClientLimits } from "./limits/config.ts";
import { ACCESS_KEYS, type AccessRules, readAccessRules } from "./access/acl.ts";
import { type BasicAuthConfig, readRouteAuth } from "./access/basic-auth.ts";
import { readRouteTarget, type RouteAction } from "./route-actions.ts";

/** Header names lowercased. */
export interface HeaderRewrite {
  set: [string, string][];
  add: [string, string][];
  remove: string[];
}
export type PathMatch = { kind: "prefix" | "exact"; value: string } | { kind: "regex"; value: string; re: RegExp };
export interface HeaderMatch {
  name: string; // lowercase
  exact?: string;
  re?: RegExp;
}
export interface ListenerConfig extends ListenerOptions {
  name: string;
  bind: HostPort;
  protocol: "http";
  /** allow / deny by CIDR (src/edge/access/acl.ts), null: everyone. */
  access: AccessRules | null;
  /** Set in a worker process (src/control/workers/): the port is shared with the other workers
   * (SO_REUSEPORT). Never read from the file. */
  reusePort?: boolean;
}
/** What the edge serves: the `listeners` and `routes` sections. */
export interface EdgeConfig {
  listeners: ListenerConfig[];
  routes: RouteConfig[];
}

export interface RouteConfig {
  name: string; // default "route<i>"
  listeners: string[] | null;
  hosts: string[] | null;
  path: PathMatch | null;
  methods: string[] | null;
  headers: HeaderMatch[];
  /** The pool, or "" for a route with an action. */
  pool: string;
  /** redirect or respond instead of a pool (src/edge/route-actions.ts). */
  action: RouteAction | null;
  access: AccessRules | null;
  auth: BasicAuthConfig | null;
  requestHeaders: HeaderRewrite;
  responseHeaders: HeaderRewrite;
  /** 0..9, higher first in a pool's max_conns queue (HAProxy set-priority-class); absent: 5. */
  priority?: number;
  /** Per-client `rate_limit` and `conn_limit` (src/edge/limits/). */
  clientLimits: ClientLimits;
}

const LISTENER_KEYS = ["name", "bind", "protocol", ...LISTENER_OPTION_KEYS, ...ACCESS_KEYS] as const;
const ROUTE_KEYS = [
  "name", "listeners", "host", "path_prefix", "path", "path_regex", "method", "headers", "pool",
  "request_headers", "response_headers", "priority", ...CLIENT_LIMIT_KEYS, "redirect", "respond", "auth", ...ACCESS_KEYS,
] as const;
const HEADER_REWRITE_KEYS = ["set", "add", "remove"] as const;
const PATH_KEYS = ["path_prefix", "path", "path_regex"] as const;
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 9110 token: method and header-name characters
const ROUTE_HOST = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$|^\[[0-9a-f:.]+\]$/;
const HEADER_VALUE = /^[^\r\n\0]*$/; // a CR or LF would split the header (response splitting)

// --------------------------------------------------------------------------------------- listeners

/** Reads a listener of another protocol (tcp and udp: src/l4/config.ts) from its mapping, with
 * its own keys; name and bind are read and checked for uniqueness here, across all listeners. */
export type ListenerReader = (c: Checker, m: Mapping, p: PathSegment[], base: { name: string; bind: HostPort }) => void;

/** The http listeners; a listener of a protocol in `others` goes to that protocol's reader. */
export function readListeners(c: Checker, value: unknown, others: Record<string, ListenerReader> = {}): ListenerConfig[] {
  const path = ["listeners"];
  const listeners: ListenerConfig[] = [];
  const binds = new FirstSeen();
  const names = new FirstSeen();
  c.list(value, path, "a non-empty list of listeners").forEach((item, i) => {
    const p = [...path, i];
    const m = c.mapping(item, p, "a listener mapping with bind");
    if (m === undefined) return;
    const protocol = c.optional(m, p, "protocol", choice(["http", ...Object.keys(others)]), "http");
    const other = protocol === "http" ? undefined : others[protocol];
    if (!other) c.checkKeys(m, p, LISTENER_KEYS);
    const bind = c.required(m, p, "bind", hostPort(false));
    const explicitName = c.optional(m, p, "name", string("a non-empty string"), undefined);
    if (bind === undefined) return;

    const bindText = formatHostPort(bind);
    const bindTwice = binds.check(protocol === "udp" ? `udp ${bindText}` : bindText, i); // UDP ports are their own
    if (bindTwice !== undefined) {
      const message = `expected a bind address no other listener uses, got ${bindText} again (listeners[${bindTwice}])`;
      c.fail([...p, "bind"], message);
    }
    // The default name is the bind as written; it can only repeat when the bind does, reported just above.
    const name = explicitName ?? String(m.bind);
    const nameTwice = names.check(name, i);
    if (nameTwice !== undefined && explicitName !== undefined) {
      const message = `expected a unique listener name, got ${JSON.stringify(name)} again (listeners[${nameTwice}])`;
      c.fail([...p, "name"], message);
    }
    if (other) other(c, m, p, { name, bind });
    else listeners.push({ name, bind, protocol: "http", ...readListenerOptions(c, m, p), access: readAccessRules(c, m, p) });
  });
  return listeners;
}

export function declaredListenerNames(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isMapping).map((m) => m.name ?? m.bind).filter((name) => typeof name === "string");
}

// ------------------------------------------------------------------------------------------ routes

export interface KnownNames {
  listenerNames: string[];
  poolNames: string[];
}

export function readRoutes(c: Checker, value: unknown, known: KnownNames): RouteConfig[] {
  const path = ["routes"];
  if (value === undefined || (Array.isArray(value) && value.length === 0)) {
    // With a single pool there is nothing to choose: everything goes there.
    if (known.poolNames.length === 1) return [catchAllRoute(known.poolNames[0])];
    if (known.poolNames.length > 1) {
      const pools = known.poolNames.map((name) => JSON.stringify(name)).join(", ");
      const got = describeValue(value);
      c.fail(path, `a route is required to choose among pools ${pools}; expected a list of routes, got ${got}`);
    }
    return [];
  }
  const routes: RouteConfig[] = [];
  const names = new FirstSeen();
  c.list(value, path, "a list of routes").forEach((item, i) => {
    const route = readRoute(c, item, i, known);
    if (route === undefined) return;
    const twice = names.check(route.name, i);
    if (twice !== undefined) {
      const message = `expected a unique route name, got ${JSON.stringify(route.name)} again (routes[${twice}])`;
      c.fail([...path, i, "name"], message);
    }
    routes.push(route);
  });
  return routes;
}

function readRoute(c: Checker, value: unknown, index: number, known: KnownNames): RouteConfig | undefined {
  const p = ["routes", index];
  const m = c.mapping(value, p, "a route mapping with pool");
  if (m === undefined) return undefined;
  c.checkKeys(m, p, ROUTE_KEYS);
  const listenerNames = oneOrMany("listener names", reference("listener", known.listenerNames));
  const priority = c.optional(m, p, "priority", routePriority, null);
  const auth = c.optional(m, p, "auth", readRouteAuth, null);
  const requestHeaders = c.optional(m, p, "request_headers", headerRewrite, emptyRewrite());
  // The client's credentials are for Fulcrum: never passed on to the pool.
  if (auth && !requestHeaders.remove.includes("authorization")) requestHeaders.remove.push("authorization");
  return {
    ...(priority !== null ? { priority } : {}),
    name: c.optional(m, p, "name", string("a non-empty string"), `route${index}`),
    listeners: c.optional(m, p, "listeners", listenerNames, null),
    hosts: c.optional(m, p, "host", oneOrMany("host names", routeHost), null),
    path: readPathMatch(c, m, p),
    methods: c.optional(m, p, "method", oneOrMany("HTTP methods", method), null),
    headers: c.optional(m, p, "headers", headerMatches, []),
    ...readRouteTarget(c, m, p, known.poolNames, headerMap("a mapping of header name to value")),
    access: readAccessRules(c, m, p),
    auth,
    requestHeaders,
    responseHeaders: c.optional(m, p, "response_headers", headerRewrite, emptyRewrite()),
    clientLimits: readClientLimits(c, m, p),
  };
}

const PRIORITY_NAMES: Record<string, number> = { low: 0, normal: DEFAULT_PRIORITY, high: PRIORITIES - 1 };

const routePriority: Read<number> = (c, value, path) => {
  if (typeof value === "string" && value in PRIORITY_NAMES) return PRIORITY_NAMES[value];
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value < PRIORITIES) return value;
  return c.expected(path, "a priority 0..9 (higher first) or one of high, normal, low", value);
};

function catchAllRoute(pool: string): RouteConfig {
  const route = { name: "route0", listeners: null, hosts: null, path: null, methods: null, headers: [], action: null, access: null, auth: null };
  return { ...route, pool, requestHeaders: emptyRewrite(), responseHeaders: emptyRewrite(), clientLimits: NO_CLIENT_LIMITS };
}

/** At most one of path_prefix / path / path_regex; prefix and exact paths must start with "/". */
function readPathMatch(c: Checker, m: Mapping, p: PathSegment[]): PathMatch | null {
  // In file order, so the conflict is reported at the second one the operator wrote.
  const present = Object.keys(m).filter((key) => isPathKey(key) && valueOf(m, key) !== undefined);
  if (present.length > 1) {
    const got = `${present.slice(0, -1).join(", ")} and ${present[present.length - 1]}`;
    c.fail([...p, present[1]], `expected at most one of ${PATH_KEYS.join(", ")} per route, got ${got}`, "key");
  }
  const key = present[0];
  if (key === undefined) return null;
  const read = key === "path_regex" ? pathRegex : pathOf(key === "path" ? "exact" : "prefix");
  return c.required(m, p, key, read) ?? null;
}

function isPathKey(key: string): key is typeof PATH_KEYS[number] {
  return (PATH_KEYS as readonly string[]).includes(key);
}

function pathOf(kind: "prefix" | "exact"): Read<PathMatch> {
  return (c, value, path) =>
    typeof value === "string" && value.startsWith("/")
      ? { kind, value }
      : c.expected(path, `a path starting with "/"`, value);
}

const pathRegex: Read<PathMatch> = (c, value, path) => {
  if (typeof value !== "string" || value === "") return c.expected(path, "a regular expression", value);
  const re = regExp(c, value, path);
  return re && { kind: "regex", value, re };
};

const routeHost: Read<string> = (c, value, path) => {
  const host = typeof value === "string" ? value.toLowerCase() : "";
  if (ROUTE_HOST.test(host)) return host;
  return c.expected(path, `a host name like "api.example.com" or "*.example.com"`, value);
};

const method: Read<string> = (c, value, path) =>
  typeof value === "string" && HTTP_TOKEN.test(value)
    ? value.toUpperCase()
    : c.expected(path, "an HTTP method like GET", value);

/** Request header conditions: an exact value, or "~REGEX" for a regular-expression match. */
const headerMatches: Read<HeaderMatch[]> = (c, value, path) =>
  headerMap("a mapping of header name to value or ~regex")(c, value, path)?.flatMap(([name, text]): HeaderMatch[] => {
    if (!text.startsWith("~")) return [{ name: name.toLowerCase(), exact: text }];
    const re = regExp(c, text.slice(1), [...path, name]);
    return re === undefined ? [] : [{ name: name.toLowerCase(), re }];
  });

const headerRewrite: Read<HeaderRewrite> = (c, value, path) => {
  const m = c.mapping(value, path, "a mapping with set, add and/or remove");
  if (m === undefined) return undefined;
  c.checkKeys(m, path, HEADER_REWRITE_KEYS);
  const values = headerMap("a mapping of header name to value");
  const lowercaseNames = (entries: [string, string][]) =>
    entries.map(([name, text]): [string, string] => [name.toLowerCase(), text]);
  return {
    set: lowercaseNames(c.optional(m, path, "set", values, [])),
    add: lowercaseNames(c.optional(m, path, "add", values, [])),
    remove: c.optional(m, path, "remove", oneOrMany("header names", headerName), []),
  };
};

function emptyRewrite(): HeaderRewrite {
  return { set: [], add: [], remove: [] };
}

/** Header name → value pairs, names as written. Values must be strings, so `1.10` is never read as 1.1. */
function headerMap(what: string): Read<[string, string][]> {
  return (c, value, path) => {
    const m = c.mapping(value, path, what);
    if (m === undefined) return undefined;
    const entries: [string, string][] = [];
    for (const [name, text] of Object.entries(m)) {
      const p = [...path, name];
      if (!HTTP_TOKEN.test(name)) {
        c.fail(p, `expected a header name of HTTP token characters, got ${JSON.stringify(name)}`, "key");
      } else if (typeof text !== "string") {
        c.expected(p, "a header value string (quote numbers and booleans)", text);
      } else if (!HEADER_VALUE.test(text)) {
        c.expected(p, "a header value without line breaks", text);
      } else {
        entries.push([name, text]);
      }
    }
    return entries;
  };
}

const headerName: Read<string> = (c, value, path) =>
  typeof value === "string" && HTTP_TOKEN.test(value)
    ? value.toLowerCase()
    : c.expected(path, "a header name of HTTP token characters", value);
