// The packet director as a part of a generation: one Director (its own data plane) with a
// virtual server per `virtual_servers:` entry, fed from the named balancer pool (servers,
// scheduler, weights, and the down reasons health, admin and drain set: a server out takes no
// new flows), the ports that move the packets (nat, tun and fullnat: one TUN, the kernel routing
// what the director writes back; dr: an AF_PACKET socket per virtual server), the kernel steering
// that hands packets to them, and the VIP (and fullnat's local addresses) on the interface unless
// a VRRP instance manages them. Started after the listeners, stopped before them (the addresses go
// first).
import { runtime } from "../../runtime/index.ts";
import { timers, type Repeating } from "../../core/timer.ts";
import { formatHostPort } from "../../config/address.ts";
import type { Balancer } from "../../balancer/balancer.ts";
import type { BalancerPoolConfig } from "../../balancer/config.ts";
import { stateOf, type Pool } from "../../balancer/pool.ts";
import { STATE_DOWN, STATE_DRAIN } from "../../core/dataplane.ts";
import { addVirtualAddresses, interfaceFacts, removeVirtualAddresses, type VirtualAddress } from "../../vrrp/addresses.ts";
import { formatIP, parseIP } from "../../vrrp/ip.ts";
import { unservable, type VirtualServerConfig } from "./config.ts";
import type { LbKind } from "./names.ts";
import { type ConnectionRow, Director, type RealServerSpec, type ServiceRow } from "./director.ts";
import type { PortCounters } from "./io/batch.ts";
import { TunPort } from "./io/tun-port.ts";
import { FramePort } from "./io/frame-port.ts";
import { PortReader, type ReadablePort } from "./io/reader.ts";
import { prepareTun, prepareTun6, releaseTun, type SteerSpec, Steering } from "./io/steer.ts";
import { NeighbourReader, neighbourKey, nudge } from "./io/neighbours.ts";

export interface DirectorServiceOptions {
  /** Generation id: names the TUN and keeps the kernel steering of two generations apart. */
  id: number;
  /** True for an address (a VIP, a local address) a VRRP instance adds and removes (the director
   * then leaves it alone). */
  managedByVrrp(vip: string): boolean;
  /** Connection table entries. */
  capacity?: number;
  /** The keyed hash's seed (config `hash_seed` or etcd's shared one): nodes with the same seed
   * make the same keyed picks, so a flow ECMP moves between them keeps its server (dr, tun). */
  seed?: number | null;
  /** How often pools are read for changes (health, admin, membership) and MACs looked up. */
  syncMs?: number;
}

/** What the director's views show: `fulcrum l4` and the admin API read this. */
export interface DirectorState {
  services: ServiceRow[];
  counters: Record<string, number>;
  /** What each port moved: "tun" and "packet:<virtual server>". */
  ports: Record<string, PortCounters>;
  /** `ipvsadm -Ln` as text. */
  text: string;
}

const DEFAULT_CAPACITY = 65536;
interface Port extends ReadablePort { readonly counters: PortCounters; close(): void }

/** Kinds whose packets leave through the shared TUN: written back into it, the kernel routes them
 * (nat and fullnat: rewritten packets and replies; tun: the IPIP packets to servers, which may sit
 * behind a router, and the ICMP "fragmentation needed" sent back to clients). */
const THROUGH_TUN: ReadonlySet<LbKind> = new Set<LbKind>(["nat", "tun", "fullnat"]);

/** tun: the outer header's source and the path MTU the encapsulated packets must fit. */
interface Tunnel { source: string; mtu: number }

interface Served<C extends BalancerPoolConfig> {
  config: VirtualServerConfig;
  pool: Pool<C>;
  steering: Steering;
  ifindex: number;
  /** The addresses this director added to the interface (the VIP, local addresses), to remove on stop. */
  held: VirtualAddress[];
  layout: string;
  states: Map<string, string>;
  /** Effective weights applied, by real server. */
  weights: Map<string, number>;
  /** dr: real servers' MACs from the neighbour table, by address. */
  macs: Map<string, string>;
  framePort: FramePort | null;
  /** tun's outer source and MTU (null for the other kinds). */
  tunnel: Tunnel | null;
}

/** Addresses this process added (VIPs, local addresses), by interface and address, with how many
 * directors hold each: during a reload the next generation's director holds an address before the
 * old one lets it go. */
const addressHolders = new Map<string, number>();

const throughTun = (vs: VirtualServerConfig): boolean => THROUGH_TUN.has(vs.lbKind);

/** A VIP or local address as an address of the interface: a host address of its family. IPv6:
 * added without duplicate address detection (usable at once) and deprecated, since a /128 would
 * otherwise be this host's preferred source toward the servers' subnet, and dr servers keep
 * replies to the VIP to themselves (IPv4 picks the subnet's primary address anyway). */
function hostAddress(text: string): VirtualAddress {
  const ip = parseIP(text)!;
  const bits = ip.family === 6 ? 128 : 32;
  return { family: ip.family, address: ip.bytes, prefixLength: bits, text: `${text}/${bits}`, notSource: ip.family === 6 };
}

/** An interface's MTU, from sysfs. */
async function interfaceMtu(name: string): Promise<number> {
  const mtu = Number((await runtime.readTextFile(`/sys/class/net/${name}/mtu`)).trim());
  if (!Number.isInteger(mtu) || mtu < 68) throw new Error(`interface ${name}: no MTU readable in /sys/class/net`);
  return mtu;
}

/** tun's setup: the outer source is the interface's own primary IPv4 address, or for an IPv6 VIP
 * its first usable global IPv6 one (not the VIP: a real server holds the VIP itself and would drop
 * packets from it as martians), and the MTU is the virtual server's `mtu` or the interface's. */
async function tunnelOf(vs: VirtualServerConfig, vip: VirtualAddress): Promise<Tunnel> {
  const facts = interfaceFacts(vs.interface!, [vip]);
  const source = vip.family === 6 ? facts.primaryIPv6 : facts.primaryIPv4;
  if (source === null) {
    const what = vip.family === 6 ? "a global IPv6 address (not deprecated)" : "an IPv4 address";
    throw new Error(`virtual server ${vs.name}: tun needs ${what} on ${vs.interface} besides the VIP, as the tunnels' source`);
  }
  return { source: formatIP(source), mtu: vs.mtu ?? await interfaceMtu(vs.interface!) };
}

export class DirectorService<C extends BalancerPoolConfig = BalancerPoolConfig> {
  private director: Director | null = null;
  private tunPort: TunPort | null = null;
  private served: Served<C>[] = [];
  private sync: Repeating | null = null;
  /** Reads the ports: at once while packets flow, a blocking wait off the event loop while idle. */
  private readonly reader = new PortReader(() => this.ports);
  private syncing: Promise<void> = Promise.resolve();
  private table: number;
  private readonly neighbours = new NeighbourReader();
  /** The nat TUN's name (kept from the generation this one took the director over from). */
  tunName: string;

  constructor(
    readonly configs: VirtualServerConfig[],
    private readonly balancer: Balancer<C>,
    private readonly options: DirectorServiceOptions,
  ) {
    this.table = 20000 + (options.id % 1000);
    this.tunName = `fulcrum-l4-${options.id % 1000}`;
  }

  private get ports(): Port[] {
    const ports: Port[] = this.served.flatMap((s) => s.framePort ? [s.framePort] : []);
    return this.tunPort ? [this.tunPort, ...ports] : ports;
  }

  /** Starts directing. `previous`: the running generation's director (a reload); when the
   * virtual servers are unchanged this one takes its table, ports, steering and VIPs over, so
   * established connections go on, and follows the new pools from here. */
  async start(previous?: DirectorService<C>): Promise<void> {
    for (const vs of this.configs) {
      const why = unservable(vs);
      if (why) throw new Error(`virtual server ${vs.name}: ${why}`);
      if (!this.balancer.get(vs.pool)) throw new Error(`virtual server ${vs.name}: no pool ${vs.pool}`);
    }
    if (previous?.director && JSON.stringify(previous.configs) === JSON.stringify(this.configs)) {
      this.takeOver(previous);
      return;
    }
    const director = this.director = await Director.create({
      capacity: this.options.capacity ?? DEFAULT_CAPACITY, seed: this.options.seed ?? undefined,
      localPortSeed: crypto.getRandomValues(new Uint32Array(1))[0],
    });
    try {
      if (this.configs.some(throughTun)) {
        this.tunPort = TunPort.open(this.tunName, director);
        await prepareTun(this.tunName, this.table);
        if (this.configs.some((v) => throughTun(v) && v.family === 6)) await prepareTun6(this.tunName, this.table);
      }
      for (const [i, vs] of this.configs.entries()) await this.serve(vs, i);
      this.startTimers();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private takeOver(previous: DirectorService<C>): void {
    previous.letGo();
    this.director = previous.director;
    this.tunPort = previous.tunPort;
    this.table = previous.table;
    this.tunName = previous.tunName;
    this.served = previous.served.map((s) => ({ ...s, pool: this.balancer.get(s.config.pool)! }));
    previous.director = null;
    previous.tunPort = null;
    previous.served = [];
    this.startTimers();
    console.log(`fulcrum: director: its connection table, ports and steering carried over (${this.served.length} virtual servers)`);
  }

  /** A start that failed after this took `previous`'s director over: it goes back. */
  handBack(previous: DirectorService<C>): void {
    if (this.director && previous.director === null && JSON.stringify(previous.configs) === JSON.stringify(this.configs)) {
      previous.takeOver(this);
    }
  }

  // The old generation's side of a takeover: it stops reading; what it had is the next one's.
  private letGo(): void {
    this.reader.stop();
    this.sync?.stop();
    this.sync = null;
  }

  private startTimers(): void {
    this.sync = timers.every(this.options.syncMs ?? 100, () => { this.syncing = this.syncing.then(() => this.syncAll()); });
    this.reader.start();
  }

  private async serve(vs: VirtualServerConfig, i: number): Promise<void> {
    const pool = this.balancer.get(vs.pool)!;
    const facts = interfaceFacts(vs.interface!);
    const dr = vs.lbKind === "dr";
    const macs = new Map<string, string>();
    const servers = this.specsOf(vs, pool, macs);
    const tunnel = vs.lbKind === "tun" ? await tunnelOf(vs, hostAddress(vs.address)) : null;
    this.director!.addService({
      name: vs.name, address: vs.address, port: vs.port, protocol: vs.protocol, kind: vs.lbKind,
      scheduler: pool.config.scheduler, servers, persistenceSeconds: vs.persistenceMs / 1000,
      mtu: tunnel?.mtu ?? vs.mtu ?? undefined, sourceAddress: tunnel?.source,
      mac: dr ? [...facts.mac].map((b) => b.toString(16).padStart(2, "0")).join(":") : undefined,
      localAddresses: vs.localAddresses, toa: vs.toa, proxyProtocol: vs.proxyProtocol === "v2",
    });
    const pref = 20000 + (this.options.id % 100) * 100 + (i % 100);
    const base = { interface: vs.interface!, vip: vs.address, port: vs.port, protocol: vs.protocol, pref, table: this.table };
    const steer: Record<VirtualServerConfig["lbKind"], () => SteerSpec> = {
      nat: () => ({ ...base, mode: "nat", tun: this.tunName }),
      fullnat: () => ({ ...base, mode: "fullnat", tun: this.tunName, localAddresses: vs.localAddresses }),
      dr: () => ({ ...base, mode: "direct", tun: `fulcrum-dr-${this.options.id % 100}-${i % 100}` }),
      tun: () => ({ ...base, mode: "direct", tun: this.tunName }),
    };
    const steering = new Steering(steer[vs.lbKind]());
    const served: Served<C> = {
      config: vs, pool, steering, ifindex: facts.ifindex, held: [], layout: JSON.stringify(servers),
      states: new Map(), weights: new Map(), macs, framePort: null, tunnel,
    };
    this.served.push(served);
    // The port before the steering: once the stack stops seeing the VIP's packets, someone must.
    if (dr) {
      served.framePort = FramePort.open(steering.spec.tun, this.director!, facts.ifindex);
      await prepareTun(steering.spec.tun, null);
    }
    await steering.start(servers);
    this.applyStates(served);
    for (const address of [vs.address, ...vs.localAddresses]) this.hold(served, address);
  }

  // An address on the virtual server's interface, unless VRRP manages it; shared between the
  // directors of two generations during a reload.
  private hold(s: Served<C>, text: string): void {
    if (this.options.managedByVrrp(text)) return;
    const address = hostAddress(text);
    const key = `${s.ifindex}|${address.text}`;
    const holders = addressHolders.get(key) ?? 0;
    if (holders === 0) {
      const problems = addVirtualAddresses(s.ifindex, [address]);
      if (problems.length > 0) throw new Error(`virtual server ${s.config.name}: ${problems.join("; ")}`);
    }
    addressHolders.set(key, holders + 1);
    s.held.push(address);
  }

  private release(s: Served<C>): void {
    for (const address of s.held.splice(0)) {
      const key = `${s.ifindex}|${address.text}`;
      const holders = addressHolders.get(key) ?? 0;
      if (holders > 1) { addressHolders.set(key, holders - 1); continue; }
      addressHolders.delete(key);
      for (const p of removeVirtualAddresses(s.ifindex, [address])) console.error(`fulcrum: director: ${s.config.name}: ${p}`);
    }
  }

  // dr: the MACs of real servers not known yet, from the neighbour table; the others are asked for.
  // Returns a line per MAC learnt, for after the director has it.
  private learnMacs(s: Served<C>, table: Map<string, string>): string[] {
    const learnt: string[] = [];
    for (const r of s.pool.servers) {
      if (s.macs.has(r.host)) continue;
      const mac = table.get(neighbourKey(r.host));
      if (mac === undefined) { nudge(r.host); continue; }
      s.macs.set(r.host, mac);
      learnt.push(`fulcrum: director: ${s.config.name}: real server ${formatHostPort(r)} is at ${mac}`);
    }
    return learnt;
  }

  private specsOf(vs: VirtualServerConfig, pool: Pool<C>, macs: Map<string, string>): RealServerSpec[] {
    return pool.servers.map((s) => {
      if (parseIP(s.host)?.family !== vs.family) {
        throw new Error(`virtual server ${vs.name}: pool ${pool.name} server ${s.host} is not an IPv${vs.family} address`);
      }
      // dr and tun deliver the packet as the client sent it (to the VIP's port).
      if ((vs.lbKind === "dr" || vs.lbKind === "tun") && s.port !== vs.port) {
        throw new Error(`virtual server ${vs.name}: ${vs.lbKind} keeps the port: pool ${pool.name} server ${s.host}:${s.port} must listen on ${vs.port}`);
      }
      return { address: s.host, port: s.port, weight: s.weight, mac: macs.get(s.host) };
    });
  }

  // Pools change under the director: membership, weights and (dr) MACs learnt re-lay its real
  // servers (those that stay keep their connections); down reasons set each one's state.
  private async syncAll(): Promise<void> {
    // dr: the neighbour table read once per sync, for the families of the servers still unresolved.
    const unresolved = this.served.filter((s) => s.config.lbKind === "dr" && s.pool.servers.some((r) => !s.macs.has(r.host)));
    const sought = unresolved.flatMap((s) => s.pool.servers.filter((r) => !s.macs.has(r.host)).map((r) => r.host));
    const table = unresolved.length > 0 ? await this.neighbours.read(new Set(unresolved.map((s) => s.config.family)), sought) : new Map<string, string>();
    for (const s of this.served) {
      if (!this.director) return;
      try {
        const learnt = unresolved.includes(s) ? this.learnMacs(s, table) : [];
        const servers = this.specsOf(s.config, s.pool, s.macs);
        const layout = JSON.stringify(servers);
        if (layout !== s.layout) {
          this.director.setServers(s.config.name, servers);
          s.layout = layout;
          await s.steering.setServers(servers);
          // A new layout starts every server up: set each one's state again.
          this.applyStates(s, true);
        } else {
          this.applyStates(s);
        }
        for (const line of learnt) console.log(line);
      } catch (e) {
        console.error(`fulcrum: director: virtual server ${s.config.name}: ${(e as Error).message}`);
      }
    }
  }

  // Each real server's state (down reasons) and effective weight (slow start, agents), as the pool has them.
  private applyStates(s: Served<C>, all = false): void {
    for (const server of s.pool.servers) {
      const st = stateOf(server);
      // dr: a server whose MAC is not known yet cannot be sent to.
      const unreachable = s.config.lbKind === "dr" && !s.macs.has(server.host);
      const state = st === STATE_DOWN || unreachable ? "down" : st === STATE_DRAIN ? "drain" : "up";
      const key = `${server.host}|${server.port}`;
      const weight = s.pool.effectiveWeight(server);
      if (all || s.weights.get(key) !== weight) {
        s.weights.set(key, weight);
        this.director!.setEffectiveWeight(s.config.name, server.host, server.port, weight);
      }
      const was = s.states.get(key);
      if (was === state && !all) continue;
      s.states.set(key, state);
      this.director!.setServerState(s.config.name, server.host, server.port, state);
      // A first placement is no change worth a line; a server going in or out is.
      if (was !== undefined && was !== state) console.log(`fulcrum: director: ${s.config.name}: real server ${formatHostPort(server)} ${state}`);
    }
  }

  /** The VIP and local addresses first (no new packets come), then the steering, the ports and the tables. */
  async stop(): Promise<void> {
    this.reader.stop();
    this.sync?.stop();
    this.sync = null;
    await this.syncing;
    for (const s of this.served.splice(0).reverse()) {
      this.release(s);
      await s.steering.stop().catch((e) => console.error(`fulcrum: ${(e as Error).message}`));
      s.framePort?.close();
    }
    if (this.tunPort) {
      await releaseTun(this.table).catch(() => {});
      this.tunPort.close();
      this.tunPort = null;
    }
    this.director = null;
  }

  /** The running director (the sync daemon exports and fills its table); null when stopped. */
  get running(): Director | null {
    return this.director;
  }

  /** One line per virtual server, as the listeners' "listening on" lines. */
  directingLines(): string[] {
    return this.configs.map((v) => {
      // By name: a generation that took the director over holds the previous one's (equal) configs.
      const tunnel = this.served.find((s) => s.config.name === v.name)?.tunnel;
      const through = v.lbKind === "dr" ? "through a TUN in, AF_PACKET out"
        : tunnel ? `through ${this.tunName}, ${v.family === 6 ? "IPv6-in-IPv6" : "IPIP"} from ${tunnel.source} mtu ${tunnel.mtu}` : `through ${this.tunName}`;
      const vip = v.family === 6 ? `[${v.address}]` : v.address;
      return `fulcrum: directing ${v.protocol}://${vip}:${v.port} (${v.name}, ${v.lbKind} on ${v.interface} ${through})`;
    });
  }

  /** The director's tables and counters now (null before start). */
  /** The first `limit` connections (ipvsadm -Lnc), null while not directing. */
  connections(limit: number): ConnectionRow[] | null {
    return this.director?.listConnections(limit) ?? null;
  }

  state(): DirectorState | null {
    if (!this.director) return null;
    const ports: Record<string, PortCounters> = {};
    if (this.tunPort) ports.tun = this.tunPort.counters;
    for (const s of this.served) if (s.framePort) ports[`packet:${s.config.name}`] = s.framePort.counters;
    return readDirector(this.director, ports);
  }
}

/** A plain read of a director: its services and real servers (as `ipvsadm -Ln --stats`), the
 * drop and forward counters, and what its ports moved. */
export function readDirector(director: Director, ports: Record<string, PortCounters>): DirectorState {
  const copy: Record<string, PortCounters> = {};
  for (const [name, c] of Object.entries(ports)) copy[name] = { ...c };
  return { services: director.listServices(), counters: director.counters(), ports: copy, text: director.formatServices() };
}
