// The L7 edge: listeners (the socket path, src/edge/http1/), routes to pools, pools to servers.
import { runtime } from "../runtime/index.ts";
import type { TlsCertificate } from "../runtime/types.ts";
import type { EdgeConfig, ListenerConfig, RouteConfig } from "./config.ts";
import type { PoolSet } from "../balancer/balancer.ts";
import type { HttpPoolConfig } from "./options.ts";
import { HttpPool } from "./http-pool.ts";
import { RouteStats } from "./stats.ts";
import { type ListenerHost, SocketListener } from "./http1/listener.ts";
import { DeadlineSweep } from "../core/timer.ts";
import { UpstreamPool } from "./http1/upstream-pool.ts";
import { EdgeLimits } from "./limits/limiter.ts";
import { EdgeAccess } from "./access/admission.ts";
import type { DataPlane } from "../core/dataplane.ts";
import type { SharedCount } from "../core/shared-count.ts";

export class Edge implements ListenerHost {
  /** The balancer's pools with their HTTP options, by name; follows pools added and removed. */
  readonly pools = new Map<string, HttpPool>();
  /** Counters per route, made once: the socket path looks a route's up once per request. */
  readonly routeStats: ReadonlyMap<RouteConfig, RouteStats>;
  /** The port each listener bound, in config order (the config may say 0). */
  readonly ports: number[] = [];
  readonly deadlines = new DeadlineSweep();
  readonly upstreams = new UpstreamPool();
  /** The listeners, in config order, once started (each keeps its own EdgeStats). */
  readonly listeners: SocketListener[] = [];
  /** Per-client rate and conn limits of the listeners and routes, in the data plane's memory. */
  readonly clientLimits: EdgeLimits;
  private readonly unwatch: () => void;
  /** With workers: per listener (config order), where its open connections are counted over
   * every worker (max_connections); set before start. */
  sharedConnections: (SharedCount | null)[] = [];
  /** allow/deny and basic auth of listeners and routes; `dp` holds their prefix tables. */
  readonly access: EdgeAccess;

  get routes(): readonly RouteConfig[] { return this.config.routes; }

  constructor(readonly config: EdgeConfig, balancer: PoolSet<HttpPoolConfig> & { readonly dp: DataPlane }) {
    this.access = new EdgeAccess(config, balancer.dp);
    this.routeStats = new Map(config.routes.map((r) => [r, new RouteStats()]));
    this.clientLimits = new EdgeLimits(balancer.dp, config.listeners, config.routes);
    for (const p of balancer.all()) this.pools.set(p.name, new HttpPool(p, this.upstreams));
    this.unwatch = balancer.onPools(({ type, pool }) => {
      this.pools.get(pool.name)?.close();
      if (type === "added") this.pools.set(pool.name, new HttpPool(pool, this.upstreams));
      else this.pools.delete(pool.name);
    });
  }

  /** Opens the listeners; after a reload, `previous` is the edge serving now: a listener on the
   * same address takes over its socket (no moment without a listener), new addresses open. */
  async start(previous?: Edge): Promise<void> {
    if (previous) this.clientLimits.carryFrom(previous.clientLimits);
    for (const [i, l] of this.config.listeners.entries()) {
      const tls = l.tls ? await loadCertificates(l) : undefined;
      const listener = new SocketListener(this, l, this.deadlines, tls);
      listener.sharedConnections = this.sharedConnections[i] ?? null;
      const same = previous?.listeners.find((p) => p.listening && p.config.bind.host === l.bind.host && p.config.bind.port === l.bind.port);
      // Plain <-> TLS on one address cannot share a socket: the old one closes first.
      if (same && !l.tls !== !same.config.tls) await same.retire(0);
      this.ports.push(await listener.start(same));
      this.listeners.push(listener);
    }
  }

  /** In a supervisor whose workers serve: the listeners as objects that listen nowhere, on the
   * ports the workers bound, so the admin API and metrics read their (summed) counters. */
  mirror(ports: readonly number[]): void {
    this.config.listeners.forEach((l, i) => {
      const listener = new SocketListener(this, l, this.deadlines);
      listener.mirrored = { connections: 0 };
      this.listeners.push(listener);
      this.ports.push(ports[i]);
    });
  }

  /** The generation this edge served is replaced: listeners not taken over stop accepting, idle
   * connections close, requests in flight finish within `timeoutMs`; then everything stops. */
  async retire(timeoutMs: number): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.retire(timeoutMs)));
    await this.stop();
  }

  async stop(): Promise<void> {
    this.unwatch();
    await Promise.all(this.listeners.map((l) => l.stop()));
    this.deadlines.stop();
    this.upstreams.closeAll();
    this.clientLimits.free();
    this.access.release();
  }
}

async function loadCertificates(l: ListenerConfig): Promise<TlsCertificate[]> {
  const out: TlsCertificate[] = [];
  for (const t of l.tls!) {
    try {
      out.push({ cert: await runtime.readTextFile(t.cert), key: await runtime.readTextFile(t.key), serverNames: t.serverNames });
    } catch (e) {
      throw new Error(`listener ${l.name}: cannot read TLS files ${t.cert} / ${t.key}: ${(e as Error).message}`);
    }
  }
  return out;
}
