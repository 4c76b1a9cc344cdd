// The packet director as a part of a generation: one Director (its own data plane) with a
// virtual server per `virtual_servers:` entry, fed from the named balancer pool (servers,
// scheduler, weights, and the down reasons health, admin and drain set: a server out takes no
// new flows), a TUN port that moves the packets, the kernel steering that hands them to it, and
// the VIP on the interface unless a VRRP instance manages it. Started after the listeners,
// stopped before them (the VIP goes first).
import { timers, type Repeating } from "../../core/timer.ts";
import type { Balancer } from "../../balancer/balancer.ts";
import type { BalancerPoolConfig } from "../../balancer/config.ts";
import { stateOf, type Pool } from "../../balancer/pool.ts";
import { STATE_DOWN, STATE_DRAIN } from "../../core/dataplane.ts";
import { interfaceIndex } from "../../ffi/libc.ts";
import { addPoll, removePoll } from "../../vrrp/poller.ts";
import { addVirtualAddresses, removeVirtualAddresses, type VirtualAddress } from "../../vrrp/addresses.ts";
import { parseIP } from "../../vrrp/ip.ts";
import { unservable, type VirtualServerConfig } from "./config.ts";
import { Director, type RealServerSpec, type ServiceRow } from "./director.ts";
import { TunPort, type PortCounters } from "./io/tun-port.ts";
import { prepareTun, releaseTun, Steering } from "./io/steer.ts";

export interface DirectorServiceOptions {
  /** Generation id: names the TUN and keeps the kernel steering of two generations apart. */
  id: number;
  /** True for a VIP a VRRP instance adds and removes (the director then leaves it alone). */
  managedByVrrp(vip: string): boolean;
  /** Connection table entries. */
  capacity?: number;
  /** How often pools are read for changes (health, admin, membership). */
  syncMs?: number;
}

/** What the director's views show: `fulcrum l4` and the admin API read this. */
export interface DirectorState {
  services: ServiceRow[];
  counters: Record<string, number>;
  port: PortCounters;
  /** `ipvsadm -Ln` as text. */
  text: string;
}

const DEFAULT_CAPACITY = 65536;
const POLL_MS = 1;

interface Served<C extends BalancerPoolConfig> {
  config: VirtualServerConfig;
  pool: Pool<C>;
  steering: Steering;
  vip: VirtualAddress;
  ifindex: number;
  addedVip: boolean;
  layout: string;
  states: Map<string, string>;
}

export class DirectorService<C extends BalancerPoolConfig = BalancerPoolConfig> {
  private director: Director | null = null;
  private port: TunPort | null = null;
  private served: Served<C>[] = [];
  private sync: Repeating | null = null;
  private syncing: Promise<void> = Promise.resolve();
  private readonly table: number;

  constructor(
    readonly configs: VirtualServerConfig[],
    private readonly balancer: Balancer<C>,
    private readonly options: DirectorServiceOptions,
  ) {
    this.table = 20000 + (options.id % 1000);
  }

  get tunName(): string {
    return `fulcrum-l4-${this.options.id % 1000}`;
  }

  async start(): Promise<void> {
    for (const vs of this.configs) {
      const why = unservable(vs);
      if (why) throw new Error(`virtual server ${vs.name}: ${why}`);
      if (!this.balancer.get(vs.pool)) throw new Error(`virtual server ${vs.name}: no pool ${vs.pool}`);
    }
    const director = this.director = await Director.create({ capacity: this.options.capacity ?? DEFAULT_CAPACITY });
    try {
      this.port = TunPort.open(this.tunName, director);
      await prepareTun(this.tunName, this.table);
      for (const [i, vs] of this.configs.entries()) await this.serve(vs, i);
      this.sync = timers.every(this.options.syncMs ?? 100, () => { this.syncing = this.syncing.then(() => this.syncAll()); });
      addPoll(this.poll, POLL_MS);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private readonly poll = (): void => {
    this.port?.poll();
  };

  private async serve(vs: VirtualServerConfig, i: number): Promise<void> {
    const pool = this.balancer.get(vs.pool)!;
    const ifindex = interfaceIndex(vs.interface!);
    if (ifindex === null) throw new Error(`virtual server ${vs.name}: interface ${vs.interface} does not exist`);
    const servers = this.specsOf(vs, pool);
    this.director!.addService({
      name: vs.name, address: vs.address, port: vs.port, protocol: vs.protocol, kind: vs.lbKind,
      scheduler: pool.config.scheduler, servers, persistenceSeconds: vs.persistenceMs / 1000, mtu: vs.mtu,
    });
    const steering = new Steering({
      tun: this.tunName, interface: vs.interface!, vip: vs.address, port: vs.port, protocol: vs.protocol,
      pref: 20000 + (this.options.id % 100) * 100 + (i % 100), table: this.table,
    });
    const vip: VirtualAddress = { family: 4, address: parseIP(vs.address)!.bytes, prefixLength: 32, text: `${vs.address}/32` };
    const served: Served<C> = { config: vs, pool, steering, vip, ifindex, addedVip: false, layout: JSON.stringify(servers), states: new Map() };
    this.served.push(served);
    await steering.start(servers);
    this.applyStates(served);
    if (!this.options.managedByVrrp(vs.address)) {
      const problems = addVirtualAddresses(ifindex, [vip]);
      if (problems.length > 0) throw new Error(`virtual server ${vs.name}: ${problems.join("; ")}`);
      served.addedVip = true;
    }
  }

  private specsOf(vs: VirtualServerConfig, pool: Pool<C>): RealServerSpec[] {
    return pool.servers.map((s) => {
      if (parseIP(s.host)?.family !== vs.family) {
        throw new Error(`virtual server ${vs.name}: pool ${pool.name} server ${s.host} is not an IPv${vs.family} address`);
      }
      return { address: s.host, port: s.port, weight: s.weight };
    });
  }

  // Pools change under the director: membership and weights re-lay its real servers (those that
  // stay keep their connections), down reasons set each one's state.
  private async syncAll(): Promise<void> {
    for (const s of this.served) {
      if (!this.director) return;
      try {
        const servers = this.specsOf(s.config, s.pool);
        const layout = JSON.stringify(servers);
        if (layout !== s.layout) {
          this.director.setServers(s.config.name, servers);
          s.layout = layout;
          s.states.clear();
          await s.steering.setServers(servers);
        }
        this.applyStates(s);
      } catch (e) {
        console.error(`fulcrum: director: virtual server ${s.config.name}: ${(e as Error).message}`);
      }
    }
  }

  private applyStates(s: Served<C>): void {
    for (const server of s.pool.servers) {
      const st = stateOf(server);
      const state = st === STATE_DOWN ? "down" : st === STATE_DRAIN ? "drain" : "up";
      const key = `${server.host}|${server.port}`;
      const was = s.states.get(key);
      if (was === state) continue;
      s.states.set(key, state);
      this.director!.setServerState(s.config.name, server.host, server.port, state);
      // A first placement is no change worth a line; a server going in or out is.
      if (was !== undefined) console.log(`fulcrum: director: ${s.config.name}: real server ${server.host}:${server.port} ${state}`);
    }
  }

  /** The VIP first (no new packets come), then the steering, the TUN and the tables. */
  async stop(): Promise<void> {
    removePoll(this.poll);
    this.sync?.stop();
    this.sync = null;
    await this.syncing;
    for (const s of this.served.splice(0).reverse()) {
      if (s.addedVip) {
        for (const p of removeVirtualAddresses(s.ifindex, [s.vip])) console.error(`fulcrum: director: ${s.config.name}: ${p}`);
      }
      await s.steering.stop().catch((e) => console.error(`fulcrum: ${(e as Error).message}`));
    }
    await releaseTun(this.table).catch(() => {});
    this.port?.close();
    this.port = null;
    this.director = null;
  }

  /** One line per virtual server, as the listeners' "listening on" lines. */
  directingLines(): string[] {
    return this.configs.map((v) => `fulcrum: directing ${v.protocol}://${v.address}:${v.port} (${v.name}, ${v.lbKind} on ${v.interface} through ${this.tunName})`);
  }

  /** The director's tables and counters now (null before start). */
  state(): DirectorState | null {
    return this.director && this.port ? readDirector(this.director, this.port) : null;
  }
}

/** A plain read of a director: its services and real servers (as `ipvsadm -Ln --stats`), the
 * drop and forward counters, and what the port moved. */
export function readDirector(director: Director, port: TunPort): DirectorState {
  return {
    services: director.listServices(),
    counters: director.counters(),
    port: { ...port.counters },
    text: director.formatServices(),
  };
}
