// The whole config file, assembled from the parts' own section readers by one registration table:
// each part reads its own keys (the edge its listeners, routes and a pool's HTTP keys; the
// balancer a pool's servers and scheduler; health a pool's checks; vrrp its section). Adding a
// section, or a pool key family, is one entry here. Every problem is collected with its key path,
// so an operator can fix a whole file in one pass.
import {
  Checker, describeValue, duration, integer, isMapping, type Mapping, type PathSegment, type SchemaIssue, valueOf,
} from "../config/checker.ts";
import type { HostPort } from "../config/address.ts";
import { parseConfig, type ParseResult, type Validated } from "../config/load.ts";
import { BALANCER_POOL_KEYS, type BalancerPoolConfig, readBalancerPool } from "../balancer/config.ts";
import { type PoolHttpOptions, POOL_HTTP_KEYS, readPoolHttp } from "../edge/options.ts";
import {
  declaredListenerNames, type ListenerConfig, readListeners, readRoutes, type RouteConfig,
} from "../edge/config.ts";
import { type PoolHealthConfig, POOL_HEALTH_KEYS, readPoolHealth } from "../health/config.ts";
import { readVrrp, type VrrpConfig } from "../vrrp/config.ts";
import {
  declaredDiscoveryKinds, type DiscoveryConfig, type DiscoveryKind, POOL_DISCOVERY_KEYS, readDiscovery, readPoolDiscovery,
} from "../discovery/config.ts";
import { type L4ListenerConfig, type PoolL4Options, POOL_L4_KEYS, readL4Listener, readPoolL4 } from "../l4/config.ts";
import { type AdminConfig, readAdmin } from "./admin-config.ts";
import { checkPoolFamilies, readVirtualServers, type VirtualServerConfig } from "../l4/director/config.ts";
import { type AccessLogConfig, readAccessLog } from "../log/config.ts";
import { type DirectorSyncConfig, readDirectorSync } from "../l4/director/sync/config.ts";
import { readWorkers, type WorkersSetting } from "./workers/config.ts";

/** A pool as every part sees it: the balancer's config, with the edge's and health's parts. */
export interface PoolConfig extends BalancerPoolConfig {
  http: PoolHttpOptions;
  health: PoolHealthConfig;
  /** Where the pool's servers also come from (src/discovery), or null. */
  discovery: DiscoveryKind | null;
  l4: PoolL4Options;
}

export interface Config {
  hashSeed: number | null;
  /** How long a stop or a reload lets requests in flight finish (nginx worker_shutdown_timeout). */
  drainTimeoutMs: number;
  listeners: ListenerConfig[];
  /** tcp and udp listeners (src/l4). */
  l4Listeners: L4ListenerConfig[];
  routes: RouteConfig[];
  pools: PoolConfig[];
  /** The `vrrp:` section (src/vrrp/config.ts), null when absent. */
  vrrp: VrrpConfig | null;
  /** The `discovery:` section (src/discovery/config.ts), null when absent. */
  discovery: DiscoveryConfig | null;
  /** The `admin:` section (src/control/admin-config.ts), null when absent: no admin listener. */
  admin: AdminConfig | null;
  /** The `virtual_servers:` section (src/l4/director/config.ts): checked; served once packet I/O exists. */
  virtualServers: VirtualServerConfig[];
  /** The top-level `access_log` (src/log/config.ts): every listener's unless it sets its own. */
  accessLog: AccessLogConfig | null;
  /** The `director_sync:` section (src/l4/director/sync/config.ts), null when absent. */
  directorSync: DirectorSyncConfig | null;
  /** `workers:` (src/control/workers/config.ts): processes that move traffic; auto by default, 1
   * serves in this one. */
  workers: WorkersSetting;
}

/** What the readers of one file share: names declared anywhere, so one broken pool does not also
 * fail every route that names it. */
interface Context {
  raw: Mapping;
  listenerNames: string[];
  poolNames: string[];
  /** A node that only holds virtual addresses (VRRP) needs no listeners or pools. */
  vrrpOnly: boolean;
  /** The kinds the `discovery:` section configures (a pool may name only these). */
  discoveryKinds: string[];
  /** Whether any listener is http (the default protocol). */
  httpListeners: boolean;
  /** A packet director with no listeners: `virtual_servers:` and the pools they name. */
  directorOnly: boolean;
}

// Top-level sections; errors are reported in file order whatever order they are read in.
const SECTIONS = {
  hash_seed: (c: Checker, ctx: Context) => c.optional(ctx.raw, [], "hash_seed", integer(0, 2 ** 32 - 1), null),
  listeners: (c: Checker, ctx: Context) => readAllListeners(c, ctx),
  // HTTP routes; a file with only L4 listeners (they name their pools) needs none.
  routes: (c: Checker, ctx: Context) =>
    ctx.httpListeners || valueOf(ctx.raw, "routes") !== undefined ? readRoutes(c, valueOf(ctx.raw, "routes"), ctx) : [],
  pools: (c: Checker, ctx: Context) => ctx.vrrpOnly ? [] : readPools(c, valueOf(ctx.raw, "pools"), ctx),
  vrrp: (c: Checker, ctx: Context) => readVrrp(c, valueOf(ctx.raw, "vrrp"), ctx.poolNames),
  discovery: (c: Checker, ctx: Context) => readDiscovery(c, valueOf(ctx.raw, "discovery")),
  drain_timeout: (c: Checker, ctx: Context) => c.optional(ctx.raw, [], "drain_timeout", duration({ zeroAllowed: true }), 30_000),
  admin: (c: Checker, ctx: Context) => readAdmin(c, valueOf(ctx.raw, "admin")),
  virtual_servers: (c: Checker, ctx: Context) => readVirtualServers(c, valueOf(ctx.raw, "virtual_servers"), ctx.poolNames),
  access_log: (c: Checker, ctx: Context) => c.optional(ctx.raw, [], "access_log", readAccessLog, null),
  director_sync: (c: Checker, ctx: Context) => readDirectorSync(c, valueOf(ctx.raw, "director_sync"), {
    instanceNames: vrrpInstanceNames(ctx.raw), virtualServers: valueOf(ctx.raw, "virtual_servers") !== undefined,
  }),
  workers: (c: Checker, ctx: Context) => c.optional(ctx.raw, [], "workers", readWorkers, "auto"),
} as const;

/** The instance names the `vrrp:` section declares (read as written; the section reports its own errors). */
function vrrpInstanceNames(raw: Mapping): string[] {
  const vrrp = valueOf(raw, "vrrp");
  const instances = isMapping(vrrp) ? valueOf(vrrp, "instances") : undefined;
  return Array.isArray(instances) ? instances.flatMap((i) => isMapping(i) && typeof i.name === "string" ? [i.name] : []) : [];
}

// The key families of a pool mapping, one per part.
const POOL_PARTS = {
  balancer: { keys: BALANCER_POOL_KEYS, read: readBalancerPool },
  http: { keys: POOL_HTTP_KEYS, read: readPoolHttp },
  health: { keys: POOL_HEALTH_KEYS, read: readPoolHealth },
  discovery: { keys: POOL_DISCOVERY_KEYS, read: readPoolDiscovery },
  l4: { keys: POOL_L4_KEYS, read: readPoolL4 },
} as const;
const POOL_KEYS = Object.values(POOL_PARTS).flatMap((part) => [...part.keys]);
const POOL_NAME = /^[A-Za-z0-9_.-]+$/;
const ROOT_EXPECTED = "expected a mapping with listeners and pools";

export function validateConfig(raw: unknown): Validated<Config> {
  const c = new Checker();
  if (!isMapping(raw)) {
    c.fail([], raw == null ? ROOT_EXPECTED : `${ROOT_EXPECTED}, got ${describeValue(raw)}`);
    return { ok: false, issues: c.issues };
  }
  c.checkKeys(raw, [], Object.keys(SECTIONS));
  const ctx: Context = {
    raw,
    listenerNames: declaredListenerNames(raw.listeners),
    poolNames: isMapping(raw.pools) ? Object.keys(raw.pools) : [],
    vrrpOnly: valueOf(raw, "vrrp") !== undefined && valueOf(raw, "listeners") === undefined && valueOf(raw, "pools") === undefined,
    discoveryKinds: declaredDiscoveryKinds(raw),
    httpListeners: !Array.isArray(raw.listeners) || raw.listeners.some((l) => !isMapping(l) || (l.protocol ?? "http") === "http"),
    directorOnly: valueOf(raw, "virtual_servers") !== undefined && valueOf(raw, "listeners") === undefined,
  };
  if (ctx.directorOnly) ctx.httpListeners = false;
  const listeners = SECTIONS.listeners(c, ctx);
  const config = {
    hashSeed: SECTIONS.hash_seed(c, ctx),
    drainTimeoutMs: SECTIONS.drain_timeout(c, ctx),
    vrrp: SECTIONS.vrrp(c, ctx),
    discovery: SECTIONS.discovery(c, ctx),
    listeners: listeners.http,
    l4Listeners: listeners.l4,
    pools: SECTIONS.pools(c, ctx),
    routes: SECTIONS.routes(c, ctx),
    admin: SECTIONS.admin(c, ctx),
    virtualServers: SECTIONS.virtual_servers(c, ctx),
    accessLog: SECTIONS.access_log(c, ctx),
    directorSync: SECTIONS.director_sync(c, ctx),
    workers: SECTIONS.workers(c, ctx),
  };
  checkPoolFamilies(c, config.virtualServers, config.pools);
  if (c.issues.length > 0) return { ok: false, issues: c.issues };
  if (config.accessLog) for (const l of [...config.listeners, ...config.l4Listeners]) if (l.accessLog === undefined) l.accessLog = config.accessLog;
  return { ok: true, config };
}

/** Parses and validates a config file's text; errors carry `file:line:col` and the key path. */
export function parseConfigText(text: string, file = "<config>"): ParseResult<Config> {
  return parseConfig(text, file, validateConfig);
}

function readPools(c: Checker, value: unknown, ctx: Context): PoolConfig[] {
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
    const pool = readPool(c, poolValue, [...path, name], name, ctx);
    if (pool !== undefined) pools.push(pool);
  }
  return pools;
}

/** One pool read as the config file would have it (the admin API's add-pool); errors carry the
 * key path under `pools.NAME`. */
export function readPoolConfig(name: string, value: unknown, discoveryKinds: string[] = []): Validated<PoolConfig> {
  const c = new Checker();
  if (!POOL_NAME.test(name)) c.fail(["pools", name], `expected a pool name of letters, digits, "_", "." or "-", got ${JSON.stringify(name)}`, "key");
  const ctx = { discoveryKinds } as Context;
  const pool = readPool(c, value, ["pools", name], name, ctx);
  if (c.issues.length > 0 || pool === undefined) return { ok: false, issues: c.issues };
  return { ok: true, config: pool };
}

function readPool(c: Checker, value: unknown, p: PathSegment[], name: string, ctx: Context): PoolConfig | undefined {
  const m = c.mapping(value, p, "a pool mapping with servers");
  if (m === undefined) return undefined;
  c.checkKeys(m, p, POOL_KEYS);
  const discovery = POOL_PARTS.discovery.read(c, m, p, ctx.discoveryKinds);
  return {
    // Named at all (even wrongly): servers may be absent, so the one mistake is reported once.
    ...POOL_PARTS.balancer.read(c, m, p, name, valueOf(m, "discovery") !== undefined),
    http: POOL_PARTS.http.read(c, m, p),
    health: POOL_PARTS.health.read(c, m, p),
    discovery,
    l4: POOL_PARTS.l4.read(c, m, p),
  };
}

/** The listeners section: the edge reads it and hands tcp and udp listeners to src/l4. */
function readAllListeners(c: Checker, ctx: Context): { http: ListenerConfig[]; l4: L4ListenerConfig[] } {
  const l4: L4ListenerConfig[] = [];
  if (ctx.vrrpOnly || ctx.directorOnly) return { http: [], l4 };
  const l4Reader = (protocol: "tcp" | "udp") => (c: Checker, m: Mapping, p: PathSegment[], base: { name: string; bind: HostPort }) =>
    l4.push(readL4Listener(c, m, p, base, protocol, ctx.poolNames));
  const http = readListeners(c, valueOf(ctx.raw, "listeners"), { tcp: l4Reader("tcp"), udp: l4Reader("udp") });
  return { http, l4 };
}

export type { SchemaIssue };
