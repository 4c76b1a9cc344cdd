// The L4 socket proxy: the tcp (and udp) listeners of a generation, over the balancer's pools.
import type { PoolSet } from "../balancer/balancer.ts";
import type { Pool } from "../balancer/pool.ts";
import { DeadlineSweep } from "../core/timer.ts";
import type { L4ListenerConfig } from "./config.ts";
import { L4Stats } from "./stats.ts";
import type { L4PoolConfig } from "./tcp-session.ts";
import { TcpProxyListener } from "./tcp-listener.ts";
import { UdpProxyListener } from "./udp.ts";
import type { DataPlane } from "../core/dataplane.ts";
import type { SharedCount } from "../core/shared-count.ts";
import { LimitSet } from "../edge/limits/limiter.ts";
import { AccessList } from "../edge/access/acl.ts";

/** A listener that workers serve, as their supervisor lists it. */
export interface L4ListenerMirror {
  readonly config: L4ListenerConfig;
  connections: number;
}

export class L4Proxy {
  readonly stats = new L4Stats();
  /** The port each listener bound, in config order (the config may say 0). */
  readonly ports: number[] = [];
  private readonly pools = new Map<string, Pool<L4PoolConfig>>();
  private readonly deadlines = new DeadlineSweep();
  private readonly listeners: (TcpProxyListener | UdpProxyListener)[] = [];
  private readonly unwatch: () => void;
  /** The tcp listeners' conn_limit tables, by listener name (in the data plane's memory). */
  readonly clientLimits = new Map<string, LimitSet>();

  /** With workers: per listener (config order), where its open connections are counted over
   * every worker (a tcp listener's max_connections); set before start. */
  sharedConnections: (SharedCount | null)[] = [];

  /** Each listener's allow/deny, compiled into the data plane's prefix tables. */
  private readonly access = new Map<L4ListenerConfig, AccessList>();

  constructor(readonly listenerConfigs: readonly L4ListenerConfig[], balancer: PoolSet<L4PoolConfig> & { readonly dp: DataPlane }) {
    for (const l of listenerConfigs) {
      if (l.access) this.access.set(l, new AccessList(balancer.dp, l.access));
    }
    for (const p of balancer.all()) this.pools.set(p.name, p);
    for (const l of listenerConfigs) {
      if (l.connLimit) this.clientLimits.set(l.name, new LimitSet(balancer.dp, "listener", l.name, { rate: null, conn: l.connLimit }));
    }
    this.unwatch = balancer.onPools(({ type, pool }) => {
      if (type === "added") this.pools.set(pool.name, pool);
      else this.pools.delete(pool.name);
    });
  }

  /** In a supervisor whose workers serve: rows that listen nowhere, whose open connections are
   * the workers' sum (control/workers/counters.ts adds into them). */
  mirrored: L4ListenerMirror[] | null = null;

  /** The listeners in config order, for the admin API (their config and open connections). */
  get listening(): readonly { readonly config: L4ListenerConfig; readonly connections: number }[] {
    return this.mirrored ?? this.listeners;
  }

  /** In a supervisor whose workers serve: lists the listeners, on the ports the workers bound,
   * without listening (the admin API and metrics read them). */
  mirror(ports: readonly number[]): void {
    this.mirrored = this.listenerConfigs.map((config) => ({ config, connections: 0 }));
    this.ports.push(...ports);
  }

  /** Opens the listeners; after a reload, `previous` is the proxy serving now: a listener of the
   * same protocol on the same address takes over its socket (no moment without a listener). */
  async start(previous?: L4Proxy): Promise<void> {
    for (const [i, l] of this.listenerConfigs.entries()) {
      const same = previous?.listeners.find((p) => p.config.protocol === l.protocol &&
        p.config.bind.host === l.bind.host && p.config.bind.port === l.bind.port);
      let port: number;
      if (l.protocol === "udp") {
        const listener = new UdpProxyListener(l, this.pools, this.stats, this.deadlines, this.access.get(l) ?? null);
        port = await listener.start(same instanceof UdpProxyListener ? same : undefined);
        this.listeners.push(listener);
      } else {
        const listener = new TcpProxyListener(l, this.pools, this.stats, this.deadlines, this.clientLimits.get(l.name) ?? null, this.access.get(l) ?? null);
        listener.sharedConnections = this.sharedConnections[i] ?? null;
        port = await listener.start(same instanceof TcpProxyListener ? same : undefined);
        this.listeners.push(listener);
      }
      this.ports.push(port);
    }
  }

  /** Stops accepting what no successor took over; sessions finish within `timeoutMs`. */
  async retire(timeoutMs: number): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.retire(timeoutMs)));
    await this.stop();
  }

  /** Closes the udp listeners now (their sessions end), so another process can bind their
   * ports: a UDP socket cannot be shared (no SO_REUSEPORT in either runtime's UDP), so a worker
   * reload hands them over this way. */
  async releaseUdp(): Promise<void> {
    await Promise.all(this.listeners.filter((l) => l instanceof UdpProxyListener).map((l) => l.stop()));
  }

  async stop(): Promise<void> {
    this.unwatch();
    await Promise.all(this.listeners.map((l) => l.stop()));
    this.deadlines.stop();
    for (const acl of this.access.values()) acl.release();
  }
}
