// The L4 socket proxy: the tcp (and udp) listeners of a generation, over the balancer's pools.
import type { PoolSet } from "../balancer/balancer.ts";
import type { Pool } from "../balancer/pool.ts";
import { DeadlineSweep } from "../core/timer.ts";
import type { L4ListenerConfig } from "./config.ts";
import { L4Stats } from "./stats.ts";
import type { L4PoolConfig } from "./tcp-session.ts";
import { TcpProxyListener } from "./tcp-listener.ts";
import { UdpProxyListener } from "./udp.ts";

export class L4Proxy {
  readonly stats = new L4Stats();
  /** The port each listener bound, in config order (the config may say 0). */
  readonly ports: number[] = [];
  private readonly pools = new Map<string, Pool<L4PoolConfig>>();
  private readonly deadlines = new DeadlineSweep();
  private readonly listeners: (TcpProxyListener | UdpProxyListener)[] = [];
  private readonly unwatch: () => void;

  constructor(readonly listenerConfigs: readonly L4ListenerConfig[], balancer: PoolSet<L4PoolConfig>) {
    for (const p of balancer.all()) this.pools.set(p.name, p);
    this.unwatch = balancer.onPools(({ type, pool }) => {
      if (type === "added") this.pools.set(pool.name, pool);
      else this.pools.delete(pool.name);
    });
  }

  async start(): Promise<void> {
    for (const l of this.listenerConfigs) {
      const listener = l.protocol === "udp"
        ? new UdpProxyListener(l, this.pools, this.stats, this.deadlines)
        : new TcpProxyListener(l, this.pools, this.stats, this.deadlines);
      this.ports.push(await listener.start());
      this.listeners.push(listener);
    }
  }

  async stop(): Promise<void> {
    this.unwatch();
    await Promise.all(this.listeners.map((l) => l.stop()));
    this.deadlines.stop();
  }
}
