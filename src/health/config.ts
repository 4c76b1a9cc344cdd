// The health part of a pool's config: the checks (`health:`), and what the pool does with their
// verdicts (`slowstart`, `outlier`, `panic_threshold`, `quorum`; the sorry server itself is a
// balancer key). Read with the shared validation toolkit; src/control/schema.ts calls
// readPoolHealth once per pool.
import {
  boolean, type Checker, choice, duration, integer, type Mapping, type PathSegment, type Read, regExp, string, valueOf,
} from "../config/checker.ts";
import { didYouMean } from "../config/errors.ts";
import { formatDuration } from "../config/duration.ts";
import type { BalancerPoolConfig } from "../balancer/config.ts";

const CHECK_TYPES = ["tcp", "http", "https", "icmp", "udp", "script", "agent"] as const;
export type CheckType = typeof CHECK_TYPES[number];

/** When a check runs and how many results in a row change the verdict (HAProxy's names). */
export interface CheckTiming {
  intervalMs: number;
  /** Between checks while the verdict is changing (a failure while up, a success while down). */
  fastinterMs: number;
  /** Between checks while down. */
  downinterMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  /** The verdict before any check ran: "up" needs `fall` failures to go down; "down" comes up on the
   * first success (HAProxy's init-state, keepalived's alpha). */
  initial: "up" | "down";
}

/** Inclusive status range, e.g. [200, 399]. */
export type StatusRange = [number, number];

type CheckKind =
  | { type: "tcp"; port: number | null }
  | {
    type: "http" | "https";
    port: number | null;
    method: string;
    path: string;
    /** Host header; the server's address when null. */
    host: string | null;
    status: StatusRange[];
    /** Regular expression source the body must match. */
    bodyRegex: string | null;
    /** MD5 of the body, lowercase hex (keepalived's digest). */
    digest: string | null;
    /** TLS server name; none is sent when null. */
    sni: string | null;
    verify: boolean;
    /** PEM file of CAs to verify against instead of the system store. */
    ca: string | null;
    /** Keep the connection between checks (Envoy's reuse_connection); false: a new one each time. */
    reuseConnection: boolean;
  }
  | { type: "icmp" }
  | { type: "udp"; port: number | null; send: string; expect: string | null; requireReply: boolean }
  | { type: "script"; command: string[]; dynamic: boolean }
  | { type: "agent"; port: number; send: string | null };

/** One check: plain data (no RegExp, no functions), so its JSON is its identity. */
export type CheckConfig = CheckTiming & CheckKind;

export interface OutlierConfig {
  /** Consecutive 5xx answers or connection failures that eject a server (Envoy's consecutive_5xx). */
  consecutive5xx: number;
  /** Ejection time for the first ejection; the n-th in a row lasts n times as long. */
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** At most this share of the pool is ejected at once (at least one server always may be). */
  maxEjectionPercent: number;
}

/** A pool config that carries health's part (the balancer's pools hand it back to health). */
export interface HealthPoolConfig extends BalancerPoolConfig {
  health: PoolHealthConfig;
}

export interface PoolHealthConfig {
  checks: CheckConfig[];
  /** A server that comes back ramps its weight linearly over this long; 0: at once. */
  slowstartMs: number;
  outlier: OutlierConfig | null;
  /** Below this percentage of servers up the pool balances over all of them; 0: never. */
  panicThreshold: number;
  /** Fewer servers up than this and the pool sends everything to the sorry server. */
  quorum: number;
}

/** Pool keys this section reads (schema.ts adds them to the pool's allowed keys). */
export const POOL_HEALTH_KEYS = ["health", "slowstart", "outlier", "panic_threshold", "quorum"] as const;

const TIMING_KEYS = ["type", "interval", "fastinter", "downinter", "timeout", "rise", "fall", "initial"] as const;
const KIND_KEYS: Record<CheckType, readonly string[]> = {
  tcp: ["port"],
  http: ["port", "method", "path", "host", "status", "body_regex", "digest", "reuse_connection"],
  https: ["port", "method", "path", "host", "status", "body_regex", "digest", "reuse_connection", "sni", "verify", "ca"],
  icmp: [],
  udp: ["port", "send", "expect", "require_reply"],
  script: ["command", "dynamic"],
  agent: ["port", "send"],
};
const OUTLIER_KEYS = ["consecutive_5xx", "base_ejection_time", "max_ejection_time", "max_ejection_percent"] as const;

const DEFAULT_INTERVAL_MS = 2_000;
const DEFAULT_TIMEOUT_MS = 1_000;
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_PATH = /^\/[^\s\0]*$/;
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$/;
const DNS_NAME = /^(?=.*[A-Za-z])[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const MD5_HEX = /^[0-9a-fA-F]{32}$/;

/** Reads the health keys of pool mapping `m` at path `p`; the pool's server count bounds the quorum. */
export function readPoolHealth(c: Checker, m: Mapping, p: PathSegment[]): PoolHealthConfig {
  const serverCount = Array.isArray(m.servers) ? m.servers.length : 0;
  const quorumMax = Math.max(1, serverCount);
  const quorumWhat = `an integer 1..${quorumMax} (the pool has ${serverCount} server${serverCount === 1 ? "" : "s"})`;
  return {
    checks: c.optional(m, p, "health", checks, []),
    slowstartMs: c.optional(m, p, "slowstart", duration({ zeroAllowed: true }), 0),
    outlier: c.optional(m, p, "outlier", outlier, null),
    panicThreshold: c.optional(m, p, "panic_threshold", integer(0, 100), 0),
    quorum: c.optional(m, p, "quorum", bounded(quorumWhat, 1, quorumMax), 1),
  };
}

// ------------------------------------------------------------------------------------------ checks

/** `health:` is one check, or a list of checks that must all pass (keepalived runs several per server). */
const checks: Read<CheckConfig[]> = (c, value, path) => {
  if (!Array.isArray(value)) {
    const one = check(c, value, path);
    return one && [one];
  }
  if (value.length === 0) return c.expected(path, "a check mapping or a non-empty list of them", value);
  const all = value.map((item, i) => check(c, item, [...path, i]));
  return all.every((x) => x !== undefined) ? all as CheckConfig[] : undefined;
};

function check(c: Checker, value: unknown, p: PathSegment[]): CheckConfig | undefined {
  const m = c.mapping(value, p, `a check mapping with a type (${CHECK_TYPES.join(", ")})`);
  if (m === undefined) return undefined;
  const type = c.required(m, p, "type", choice(CHECK_TYPES));
  if (type === undefined) return undefined;
  checkKeysFor(c, m, p, type);
  const timing = readTiming(c, m, p);
  const kind = readKind(c, m, p, type);
  return timing && kind && { ...timing, ...kind } as CheckConfig;
}

/** Unknown keys; a key another check type uses says which, so `path` on a tcp check is not a mystery. */
function checkKeysFor(c: Checker, m: Mapping, p: PathSegment[], type: CheckType): void {
  const allowed = [...TIMING_KEYS, ...KIND_KEYS[type]];
  for (const key of Object.keys(m)) {
    if (allowed.includes(key)) continue;
    const users = CHECK_TYPES.filter((t) => KIND_KEYS[t].includes(key));
    if (users.length > 0) {
      c.fail([...p, key], `unknown key for a ${type} check (${key} is for ${users.join(", ")} checks)`, "key");
      continue;
    }
    const guess = didYouMean(key, allowed);
    const hint = guess === null ? `allowed keys: ${allowed.join(", ")}` : `did you mean "${guess}"?`;
    c.fail([...p, key], `unknown key (${hint})`, "key");
  }
}

function readTiming(c: Checker, m: Mapping, p: PathSegment[]): CheckTiming | undefined {
  const positive = duration({ zeroAllowed: false });
  const intervalMs = c.optional(m, p, "interval", positive, DEFAULT_INTERVAL_MS);
  const fastinterMs = c.optional(m, p, "fastinter", positive, intervalMs);
  const downinterMs = c.optional(m, p, "downinter", positive, intervalMs);
  const timeoutMs = c.optional(m, p, "timeout", positive, Math.min(DEFAULT_TIMEOUT_MS, intervalMs));
  // A check never overlaps the next one, so a timeout longer than the interval would stretch the
  // interval and break the promise that a dead server is found within interval × fall + timeout.
  if (valueOf(m, "timeout") !== undefined && timeoutMs > intervalMs) {
    c.expected([...p, "timeout"], `a duration no longer than interval (${formatDuration(intervalMs)})`, m.timeout);
  }
  const rise = c.optional(m, p, "rise", integer(1, 100), 2);
  const fall = c.optional(m, p, "fall", integer(1, 100), 3);
  const initial = c.optional(m, p, "initial", choice(["up", "down"] as const), "up");
  return { intervalMs, fastinterMs, downinterMs, timeoutMs, rise, fall, initial };
}

function readKind(c: Checker, m: Mapping, p: PathSegment[], type: CheckType): CheckKind | undefined {
  const port = c.optional(m, p, "port", integer(1, 65535), null);
  switch (type) {
    case "tcp":
      return { type, port };
    case "http":
    case "https": {
      const host = c.optional(m, p, "host", hostHeader, null);
      const bodyRegex = c.optional(m, p, "body_regex", regexSource, null);
      const defaultSni = host !== null && DNS_NAME.test(host.replace(/:\d+$/, "")) ? host.replace(/:\d+$/, "") : null;
      return {
        type,
        port,
        method: c.optional(m, p, "method", httpMethod, "GET"),
        path: c.optional(m, p, "path", requestPath, "/"),
        host,
        status: c.optional(m, p, "status", statusRanges, [[200, 399]] as StatusRange[]),
        bodyRegex,
        digest: c.optional(m, p, "digest", md5Hex, null),
        sni: type === "https" ? c.optional(m, p, "sni", serverName, defaultSni) : null,
        verify: type === "https" ? c.optional(m, p, "verify", boolean, true) : true,
        ca: type === "https" ? c.optional(m, p, "ca", string("a path to a PEM file"), null) : null,
        reuseConnection: c.optional(m, p, "reuse_connection", boolean, true),
      };
    }
    case "icmp":
      return { type };
    case "udp": {
      const expect = c.optional(m, p, "expect", regexSource, null);
      return {
        type,
        port,
        send: c.required(m, p, "send", string("a payload string")) ?? "",
        expect,
        requireReply: c.optional(m, p, "require_reply", boolean, expect !== null),
      };
    }
    case "script":
      return {
        type,
        command: c.required(m, p, "command", command) ?? [],
        dynamic: c.optional(m, p, "dynamic", boolean, false),
      };
    case "agent": {
      const agentPort = c.required(m, p, "port", integer(1, 65535));
      return { type, port: agentPort ?? 0, send: c.optional(m, p, "send", string("a string to send"), null) };
    }
  }
}

const httpMethod: Read<string> = (c, value, path) =>
  typeof value === "string" && HTTP_TOKEN.test(value) ? value.toUpperCase() : c.expected(path, "an HTTP method like GET", value);

const requestPath: Read<string> = (c, value, path) =>
  typeof value === "string" && REQUEST_PATH.test(value) ? value : c.expected(path, `a path starting with "/" without spaces`, value);

const hostHeader: Read<string> = (c, value, path) =>
  typeof value === "string" && HOST_HEADER.test(value) ? value : c.expected(path, `a host name like "api.example.com"`, value);

const serverName: Read<string> = (c, value, path) =>
  typeof value === "string" && DNS_NAME.test(value) ? value : c.expected(path, "a DNS name for SNI", value);

const regexSource: Read<string> = (c, value, path) => {
  if (typeof value !== "string" || value === "") return c.expected(path, "a regular expression", value);
  return regExp(c, value, path) && value;
};

const md5Hex: Read<string> = (c, value, path) => {
  if (typeof value === "string" && MD5_HEX.test(value)) return value.toLowerCase();
  // An all-digit digest is a number to YAML, and its digits are already lost.
  const hint = typeof value === "number" ? " (quote it, or YAML reads the digits as a number)" : "";
  return c.expected(path, `an MD5 digest of 32 hex digits${hint}`, value);
};

/** `200`, `"200-399"`, or a list of either. */
const statusRanges: Read<StatusRange[]> = (c, value, path) => {
  const what = `a status like 200, a range like "200-399", or a list of them`;
  const one = (v: unknown, at: PathSegment[]): StatusRange | undefined => {
    if (typeof v === "number" && Number.isInteger(v) && v >= 100 && v <= 599) return [v, v];
    const match = typeof v === "string" ? /^(\d{3})(?:-(\d{3}))?$/.exec(v.trim()) : null;
    const lo = match ? Number(match[1]) : NaN, hi = match ? Number(match[2] ?? match[1]) : NaN;
    if (lo >= 100 && hi <= 599 && lo <= hi) return [lo, hi];
    return c.expected(at, what, v);
  };
  if (!Array.isArray(value)) return (x => x && [x])(one(value, path));
  if (value.length === 0) return c.expected(path, what, value);
  const ranges = value.map((v, i) => one(v, [...path, i]));
  return ranges.every((r) => r !== undefined) ? ranges as StatusRange[] : undefined;
};

/** A list is the argv; a string runs under /bin/sh -c, as keepalived's misc_path does. */
const command: Read<string[]> = (c, value, path) => {
  if (typeof value === "string" && value.trim() !== "") return ["/bin/sh", "-c", value];
  if (Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === "string" && x !== "")) return value as string[];
  return c.expected(path, "a command line string or a non-empty list of arguments", value);
};

// ----------------------------------------------------------------------------------- pool settings

const outlier: Read<OutlierConfig> = (c, value, path) => {
  const m = c.mapping(value, path, `a mapping with ${OUTLIER_KEYS.join(", ")} (or {} for the defaults)`);
  if (m === undefined) return undefined;
  c.checkKeys(m, path, OUTLIER_KEYS);
  const baseEjectionMs = c.optional(m, path, "base_ejection_time", duration({ zeroAllowed: false }), 30_000);
  const maxEjectionMs = c.optional(m, path, "max_ejection_time", duration({ zeroAllowed: false }), Math.max(300_000, baseEjectionMs));
  if (maxEjectionMs < baseEjectionMs) {
    c.expected([...path, "max_ejection_time"], `a duration no shorter than base_ejection_time (${formatDuration(baseEjectionMs)})`, m.max_ejection_time);
  }
  return {
    consecutive5xx: c.optional(m, path, "consecutive_5xx", integer(1, 1000), 5),
    baseEjectionMs,
    maxEjectionMs,
    maxEjectionPercent: c.optional(m, path, "max_ejection_percent", integer(0, 100), 10),
  };
};

function bounded(what: string, min: number, max: number): Read<number> {
  return (c, value, path) =>
    typeof value === "number" && Number.isInteger(value) && value >= min && value <= max ? value : c.expected(path, what, value);
}

