// The balancer's part of a pool's config: its servers, scheduler and key, the sorry server, the
// max_conns queue, source persistence and the connect timeout. Protocol-neutral: the edge reads a
// pool's HTTP keys (src/edge/options.ts), health its checks (src/health/config.ts).
import { SCHEDULERS, schedulerInfo, type SchedulerName } from "../core/schedulers.ts";
import {
  boolean, type Checker, choice, duration, FirstSeen, integer, type Mapping, type PathSegment, type Read, suggestion, valueOf,
} from "../config/checker.ts";
import { formatHostPort, type HostPort, hostPort } from "../config/address.ts";

export interface ServerConfig {
  address: HostPort;
  weight: number;
  backup: boolean;
  down: boolean;
  maxFails: number;
  failTimeoutMs: number;
  maxConns: number;
}

/** What a keyed scheduler hashes. Header names lowercased; cookie and query-argument names kept as
 * written. `source` is the client address; the others are HTTP (the edge extracts them). */
export type HashKey = { kind: "source" | "uri" | "host" } | { kind: "header" | "cookie" | "arg"; name: string };

/** HAProxy's queue: requests wait here while every usable server is at its max_conns. */
export interface QueuePolicy {
  /** Sessions that may wait at once; 0: none wait, they are refused at once. */
  size: number;
  timeoutMs: number;
}

/** least_time's settings (NGINX Plus `least_time=header|last_byte`; Linkerd's decay). */
export interface LeastTimeConfig {
  /** What a response time runs to: the response head, or its last byte. */
  measure: "header" | "last_byte";
  /** The estimates' time constant: how fast a sample moves one and how fast an unheard one decays. */
  decayMs: number;
}

export interface BalancerPoolConfig {
  name: string;
  scheduler: SchedulerName;
  hashKey: HashKey | null;
  servers: ServerConfig[];
  /** keepalived's sorry server: where everything goes while the pool is below its quorum. */
  sorryServer: ServerConfig | null;
  queue: QueuePolicy;
  /** Source persistence (LVS persistence_timeout); 0 is off. */
  persistenceMs: number;
  connectTimeoutMs: number;
  /** Present with scheduler least_time only. */
  leastTime?: LeastTimeConfig;
}

/** Pool keys the balancer reads. */
export const BALANCER_POOL_KEYS = [
  "scheduler", "hash_key", "servers", "sorry_server", "queue", "persistence_timeout", "connect_timeout",
  "least_time", "least_time_decay",
] as const;
const SERVER_KEYS = ["address", "weight", "backup", "down", "max_fails", "fail_timeout", "max_conns"] as const;

const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HASH_KEY_FORMS = "one of source, uri, host, header:NAME, cookie:NAME, arg:NAME";
export const SERVER_DEFAULTS = { weight: 1, backup: false, down: false, maxFails: 1, failTimeoutMs: 10_000, maxConns: 0 };

/** `serversOptional`: the servers also come from elsewhere (discovery), so the list may be empty. */
export function readBalancerPool(c: Checker, m: Mapping, p: PathSegment[], name: string, serversOptional = false): BalancerPoolConfig {
  const scheduler = c.optional(m, p, "scheduler", choice(SCHEDULERS), "wrr");
  const keyedBy = schedulerInfo(scheduler).keyedBy;
  const listed = valueOf(m, "servers");
  const noneListed = listed === undefined || (Array.isArray(listed) && listed.length === 0);
  let queue: QueuePolicy = { size: 100, timeoutMs: 5_000 };
  if (m.queue !== undefined && m.queue !== null) {
    const qp = [...p, "queue"];
    const qm = c.mapping(m.queue, qp, "a mapping with size and timeout");
    if (qm) {
      c.checkKeys(qm, qp, ["size", "timeout"]);
      queue = { size: c.optional(qm, qp, "size", integer(0, 1_000_000), 100), timeoutMs: c.optional(qm, qp, "timeout", duration({ zeroAllowed: false }), 5_000) };
    }
  }
  const leastTime = readLeastTime(c, m, p, scheduler);
  return {
    name,
    scheduler,
    hashKey: c.optional(m, p, "hash_key", hashKey, keyedBy ? { kind: keyedBy } : null),
    servers: serversOptional && noneListed ? [] : readServers(c, listed, [...p, "servers"]),
    sorryServer: c.optional(m, p, "sorry_server", sorryServer, null),
    queue,
    persistenceMs: c.optional(m, p, "persistence_timeout", duration({ zeroAllowed: true }), 0),
    connectTimeoutMs: c.optional(m, p, "connect_timeout", duration({ zeroAllowed: false }), 5_000),
    ...(leastTime ? { leastTime } : {}),
  };
}

// `least_time` and `least_time_decay` mean something to the least_time scheduler only.
function readLeastTime(c: Checker, m: Mapping, p: PathSegment[], scheduler: SchedulerName): LeastTimeConfig | null {
  if (scheduler !== "least_time") {
    for (const key of ["least_time", "least_time_decay"]) {
      if (m[key] !== undefined) c.fail([...p, key], `${key} applies to scheduler least_time only (this pool's is ${scheduler})`, "key");
    }
    return null;
  }
  return {
    measure: c.optional(m, p, "least_time", choice(["header", "last_byte"] as const), "header"),
    decayMs: c.optional(m, p, "least_time_decay", duration({ zeroAllowed: false }), 10_000),
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

/** A server is a mapping, or just its address string with every setting at its default. Also the
 * reader for servers added at run time (admin API, discovery). */
export function readServer(c: Checker, value: unknown, p: PathSegment[]): ServerConfig | undefined {
  const defaults = SERVER_DEFAULTS;
  if (typeof value === "string") {
    const address = hostPort(true)(c, value, p);
    return address && { address, ...defaults };
  }
  const m = c.mapping(value, p, `a server mapping with address, or an address string like "10.0.0.1:80"`);
  if (m === undefined) return undefined;
  c.checkKeys(m, p, SERVER_KEYS);
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

const sorryServer: Read<ServerConfig> = (c, value, path) => {
  const address = hostPort(true)(c, value, path);
  // Never taken out by passive failures: it is where traffic goes when nothing else can take it.
  return address && { address, weight: 1, backup: false, down: false, maxFails: 0, failTimeoutMs: 0, maxConns: 0 };
};
