// A generation: one validated config and everything built from it (data plane, balancer, edge,
// l4 proxy and packet director, health, vrrp), started and stopped in one order. A reload builds the next generation beside
// the running one, starts it taking over what did not change (listening sockets, health
// verdicts, VRRP instances), then retires the old one: its requests in flight finish.
import { createDataPlane } from "../core/wasm.ts";
import { Balancer } from "../balancer/balancer.ts";
import { Edge } from "../edge/edge.ts";
import { HealthService } from "../health/service.ts";
import { VrrpService } from "../vrrp/service.ts";
import type { HealthSource } from "../vrrp/track.ts";
import { DiscoveryService } from "../discovery/service.ts";
import { L4Proxy } from "../l4/proxy.ts";
import { DirectorService } from "../l4/director/service.ts";
import { SyncDaemon } from "../l4/director/sync/daemon.ts";
import { formatIP } from "../vrrp/ip.ts";
import { formatHostPort } from "../config/address.ts";
import type { Config, PoolConfig } from "./schema.ts";
import { PhaseTiming } from "./phase-timing.ts";

/** Processes that serve the generation's listeners in place of this one (src/control/workers/). */
export interface TrafficWorkers {
  start(): Promise<void>;
  stop(drainMs: number): Promise<void>;
  /** Runs `then` once every worker follows the pools' state as changed so far. */
  afterFollowed(then: () => void): void;
}

export class Generation {
  private started: { stop(): Promise<void> | void }[] = [];
  private vrrpService: VrrpService | null = null;
  private syncDaemon: SyncDaemon | null = null;
  /** Undoes the inheritance of the previous generation's session counts (a failed start). */
  private disinherit: () => void = () => {};
  /** Set before start when workers serve the listeners: this process then opens none. */
  workers: TrafficWorkers | null = null;

  private constructor(
    readonly id: number,
    readonly config: Config,
    readonly balancer: Balancer<PoolConfig>,
    readonly health: HealthService,
    /** Null on a VRRP-only node (no listeners). */
    readonly edge: Edge | null,
    readonly discovery: DiscoveryService | null,
    /** Null without tcp/udp listeners. */
    readonly l4: L4Proxy | null = null,
    /** Null without `virtual_servers:`. */
    readonly director: DirectorService<PoolConfig> | null = null,
  ) {}

  /** Null without a `vrrp:` section (made in start: a reload takes instances over there). */
  get vrrp(): VrrpService | null {
    return this.vrrpService;
  }

  /** Null without `director_sync:` (made in start, once the instance it follows runs). */
  get directorSync(): SyncDaemon | null {
    return this.syncDaemon;
  }

  /** Builds every part; nothing listens, checks or sends until start(). `previous`: the
   * generation a reload replaces (health verdicts and slow-start ramps carry over). `timing`
   * marks the data plane and the pools (a reload logs it). */
  static async build(config: Config, id = 1, previous?: Generation, timing = new PhaseTiming()): Promise<Generation> {
    const discovery = await DiscoveryService.create(config.discovery);
    // Nodes sharing an etcd prefix share the hash seed unless the config sets one.
    const seed = config.hashSeed ?? (discovery ? await discovery.hashSeed() : null);
    const dp = await createDataPlane({ seed });
    timing.mark("data plane");
    const balancer = new Balancer<PoolConfig>(dp, config.pools);
    for (const p of balancer.all()) if (p.config.discovery) discovery?.follow(p, p.config.discovery);
    timing.mark("pools");
    // A transition line is written once the workers (if any) follow it: a reader that sees
    // DOWN or EJECTED finds no worker still sending there.
    let generation: Generation | null = null;
    const log = (line: string) => {
      const write = () => console.log(`fulcrum: ${line}`);
      if (generation?.workers) generation.workers.afterFollowed(write);
      else write();
    };
    const health = new HealthService(balancer, { previous: previous?.health, log });
    const edge = config.listeners.length > 0 ? new Edge(config, balancer) : null;
    const l4 = config.l4Listeners.length > 0 ? new L4Proxy(config.l4Listeners, balancer) : null;
    const director = config.virtualServers.length === 0 ? null : new DirectorService(config.virtualServers, balancer, {
      id, seed,
      managedByVrrp: (vip) => config.vrrp?.instances.some((i) => i.addresses.some((a) => formatIP(a.address) === vip)) ?? false,
    });
    generation = new Generation(id, config, balancer, health, edge, discovery, l4, director);
    return generation;
  }

  /** Starts the parts in order: checks first, so a check that cannot run (ICMP without
   * CAP_NET_RAW) stops startup before anything is served; then listeners (taking over
   * `previous`'s sockets on the same addresses); then VRRP (taking over unchanged instances),
   * so a node claims virtual addresses only once it can serve them. `health` is what VRRP
   * tracks pools through (the supervisor's relay, stable across reloads). On a failure, what
   * started is stopped and what was taken over goes back to `previous`, which goes on serving. */
  async start(previous?: Generation, health: HealthSource = this.health): Promise<void> {
    // Sessions in flight on the previous generation count toward the same servers here (lc, wlc,
    // max_conns) until they end: linked before the listeners are taken over.
    // (With workers, the shared counts are by pool and address already: nothing to link.)
    if (previous && !this.workers) this.disinherit = this.balancer.inherit(previous.balancer);
    try {
      this.health.start();
      this.started.push(this.health);
      if (this.discovery) { await this.discovery.start(); this.started.push(this.discovery); }
      if (this.workers) { await this.workers.start(); this.started.push(this.workers as TrafficWorkers & { stop(): Promise<void> }); }
      else {
        if (this.edge) { await this.edge.start(previous?.edge ?? undefined); this.started.push(this.edge); }
        if (this.l4) { await this.l4.start(previous?.l4 ?? undefined); this.started.push(this.l4); }
      }
      if (this.director) { await this.director.start(previous?.director ?? undefined); this.started.push(this.director); }
      if (this.config.vrrp) {
        this.vrrpService = new VrrpService(this.config.vrrp, undefined, health, previous?.vrrp ?? null);
        await this.vrrpService.start();
        this.started.push(this.vrrpService);
      }
      if (this.config.directorSync && this.director) await this.startSync(this.director, previous?.directorSync ?? null);
    } catch (e) {
      this.disinherit();
      // A director carried over goes back to the generation that goes on serving.
      if (previous?.director) this.director?.handBack(previous.director);
      await this.stop();
      throw e;
    }
  }

  // The sync daemon follows its VRRP instance by name (a reload may have taken it over).
  private async startSync(director: DirectorService<PoolConfig>, previous: SyncDaemon | null): Promise<void> {
    const config = this.config.directorSync!;
    const vrid = this.config.vrrp?.instances.find((i) => i.name === config.vrrpInstance)?.vrid ?? 0;
    const daemon = this.syncDaemon = new SyncDaemon(config, {
      director: () => director.running,
      role: () => this.vrrpService?.instances.find((i) => i.name === config.vrrpInstance)?.state ?? null,
      vrid,
    }, previous);
    await daemon.start();
    this.started.push(daemon);
  }

  /** Stops in reverse order: VRRP gives up its addresses (priority 0) first, then the listeners
   * stop accepting and requests in flight finish (at most `drainMs`), then checks. After a
   * reload the same call retires the old generation: what the next one took over (listening
   * sockets, VRRP instances) is no longer this one's, so it goes on running there. */
  async stop(drainMs = 0): Promise<void> {
    for (const part of this.started.splice(0).reverse()) {
      if (this.workers && part === (this.workers as object)) await this.workers.stop(drainMs);
      else if (part === this.edge) await this.edge.retire(drainMs);
      else if (part === this.l4) await this.l4.retire(drainMs);
      else await part.stop();
    }
    this.balancer.stop();
  }

  /** One line per listener, with the port it bound. */
  listeningLines(): string[] {
    const edge = this.edge, l4 = this.l4;
    const lines = !edge ? [] : edge.config.listeners.map((l, i) =>
      `fulcrum: listening on ${l.tls ? "https" : "http"}://${formatHostPort({ host: l.bind.host, port: edge.ports[i] })} (${l.name})`);
    if (this.director) lines.push(...this.director.directingLines());
    if (l4) lines.push(...l4.listenerConfigs.map((l, i) => `fulcrum: listening on ${l.protocol}://${formatHostPort({ host: l.bind.host, port: l4.ports[i] })} (${l.name})`));
    return lines;
  }
}
