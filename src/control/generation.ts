// A generation: one validated config and everything built from it (data plane, balancer, edge,
// health, vrrp), started and stopped in one order. A reload builds the next generation beside
// the running one and swaps them (the control-plane issue builds that on this).
import { createDataPlane } from "../core/wasm.ts";
import { Balancer } from "../balancer/balancer.ts";
import { Edge } from "../edge/edge.ts";
import { HealthService } from "../health/service.ts";
import { VrrpService } from "../vrrp/service.ts";
import { L4Proxy } from "../l4/proxy.ts";
import { formatHostPort } from "../config/address.ts";
import type { Config, PoolConfig } from "./schema.ts";

export class Generation {
  private started: { stop(): Promise<void> | void }[] = [];

  private constructor(
    readonly id: number,
    readonly config: Config,
    readonly balancer: Balancer<PoolConfig>,
    readonly health: HealthService,
    /** Null on a VRRP-only node (no listeners). */
    readonly edge: Edge | null,
    readonly vrrp: VrrpService | null,
    /** Null without tcp/udp listeners. */
    readonly l4: L4Proxy | null = null,
  ) {}

  /** Builds every part; nothing listens, checks or sends until start(). */
  static async build(config: Config, id = 1): Promise<Generation> {
    const dp = await createDataPlane({ seed: config.hashSeed });
    const balancer = new Balancer<PoolConfig>(dp, config.pools);
    const health = new HealthService(balancer);
    const edge = config.listeners.length > 0 ? new Edge(config, balancer) : null;
    const vrrp = config.vrrp ? new VrrpService(config.vrrp, undefined, health) : null;
    const l4 = config.l4Listeners.length > 0 ? new L4Proxy(config.l4Listeners, balancer) : null;
    return new Generation(id, config, balancer, health, edge, vrrp, l4);
  }

  /** Starts the parts in order: checks first, so a check that cannot run (ICMP without
   * CAP_NET_RAW) stops startup before anything is served; then listeners; then VRRP, so a node
   * claims virtual addresses only once it can serve them. On a failure, what started is stopped. */
  async start(): Promise<void> {
    try {
      this.health.start();
      this.started.push(this.health);
      if (this.edge) { await this.edge.start(); this.started.push(this.edge); }
      if (this.l4) { await this.l4.start(); this.started.push(this.l4); }
      if (this.vrrp) { await this.vrrp.start(); this.started.push(this.vrrp); }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Stops in reverse order: VRRP gives up its addresses (priority 0) first, then listeners and
   * the sessions on them, then checks. */
  async stop(): Promise<void> {
    for (const part of this.started.splice(0).reverse()) await part.stop();
    this.balancer.stop();
  }

  /** One line per listener, with the port it bound. */
  listeningLines(): string[] {
    const edge = this.edge, l4 = this.l4;
    const lines = !edge ? [] : edge.config.listeners.map((l, i) =>
      `fulcrum: listening on ${l.tls ? "https" : "http"}://${formatHostPort({ host: l.bind.host, port: edge.ports[i] })} (${l.name})`);
    if (l4) lines.push(...l4.listenerConfigs.map((l, i) => `fulcrum: listening on ${l.protocol}://${formatHostPort({ host: l.bind.host, port: l4.ports[i] })} (${l.name})`));
    return lines;
  }
}
