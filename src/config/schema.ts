// Validates the plain value parsed from YAML into a normalized Config.
// Every problem is collected (never stop at the first) and names its key path, what was expected and what
// was found, so an operator can fix a whole file in one pass.

import { KEYED_DEFAULT, type SchedulerName, SCHEDULERS } from "../core/scheduler-names.ts";
import {
  boolean, Checker, choice, describeValue, duration, FirstSeen, integer, isMapping, type Mapping, oneOrMany,
  type PathSegment, type Read, reference, regExp, type SchemaIssue, string, suggestion, valueOf,
} from "./checker.ts";
import { type PoolHealthConfig, POOL_HEALTH_KEYS, readPoolHealth } from "../health/config.ts";
import {
  LISTENER_OPTION_KEYS, type ListenerOptions, POOL_TRAFFIC_KEYS, type PoolTraffic, readListenerOptions, readPoolTraffic,
} from "./edge-options.ts";
import { readVrrp, type VrrpConfig } from "../vrrp/config.ts";

export { describeValue, type PathSegment, type SchemaIssue };

/** Host without brackets, even for IPv6. */
export interface HostPort {
  host: string;
  port: number;
}
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
}
export interface RouteConfig {
  name: string; // default "route<i>"
  listeners: string[] | null;
  hosts: string[] | null;
  path: PathMatch | null;
  methods: string[] | null;
  headers: HeaderMatch[];
  pool: string;
  requestHeaders: HeaderRewrite;
  responseHeaders: HeaderRewrite;
}
/** Header names lowercased; cookie and query-argument names kept as written. */
export type HashKey = { kind: "source" | "uri" | "host" } | { kind: "header" | "cookie" | "arg"; name: string };
export interface ServerConfig {
  address: HostPort;
  weight: number;
  backup: boolean;
  down: boolean;
  maxFails: number;
  failTimeoutMs: number;
  maxConns: number;
}
export interface PoolConfig extends PoolTraffic {
  name: string;
  scheduler: SchedulerName;
  hashKey: HashKey | null;
  connectTimeoutMs: number;
  readTimeoutMs: number;
  servers: ServerConfig[];
  /** Health checks and what the pool does with their verdicts (src/health/config.ts). */
  health: PoolHealthConfig;
}
export interface Config {
  hashSeed: number | null;
  listeners: ListenerConfig[];
  routes: RouteConfig[];
  pools: PoolConfig[];
  /** The `vrrp:` section (src/vrrp/config.ts), null when absent. */
  vrrp: VrrpConfig | null;
}

export type ValidationResult = { ok: true; config: Config } | { ok: false; issues: SchemaIssue[] };

// Allowed keys, one table per section: adding a setting starts with adding its key here.
const KEYS = {
  root: ["hash_seed", "listeners", "routes", "pools", "vrrp"],
  listener: ["name", "bind", "protocol", ...LISTENER_OPTION_KEYS],
  route: [
    "name",
    "listeners",
    "host",
    "path_prefix",
    "path",
    "path_regex",
    "method",
    "headers",
    "pool",
    "request_headers",
    "response_headers",
  ],
  headerRewrite: ["set", "add", "remove"],
  pool: ["scheduler", "hash_key", "connect_timeout", "read_timeout", "servers", ...POOL_HEALTH_KEYS, ...POOL_TRAFFIC_KEYS],
  server: ["address", "weight", "backup", "down", "max_fails", "fail_timeout", "max_conns"],
} as const;

const PROTOCOLS = ["http"] as const;
const PATH_KEYS = ["path_prefix", "path", "path_regex"] as const;
const HASH_KEY_FORMS = "one of source, uri, host, header:NAME, cookie:NAME, arg:NAME";
const POOL_NAME = /^[A-Za-z0-9_.-]+$/;
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 9110 token: method and header-name characters
const HOST_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const IPV6_HOST = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?$/;
const ROUTE_HOST = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$|^\[[0-9a-f:.]+\]$/;
const HEADER_VALUE = /^[^\r\n\0]*$/; // a CR or LF would split the header (response splitting)

const BIND_FORMS = `"host:port", "[ipv6]:port" or ":port" with port 1..65535`;
const ADDRESS_FORMS = `"host:port" or "[ipv6]:port" with port 1..65535`;
const ROOT_EXPECTED = "expected a mapping with listeners and pools";

// ------------------------------------------------------------------------------------------- entry

export function validateConfig(raw: unknown): ValidationResult {
  const c = new Checker();
  if (!isMapping(raw)) {
    c.fail([], raw == null ? ROOT_EXPECTED : `${ROOT_EXPECTED}, got ${describeValue(raw)}`);
    return { ok: false, issues: c.issues };
  }
  c.checkKeys(raw, [], KEYS.root);
  const hashSeed = c.optional(raw, [], "hash_seed", integer(0, 2 ** 32 - 1), null);
  const vrrp = readVrrp(c, valueOf(raw, "vrrp"), declaredPoolNames(raw.pools));
  // A node that only holds virtual addresses (VRRP) needs no listeners or pools.
  const vrrpOnly = valueOf(raw, "vrrp") !== undefined && valueOf(raw, "listeners") === undefined && valueOf(raw, "pools") === undefined;
  const listeners = vrrpOnly ? [] : readListeners(c, valueOf(raw, "listeners"));
  const pools = vrrpOnly ? [] : readPools(c, valueOf(raw, "pools"));
  // Names come from the raw input so one broken listener or pool does not also fail every route using it.
  const known = { listenerNames: declaredListenerNames(raw.listeners), poolNames: declaredPoolNames(raw.pools) };
  const routes = readRoutes(c, valueOf(raw, "routes"), known);
  if (c.issues.length > 0) return { ok: false, issues: c.issues };
  return { ok: true, config: { hashSeed, listeners, routes, pools, vrrp } };
}

/** `pools.api.servers[1].weight`; keys that would be ambiguous with dots are quoted: `pools["v1.api"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return "(root)";
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) text += text === "" ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** Parses "host:port", "[v6]:port" and (when no host is required) ":port", which binds 0.0.0.0. */
export function parseHostPort(text: string, hostRequired: boolean): HostPort | null {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (match === null) return null;
  const [, bracketed, plain, portText] = match;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  if (bracketed !== undefined) return IPV6_HOST.test(bracketed) ? { host: bracketed, port } : null;
  if (plain === "") return hostRequired ? null : { host: "0.0.0.0", port };
  return HOST_NAME.test(plain) ? { host: plain, port } : null;
}


// --------------------------------------------------------------------------------------- listeners

function readListeners(c: Checker, value: unknown): ListenerConfig[] {
  const path = ["listeners"];
  const listeners: ListenerConfig[] = [];
  const binds = new FirstSeen();
  const names = new FirstSeen();
  c.list(value, path, "a non-empty list of listeners").forEach((item, i) => {
    const p = [...path, i];
    const m = c.mapping(item, p, "a listener mapping with bind");
    if (m === undefined) return;
    c.checkKeys(m, p, KEYS.listener);
    const bind = c.required(m, p, "bind", hostPort(false));
    const explicitName = c.optional(m, p, "name", string("a non-empty string"), undefined);
    const protocol = c.optional(m, p, "protocol", choice(PROTOCOLS), "http");
    if (bind === undefined) return;

    const bindText = formatHostPort(bind);
    const bindTwice = binds.check(bindText, i);
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
    listeners.push({ name, bind, protocol, ...readListenerOptions(c, m, p) });
  });
  return listeners;
}

function declaredListenerNames(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isMapping).map((m) => m.name ?? m.bind).filter((name) => typeof name === "string");
}

// ------------------------------------------------------------------------------------------ routes

interface KnownNames {
  listenerNames: string[];
  poolNames: string[];
}

function readRoutes(c: Checker, value: unknown, known: KnownNames): RouteConfig[] {
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
  c.checkKeys(m, p, KEYS.route);
  const listenerNames = oneOrMany("listener names", reference("listener", known.listenerNames));
  return {
    name: c.optional(m, p, "name", string("a non-empty string"), `route${index}`),
    listeners: c.optional(m, p, "listeners", listenerNames, null),
    hosts: c.optional(m, p, "host", oneOrMany("host names", routeHost), null),
    path: readPathMatch(c, m, p),
    methods: c.optional(m, p, "method", oneOrMany("HTTP methods", method), null),
    headers: c.optional(m, p, "headers", headerMatches, []),
    pool: c.required(m, p, "pool", reference("pool", known.poolNames)) ?? "",
    requestHeaders: c.optional(m, p, "request_headers", headerRewrite, emptyRewrite()),
    responseHeaders: c.optional(m, p, "response_headers", headerRewrite, emptyRewrite()),
  };
}

function catchAllRoute(pool: string): RouteConfig {
  const route = { name: "route0", listeners: null, hosts: null, path: null, methods: null, headers: [] };
  return { ...route, pool, requestHeaders: emptyRewrite(), responseHeaders: emptyRewrite() };
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
  c.checkKeys(m, path, KEYS.headerRewrite);
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

// ------------------------------------------------------------------------------------------- pools

function readPools(c: Checker, value: unknown): PoolConfig[] {
  const path = ["pools"];
  const what = "a non-empty mapping of pool name to pool";
  const m = c.mapping(value, path, what);
  if (m === undefined) return [];
  if (Object.keys(m).length === 0) c.expected(path, what, m);
  const pools: PoolConfig[] = [];
  for (const [name, poolValue] of Object.entries(m)) {
    if (!POOL_NAME.test(name)) {
      const message = `expected a pool name of letters, digits, "_", "." or "-", got ${JSON.stringify(name)}`;
      c.fail([...path, name], message, "key");
    }
    const pool = readPool(c, poolValue, [...path, name], name);
    if (pool !== undefined) pools.push(pool);
  }
  return pools;
}

function declaredPoolNames(value: unknown): string[] {
  return isMapping(value) ? Object.keys(value) : [];
}

function readPool(c: Checker, value: unknown, p: PathSegment[], name: string): PoolConfig | undefined {
  const m = c.mapping(value, p, "a pool mapping with servers");
  if (m === undefined) return undefined;
  c.checkKeys(m, p, KEYS.pool);
  const scheduler = c.optional(m, p, "scheduler", choice(SCHEDULERS), "wrr");
  const defaultKey = KEYED_DEFAULT[scheduler];
  return {
    name,
    scheduler,
    hashKey: c.optional(m, p, "hash_key", hashKey, defaultKey ? { kind: defaultKey } : null),
    connectTimeoutMs: c.optional(m, p, "connect_timeout", duration({ zeroAllowed: false }), 5_000),
    readTimeoutMs: c.optional(m, p, "read_timeout", duration({ zeroAllowed: false }), 60_000),
    servers: readServers(c, valueOf(m, "servers"), [...p, "servers"]),
    ...readPoolTraffic(c, m, p),
    health: readPoolHealth(c, m, p, Array.isArray(m.servers) ? m.servers.length : 0, hostPort(true)),
  };
}

const hashKey: Read<HashKey> = (c, value, path) => {
  if (value === "source" || value === "uri" || value === "host") return { kind: value };
  const match = typeof value === "string" ? /^(header|cookie|arg):(.+)$/.exec(value) : null;
  if (match === null) {
    const hint = typeof value === "string" ? suggestion(value, ["source", "uri", "host"]) : "";
    return c.expected(path, HASH_KEY_FORMS, value, hint);
  }
  const kind = match[1] as "header" | "cookie" | "arg";
  const name = match[2];
  const valid = kind === "header" ? HTTP_TOKEN.test(name) : /^[^\s;=&]+$/.test(name);
  if (!valid) return c.expected(path, `${kind}:NAME with a valid ${kind} name`, value);
  // Header names are case-insensitive, so they are lowercased; cookie and argument names are not.
  return { kind, name: kind === "header" ? name.toLowerCase() : name };
};

function readServers(c: Checker, value: unknown, path: PathSegment[]): ServerConfig[] {
  const servers: ServerConfig[] = [];
  const addresses = new FirstSeen();
  c.list(value, path, "a non-empty list of servers").forEach((item, i) => {
    const p = [...path, i];
    const server = readServer(c, item, p);
    if (server === undefined) return;
    const address = formatHostPort(server.address).toLowerCase();
    const twice = addresses.check(address, i);
    if (twice !== undefined) {
      const addressPath = typeof item === "string" ? p : [...p, "address"];
      c.fail(addressPath, `expected each server once per pool, got ${address} again (servers[${twice}])`);
    }
    servers.push(server);
  });
  return servers;
}

/** A server is a mapping, or just its address string with every setting at its default. */
function readServer(c: Checker, value: unknown, p: PathSegment[]): ServerConfig | undefined {
  const defaults = { weight: 1, backup: false, down: false, maxFails: 1, failTimeoutMs: 10_000, maxConns: 0 };
  if (typeof value === "string") {
    const address = hostPort(true)(c, value, p);
    return address && { address, ...defaults };
  }
  const m = c.mapping(value, p, `a server mapping with address, or an address string like "10.0.0.1:80"`);
  if (m === undefined) return undefined;
  c.checkKeys(m, p, KEYS.server);
  const address = c.required(m, p, "address", hostPort(true));
  const settings = {
    weight: c.optional(m, p, "weight", integer(0, 256), defaults.weight),
    backup: c.optional(m, p, "backup", boolean, defaults.backup),
    down: c.optional(m, p, "down", boolean, defaults.down),
    maxFails: c.optional(m, p, "max_fails", integer(0, 1000), defaults.maxFails),
    failTimeoutMs: c.optional(m, p, "fail_timeout", duration({ zeroAllowed: true }), defaults.failTimeoutMs),
    maxConns: c.optional(m, p, "max_conns", integer(0, 1_000_000), defaults.maxConns),
  };
  return address && { address, ...settings };
}

// ------------------------------------------------------------------------------------ value readers
function hostPort(hostRequired: boolean): Read<HostPort> {
  const what = hostRequired ? ADDRESS_FORMS : BIND_FORMS;
  return (c, value, path) =>
    (typeof value === "string" ? parseHostPort(value, hostRequired) : null) ?? c.expected(path, what, value);
}
