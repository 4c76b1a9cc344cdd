// The director's control plane (Katran's split): it fills the virtual-service, real-server and
// local-address tables the kernels read, maps real servers to the data plane's server slots as
// pools change, reads the counters, and lists services and connections as `ipvsadm -Ln` and
// `-Lnc` do. Packets go through `processBatch` (WASM, or its TS twin) over descriptors in memory.
import * as L from "../../core/layout.ts";
import { DataPlane, STATE_UP, STATE_DOWN, STATE_DRAIN, type PoolHandle, type ServerState } from "../../core/dataplane.ts";
import { wasmBytes } from "../../core/wasm.ts";
import { RangeAllocator } from "../../core/ranges.ts";
import { fmix32 } from "../../core/hash.ts";
import { schedulerInfo, type SchedulerName } from "../../core/schedulers.ts";
import { parseIP, formatIP, type Family } from "../../vrrp/ip.ts";
import { adviseDirectorHugePages, directorMemoryBytes, maxCapacity } from "./memory.ts";
import { directorTwin, type DirectorKernels } from "./twin/director.ts";
import {
  LB_KINDS, type LbKind, REASONS, REASON_NAMES, TABLE_COUNTERS, STATE_NAMES, DEFAULT_TIMEOUTS, type StateName,
} from "./names.ts";

export interface RealServerSpec {
  address: string;
  port: number;
  weight?: number;
  /** The server's MAC (dr; nat, fullnat and tun on Ethernet frames). */
  mac?: string;
}

export interface VirtualServerSpec {
  name: string;
  /** The VIP, IPv4 or IPv6. */
  address: string;
  port: number;
  protocol: "tcp" | "udp";
  kind: LbKind;
  scheduler: SchedulerName;
  servers: RealServerSpec[];
  /** LVS persistence: a client stays on its server this long after its last new connection. */
  persistenceSeconds?: number;
  /** fullnat: the sources toward the servers. */
  localAddresses?: string[];
  /** Path MTU toward the servers (tun's encapsulation, TOA's room); 1500 by default. */
  mtu?: number;
  /** The director's MAC and the next hop toward clients, for Ethernet frames. */
  mac?: string;
  gatewayMac?: string;
  /** The director's address toward servers (tun's outer source); the first local address or the VIP. */
  sourceAddress?: string;
  /** fullnat over TCP: the client's address in TCP option 254 on the handshake. */
  toa?: boolean;
  /** fullnat over TCP: a PROXY protocol v2 header written before the client's first bytes. */
  proxyProtocol?: boolean;
}

export interface DirectorOptions {
  /** Connection table entries (templates count too); memory is sized for them up front. */
  capacity: number;
  impl?: "wasm" | "ts";
  /** Seconds per state, IPVS's by default. */
  timeouts?: Partial<Record<StateName, number>>;
  seed?: number;
  /** Seeds the order fullnat's local ports are handed out in (the hash seed by default).
   * `fulcrum run` draws one per start, so a restarted director does not hand out the ports of its
   * predecessor's last connections first: the servers may still hold those in TIME_WAIT. */
  localPortSeed?: number;
  /** Huge pages for the table where the kernel grants them on advice (default true). */
  hugePages?: boolean;
}

export interface ConnectionRow {
  entry: number;
  protocol: "TCP" | "UDP";
  state: StateName;
  /** Seconds until it expires (as ipvsadm -Lnc's expire column). */
  expiresIn: number;
  client: string;
  virtual: string;
  local: string;
  server: string;
  template: boolean;
}

export interface RealServerRow {
  address: string;
  weight: number;
  active: number;
  inactive: number;
  connections: number;
  packetsIn: number;
  packetsOut: number;
}

export interface ServiceRow {
  name: string;
  protocol: string;
  virtual: string;
  kind: LbKind;
  scheduler: SchedulerName;
  persistenceSeconds: number;
  connections: number;
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  servers: RealServerRow[];
}

interface Dest { index: number; spec: RealServerSpec; }
interface Service {
  index: number;
  spec: VirtualServerSpec;
  pool: PoolHandle;
  dests: Dest[];
  laddrFirst: number;
  laddrCount: number;
}

function ipBytes(text: string, what: string): { family: Family; bytes: Uint8Array } {
  const ip = parseIP(text);
  if (ip === null) throw new Error(`director: ${what} "${text}" is not an IPv4 or IPv6 address`);
  return ip;
}

function macBytes(text: string | undefined): Uint8Array {
  if (text === undefined) return new Uint8Array(6);
  const parts = text.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9A-Fa-f]{2}$/.test(p))) {
    throw new Error(`director: MAC "${text}" is not six hex pairs`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

const swap16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);

/** Whether a node takes over a TCP flow it never saw the SYN of (ECMP moved it here), as Katran
 * does: only where every node of a fleet picks the same server for the flow and the server answers
 * the client itself. The hash-table schedulers (dh, sh, mh, ketama) pick from the key (the client
 * address, as for a SYN) and the server set alone; rr, wrr, lc, wlc, lblc and the rest depend on
 * cursors or counts that differ between nodes. nat and fullnat replies need the mapping held by
 * the node that saw the SYN, so only dr and tun qualify. */
export function adoptsMovedFlows(kind: LbKind, scheduler: SchedulerName): boolean {
  const table = schedulerInfo(scheduler).table;
  return (kind === "dr" || kind === "tun") && (table === "hash" || table === "maglev" || table === "ketama");
}

export class Director {
  readonly plane: DataPlane;
  readonly kernels: DirectorKernels;
  readonly capacity: number;
  readonly impl: "wasm" | "ts";
  /** Bytes of the table advised onto huge pages (0: small pages). */
  readonly hugePageBytes: number;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly services = new Map<string, Service>();
  private readonly vsSlots = new RangeAllocator(0, L.MAX_VS);
  private readonly destSlots = new RangeAllocator(0, L.MAX_DESTS);
  private readonly laddrSlots = new RangeAllocator(0, L.MAX_LADDRS);
  /** Dests out of every pool, kept until their connections are gone (their indices are in entries). */
  private retired: number[] = [];
  private now = 0;
  private seed: number;
  private readonly localPortSeed: number;

  /** A data plane sized for the table, and a director on it. */
  static async create(options: DirectorOptions): Promise<Director> {
    const impl = options.impl ?? "wasm";
    const memoryBytes = directorMemoryBytes(options.capacity);
    // wasm32 memory ends at 4 GiB: about 35 million connections.
    if (!Number.isInteger(options.capacity) || options.capacity < 1 || memoryBytes > 2 ** 32) {
      throw new Error(`director: capacity ${options.capacity} is not a number of connections from 1 to ${maxCapacity()}`);
    }
    const plane = impl === "wasm"
      ? new DataPlane({ impl: "wasm", wasm: await wasmBytes(), seed: options.seed ?? null, memoryBytes })
      : new DataPlane({ impl: "ts", seed: options.seed ?? null, memoryBytes });
    return new Director(plane, options);
  }

  constructor(plane: DataPlane, options: DirectorOptions) {
    this.plane = plane;
    this.impl = options.impl ?? "wasm";
    this.capacity = options.capacity;
    this.seed = options.seed ?? 1;
    this.localPortSeed = options.localPortSeed ?? this.seed;
    if (this.impl === "wasm") {
      if (!plane.wasmExports) throw new Error("director: the wasm kernels need a data plane with the WASM module");
      this.kernels = plane.wasmExports as unknown as DirectorKernels;
    } else {
      this.kernels = directorTwin(plane.memory);
    }
    this.hugePageBytes = options.hugePages === false ? 0 : adviseDirectorHugePages(plane.memory, options.capacity);
    this.bytes = new Uint8Array(plane.memory);
    this.view = new DataView(plane.memory);
    this.view.setInt32(L.DIR_SLOT2DEST_OFF, -1, true);
    this.bytes.fill(0xff, L.DIR_SLOT2DEST_OFF, L.DIR_SLOT2DEST_OFF + L.MAX_SERVERS * 4);
    this.setTimeouts({ ...DEFAULT_TIMEOUTS, ...options.timeouts });
    if (this.kernels.directorInit(options.capacity) !== 0) {
      throw new Error(`director: memory does not hold ${options.capacity} connections (size the plane with directorMemoryBytes)`);
    }
  }

  /** Seconds per state (IPVS's `ipvsadm --set` and more). */
  setTimeouts(timeouts: Partial<Record<StateName, number>>): void {
    for (const [name, seconds] of Object.entries(timeouts)) {
      const state = STATE_NAMES.indexOf(name as StateName);
      if (state < 0 || seconds === undefined) continue;
      this.view.setUint32(L.DIR_OFF + L.DG_TIMEOUTS + state * 4, Math.round(seconds * 1000), true);
    }
  }

  addService(spec: VirtualServerSpec): void {
    if (this.services.has(spec.name)) throw new Error(`director: virtual server "${spec.name}" exists`);
    const vip = ipBytes(spec.address, "virtual address");
    const laddrs = (spec.localAddresses ?? []).map((a) => ipBytes(a, "local address"));
    if (spec.kind === "fullnat" && laddrs.length === 0) throw new Error(`director: fullnat "${spec.name}" needs local_addresses`);
    if ((spec.toa || spec.proxyProtocol) && (spec.kind !== "fullnat" || spec.protocol !== "tcp")) {
      throw new Error(`director: "${spec.name}": toa and proxy_protocol are for fullnat over tcp`);
    }
    if (laddrs.some((a) => a.family !== vip.family)) throw new Error(`director: "${spec.name}": local addresses must be IPv${vip.family}`);
    const index = this.vsSlots.alloc(1);
    if (index < 0) throw new Error(`director: more than ${L.MAX_VS} virtual servers`);
    const laddrFirst = laddrs.length > 0 ? this.laddrSlots.alloc(laddrs.length) : 0;
    if (laddrFirst < 0) { this.vsSlots.release(index, 1); throw new Error(`director: more than ${L.MAX_LADDRS} local addresses`); }
    const pool = this.plane.addPool({ scheduler: spec.scheduler, servers: [] });
    const svc: Service = { index, spec, pool, dests: [], laddrFirst, laddrCount: laddrs.length };
    this.services.set(spec.name, svc);
    const p = L.DIR_VS_OFF + index * L.VS_SIZE;
    this.bytes.fill(0, p, p + L.VS_SIZE);
    this.bytes.set(vip.bytes, p + L.VS_ADDR);
    this.view.setUint16(p + L.VS_PORT, swap16(spec.port), true);
    this.bytes[p + L.VS_PROTO] = spec.protocol === "tcp" ? 6 : 17;
    this.bytes[p + L.VS_FAMILY] = vip.family;
    this.bytes[p + L.VS_KIND] = LB_KINDS[spec.kind];
    this.bytes[p + L.VS_FLAGS] = L.VSF_USED | (spec.toa ? L.VSF_TOA : 0) | (spec.proxyProtocol ? L.VSF_PROXY : 0)
      | (spec.protocol === "tcp" && adoptsMovedFlows(spec.kind, spec.scheduler) ? L.VSF_ADOPT : 0);
    this.bytes[p + L.VS_LCOUNT] = laddrs.length;
    this.bytes[p + L.VS_LFIRST] = laddrFirst;
    this.view.setInt32(p + L.VS_POOL, pool.id, true);
    this.view.setUint32(p + L.VS_PERSIST, Math.round((spec.persistenceSeconds ?? 0) * 1000), true);
    this.view.setUint32(p + L.VS_MTU, spec.mtu ?? 1500, true);
    this.bytes.set(macBytes(spec.mac), p + L.VS_MAC);
    this.bytes.set(macBytes(spec.gatewayMac), p + L.VS_GWMAC);
    const src = spec.sourceAddress ? ipBytes(spec.sourceAddress, "source address") : laddrs[0] ?? vip;
    this.bytes.set(src.bytes, p + L.VS_SRC);
    laddrs.forEach((a, k) => this.fillLocalAddress(laddrFirst + k, a));
    this.setServers(spec.name, spec.servers);
    this.kernels.vsRebuild();
  }

  // A local address and its ring of free ports, shuffled so ports are not handed out in order.
  private fillLocalAddress(i: number, a: { family: Family; bytes: Uint8Array }): void {
    const l = L.DIR_LADDR_OFF + i * L.LADDR_SIZE;
    this.bytes.fill(0, l, l + L.LADDR_SIZE);
    this.bytes.set(a.bytes, l + L.L_ADDR);
    this.bytes[l + L.L_FAMILY] = a.family;
    const ports = new Uint16Array(this.bytes.buffer, L.DIR_PORTS_OFF + i * L.PORTS_STRIDE, L.LPORTS);
    for (let k = 0; k < L.LPORTS; k++) ports[k] = swap16(L.LPORT_MIN + k);
    let x = fmix32(this.localPortSeed ^ (i + 1)) || 1;
    for (let k = L.LPORTS - 1; k > 0; k--) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      const j = (x >>> 0) % (k + 1);
      const t = ports[k]; ports[k] = ports[j]; ports[j] = t;
    }
    this.view.setUint32(l + L.L_TOP, L.LPORTS, true);
    this.view.setUint32(l + L.L_HEAD, 0, true);
  }

  /** A virtual server's real servers become `servers` (live): those that stay keep their index,
   * counters and connections; removed ones keep their connections until they end. */
  setServers(name: string, servers: RealServerSpec[]): void {
    const svc = this.service(name);
    const key = (s: RealServerSpec) => `${s.address}|${s.port}`;
    const old = new Map(svc.dests.map((d) => [key(d.spec), d]));
    const dests: Dest[] = [];
    const carry: number[] = [];
    for (const s of servers) {
      const ip = ipBytes(s.address, "real server address");
      if (ip.family !== this.bytes[L.DIR_VS_OFF + svc.index * L.VS_SIZE + L.VS_FAMILY]) {
        throw new Error(`director: "${name}": real server ${s.address} is not of the VIP's family`);
      }
      const kept = old.get(key(s));
      if (kept) {
        old.delete(key(s));
        kept.spec = s;
        // A MAC learnt later (the neighbour table) reaches the dest it belongs to.
        this.bytes.set(macBytes(s.mac), this.destAt(kept.index) + L.D_MAC);
        dests.push(kept);
        carry.push(this.view.getInt32(this.destAt(kept.index) + L.D_SLOT, true));
        continue;
      }
      const index = this.allocDest();
      const d = this.destAt(index);
      this.bytes.fill(0, d, d + L.DEST_SIZE);
      this.bytes.set(ip.bytes, d + L.D_ADDR);
      this.view.setUint16(d + L.D_PORT, swap16(s.port), true);
      this.bytes[d + L.D_FAMILY] = ip.family;
      this.bytes[d + L.D_FLAGS] = L.DF_USED;
      this.bytes.set(macBytes(s.mac), d + L.D_MAC);
      this.view.setInt32(d + L.D_SLOT, -1, true);
      dests.push({ index, spec: s });
      carry.push(-1);
    }
    for (const gone of old.values()) {
      this.view.setInt32(this.destAt(gone.index) + L.D_SLOT, -1, true);
      this.retired.push(gone.index);
    }
    // Slots of the old layout map to nothing until the new one is written.
    for (let k = 0; k < svc.pool.count; k++) this.view.setInt32(L.DIR_SLOT2DEST_OFF + (svc.pool.base + k) * 4, -1, true);
    this.plane.setServers(svc.pool, servers.map((s) => ({
      address: `${s.address}:${s.port}`, weight: s.weight ?? 1,
    })), carry);
    svc.dests = dests;
    dests.forEach((dest, k) => {
      const slot = svc.pool.base + k;
      this.view.setInt32(this.destAt(dest.index) + L.D_SLOT, slot, true);
      this.view.setInt32(L.DIR_SLOT2DEST_OFF + slot * 4, dest.index, true);
      this.plane.active[slot] = this.view.getInt32(this.destAt(dest.index) + L.D_ACTIVE, true);
    });
  }

  private allocDest(): number {
    // Retired dests whose last connection is gone are free again.
    this.retired = this.retired.filter((i) => {
      const d = this.destAt(i);
      if (this.view.getInt32(d + L.D_ACTIVE, true) + this.view.getInt32(d + L.D_INACTIVE, true) > 0) return true;
      this.destSlots.release(i, 1);
      return false;
    });
    const index = this.destSlots.alloc(1);
    if (index < 0) throw new Error(`director: more than ${L.MAX_DESTS} real servers`);
    return index;
  }

  /** A real server up, down or draining (health, admin); with `reset`, its connections are
   * dropped as their next packet arrives (keepalived's inhibit_on_failure / expire_nodest_conn). */
  setServerState(name: string, address: string, port: number, state: "up" | "down" | "drain", reset = false): void {
    const svc = this.service(name);
    const k = svc.dests.findIndex((d) => d.spec.address === address && d.spec.port === port);
    if (k < 0) throw new Error(`director: "${name}" has no real server ${address}:${port}`);
    const states: Record<string, ServerState> = { up: STATE_UP, down: STATE_DOWN, drain: STATE_DRAIN };
    this.plane.setState(svc.pool.base + k, states[state]);
    const d = this.destAt(svc.dests[k].index);
    this.bytes[d + L.D_FLAGS] = L.DF_USED | (reset && state !== "up" ? L.DF_RESET : 0);
  }

  /** The weight a real server is scheduled with now (health's slow start and agents move it from
   * its configured weight). */
  setEffectiveWeight(name: string, address: string, port: number, weight: number): void {
    const svc = this.service(name);
    const k = svc.dests.findIndex((d) => d.spec.address === address && d.spec.port === port);
    if (k < 0) throw new Error(`director: "${name}" has no real server ${address}:${port}`);
    this.plane.setEffectiveWeight(svc.pool.base + k, weight);
  }

  /** Runs n descriptors (at DIR_DESC_OFF) at time nowMs; returns how many were forwarded. */
  processBatch(n: number, nowMs: number): number {
    this.now = nowMs >>> 0;
    return this.kernels.processBatch(n, this.now | 0);
  }

  /** Advances the clock with no packets (expiry on an idle director). */
  tick(nowMs: number): void {
    this.now = nowMs >>> 0;
    this.kernels.directorTick(this.now | 0);
  }

  /** Counters by reason and table event, and the entries in use. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    const read = (c: number) => Number(this.view.getBigUint64(L.DIR_COUNTERS_OFF + c * 8, true));
    for (const [name, code] of Object.entries(REASONS)) out[name] = read(code);
    for (const [name, code] of Object.entries(TABLE_COUNTERS)) out[name] = read(code);
    out.in_use = this.view.getUint32(L.DIR_OFF + L.DG_USED, true);
    return out;
  }

  /** Packets forwarded and dropped in all, from the reason counters. */
  totals(): { forwarded: number; dropped: number } {
    let forwarded = 0, dropped = 0;
    REASON_NAMES.forEach((name, code) => {
      if (!name) return;
      const n = Number(this.view.getBigUint64(L.DIR_COUNTERS_OFF + code * 8, true));
      if (code < L.R_DROP_FIRST) forwarded += n; else dropped += n;
    });
    return { forwarded, dropped };
  }

  /** What `ipvsadm -Ln --stats` shows: services, their real servers, counts. */
  listServices(): ServiceRow[] {
    return [...this.services.values()].map((svc) => {
      const p = L.DIR_VS_OFF + svc.index * L.VS_SIZE;
      const u64 = (o: number) => Number(this.view.getBigUint64(o, true));
      return {
        name: svc.spec.name, protocol: svc.spec.protocol.toUpperCase(),
        virtual: this.hostPort(p + L.VS_ADDR, p + L.VS_PORT, this.bytes[p + L.VS_FAMILY] === 6),
        kind: svc.spec.kind, scheduler: svc.spec.scheduler, persistenceSeconds: svc.spec.persistenceSeconds ?? 0,
        connections: u64(p + L.VS_CONNS), packetsIn: u64(p + L.VS_PKTS_IN), packetsOut: u64(p + L.VS_PKTS_OUT),
        bytesIn: u64(p + L.VS_BYTES_IN), bytesOut: u64(p + L.VS_BYTES_OUT),
        servers: svc.dests.map((dest, k) => {
          const d = this.destAt(dest.index);
          return {
            address: this.hostPort(d + L.D_ADDR, d + L.D_PORT, this.bytes[d + L.D_FAMILY] === 6),
            weight: this.plane.weight[svc.pool.base + k],
            active: this.view.getInt32(d + L.D_ACTIVE, true), inactive: this.view.getInt32(d + L.D_INACTIVE, true),
            connections: u64(d + L.D_CONNS), packetsIn: u64(d + L.D_PKTS_IN), packetsOut: u64(d + L.D_PKTS_OUT),
          };
        }),
      };
    });
  }

  /** What `ipvsadm -Lnc` shows: every connection and template in the table, the first `limit`.
   * A control-plane walk over the entries ever used, never on the packet path. */
  listConnections(limit = Infinity): ConnectionRow[] {
    const rows: ConnectionRow[] = [];
    const entries = this.view.getUint32(L.DIR_OFF + L.DG_ENTRIES, true);
    const hwm = this.view.getUint32(L.DIR_OFF + L.DG_HWM, true);
    for (let i = 0; i < hwm; i++) {
      const e = entries + i * L.CT_SIZE;
      const flags = this.bytes[e + L.CT_FLAGS];
      if ((flags & L.CTF_USED) === 0) continue;
      if (rows.length >= limit) break;
      const v6 = (flags & L.CTF_V6) !== 0, proto = this.bytes[e + L.CT_PROTO];
      const expire = this.view.getUint32(e + L.CT_EXPIRE, true);
      rows.push({
        entry: i, protocol: (proto & 63) === 6 ? "TCP" : "UDP",
        state: STATE_NAMES[this.bytes[e + L.CT_STATE]] ?? "NONE",
        expiresIn: Math.max(0, ((expire - this.now) | 0) / 1000),
        client: this.hostPort(e + L.CT_CADDR, e + L.CT_CPORT, v6),
        virtual: this.hostPort(e + L.CT_VADDR, e + L.CT_VPORT, v6),
        local: this.hostPort(e + L.CT_LADDR, e + L.CT_LPORT, v6),
        server: this.hostPort(e + L.CT_DADDR, e + L.CT_DPORT, v6),
        template: (proto & L.CT_PROTO_TMPL) !== 0,
      });
    }
    return rows;
  }

  /** `ipvsadm -Ln` as text: services, then their real servers with forward kind and counts. */
  formatServices(): string {
    const forward: Record<LbKind, string> = { nat: "Masq", dr: "Route", tun: "Tunnel", fullnat: "FullNat" };
    const lines = ["Prot LocalAddress:Port Scheduler Flags", "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"];
    for (const svc of this.listServices()) {
      const flags = svc.persistenceSeconds > 0 ? ` persistent ${svc.persistenceSeconds}` : "";
      lines.push(`${svc.protocol.padEnd(5)}${svc.virtual} ${svc.scheduler}${flags}`);
      for (const r of svc.servers) {
        lines.push(`  -> ${r.address.padEnd(28)}${forward[svc.kind].padEnd(8)}${String(r.weight).padEnd(7)}${String(r.active).padEnd(11)}${r.inactive}`);
      }
    }
    return lines.join("\n");
  }

  /** `ipvsadm -Lnc` as text. */
  formatConnections(): string {
    const pad = (s: string, n: number) => s.padEnd(n);
    const mmss = (s: number) => `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
    const lines = [`${pad("pro", 4)}${pad("expire", 7)}${pad("state", 12)}${pad("source", 24)}${pad("virtual", 24)}destination`];
    for (const r of this.listConnections()) {
      lines.push(`${pad(r.protocol, 4)}${pad(mmss(r.expiresIn), 7)}${pad(r.template ? "NONE" : r.state, 12)}`
        + `${pad(r.client, 24)}${pad(r.virtual, 24)}${r.server}`);
    }
    return lines.join("\n");
  }

  /** Removes every connection and template (ipvsadm -C's table half). */
  flush(): void {
    const hwm = this.view.getUint32(L.DIR_OFF + L.DG_HWM, true);
    for (let i = 0; i < hwm; i++) this.kernels.ctDelete(i);
  }

  private hostPort(addr: number, port: number, v6: boolean): string {
    const ip = formatIP(this.bytes.slice(addr, addr + (v6 ? 16 : 4)));
    const p = swap16(this.view.getUint16(port, true));
    return v6 ? `[${ip}]:${p}` : `${ip}:${p}`;
  }

  private destAt(i: number): number {
    return L.DIR_DEST_OFF + i * L.DEST_SIZE;
  }

  private service(name: string): Service {
    const svc = this.services.get(name);
    if (!svc) throw new Error(`director: no virtual server "${name}"`);
    return svc;
  }
}
