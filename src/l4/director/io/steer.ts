// Steers a virtual server's packets into the director's TUN, as Katran's XDP hook takes them
// before the kernel's IP stack: the VIP stays an address of the interface (it answers ARP, and
// VRRP may own it), but an ingress classifier on that interface hands packets for VIP:port to
// the TUN before the stack could answer them itself. Real servers' replies (NAT: they route back
// through this host) reach the TUN by a policy rule per server, so only the director's traffic
// is taken: anything addressed to this host itself (health checks' replies) is still delivered
// locally, since the local table is looked up first. FULLNAT's replies are addressed to a local
// address of this host, which the local table would deliver: an ingress classifier on each
// interface the servers are reached through (where their replies arrive) hands packets for the
// local addresses (the virtual server's protocol, and ICMP errors) to the TUN instead.
//
// The kernel is configured with iproute2 (`ip`, `tc`): what the director forwards, it forwards
// itself; these only choose which packets it sees. Each step is undone on stop.
import { runtime } from "../../../runtime/index.ts";

export interface SteerSpec {
  /** nat: VIP packets are redirected into `tun` and replies come back into it by rule; direct
   * (dr, tun): VIP packets are redirected into `tun` (dr: the frame port's), and replies go from
   * the servers straight to the clients; fullnat: VIP packets as nat, and replies to the local
   * addresses by a filter on the interfaces toward the servers. */
  mode: "nat" | "direct" | "fullnat";
  tun: string;
  /** The interface the VIP is on and clients' packets arrive through. */
  interface: string;
  vip: string;
  port: number;
  protocol: "tcp" | "udp";
  /** This virtual server's rule and filter preference (unique per virtual server on the host). */
  pref: number;
  /** The routing table whose only route leads into the TUN. */
  table: number;
  /** fullnat: the sources toward the servers, whose replies come back to them. */
  localAddresses?: string[];
}

export interface RealServerAddress { address: string; port: number }

/** fullnat: the reply filters' preference, apart from the VIP filter's (they may share an interface). */
const REPLY_PREF_OFFSET = 10000;

async function output(stream: ReadableStream<Uint8Array>): Promise<string> {
  let out = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) out += decoder.decode(chunk, { stream: true });
  return out;
}

/** Runs a command and returns its stdout; a failure throws with its stderr unless `tolerate` matches it. */
export async function sh(argv: string[], tolerate?: RegExp): Promise<string> {
  const child = runtime.spawn(argv);
  const [stdout, stderr] = await Promise.all([output(child.stdout), output(child.stderr)]);
  const code = await child.exited;
  if (code !== 0 && !(tolerate && tolerate.test(stderr))) {
    throw new Error(`director: ${argv.join(" ")} failed (${code}): ${stderr.trim()}`);
  }
  return stdout;
}

/** The interface the kernel routes `address` out of (where that host's packets come in). */
async function interfaceToward(address: string): Promise<string> {
  const route = await sh(["ip", "-o", "route", "get", address]);
  const dev = /\bdev (\S+)/.exec(route)?.[1];
  if (dev === undefined) throw new Error(`director: no route to real server ${address}: ${route.trim()}`);
  return dev;
}

async function sysctl(path: string, value: string): Promise<void> {
  await runtime.writeTextFile(`/proc/sys/net/ipv4/${path}`, value);
}

/** The TUN up. With a table (nat: the director writes its packets back into the TUN): forwarding
 * on, the TUN accepting packets from clients' addresses (no reverse-path check) and from the
 * VIP (an address of this host), and the table's one route into the TUN. */
export async function prepareTun(tun: string, table: number | null): Promise<void> {
  await sh(["ip", "link", "set", "dev", tun, "up"]);
  if (table === null) return;
  await sysctl("ip_forward", "1");
  await sysctl(`conf/${tun}/rp_filter`, "0");
  await sysctl(`conf/${tun}/accept_local`, "1");
  await sh(["ip", "route", "replace", "default", "dev", tun, "table", String(table)]);
}

/** nat, tun and fullnat with IPv6 VIPs: the same for IPv6 (it has no reverse-path check nor local-source
 * refusal to turn off). Forwarding on makes the host an IPv6 router: it stops taking router
 * adverts on interfaces whose accept_ra is 1. */
export async function prepareTun6(tun: string, table: number): Promise<void> {
  await runtime.writeTextFile("/proc/sys/net/ipv6/conf/all/forwarding", "1");
  await sh(["ip", "-6", "route", "replace", "default", "dev", tun, "table", String(table)]);
}

export async function releaseTun(table: number): Promise<void> {
  await sh(["ip", "route", "flush", "table", String(table)], /./);
  await sh(["ip", "-6", "route", "flush", "table", String(table)], /./);
}

/** One virtual server's steering: the ingress filter, and a rule per real server (nat) or a
 * filter per local address on each interface toward the servers (fullnat). */
export class Steering {
  private servers: RealServerAddress[] = [];
  private filtered = false;
  /** nat: the servers' addresses whose ICMP is routed into the TUN (one rule per address). */
  private icmpSources = new Set<string>();
  /** fullnat: the interfaces holding reply filters. */
  private replyInterfaces = new Set<string>();

  constructor(readonly spec: SteerSpec) {}

  async start(servers: RealServerAddress[]): Promise<void> {
    const s = this.spec;
    await this.clearFilters(s.interface, s.pref);
    await this.redirect(s.interface, s.pref, vipMatch(s));
    this.filtered = true;
    if (isIPv6(s.vip)) await sh(icmp6Errors(s));
    else for (const type of ICMP4_ERROR_TYPES) await this.redirect(s.interface, s.pref, icmp4Error(s.vip, type));
    await this.setServers(servers);
  }

  private matchProtocol(ip: "ip" | "ip6"): string[] {
    return ["match", ip, "protocol", this.spec.protocol === "tcp" ? "6" : "17", "0xff"];
  }

  // A process that was killed left its filters behind: this preference is this virtual server's.
  private async clearFilters(dev: string, pref: number): Promise<void> {
    await sh(["tc", "qdisc", "add", "dev", dev, "ingress"], /File exists|Exclusivity flag/);
    await sh(["tc", "filter", "del", "dev", dev, "ingress", "pref", String(pref)], /./);
  }

  /** `classifier`: the filter's protocol and u32 matches. */
  private async redirect(dev: string, pref: number, classifier: string[]): Promise<void> {
    await sh([
      "tc", "filter", "add", "dev", dev, "ingress", "pref", String(pref), ...classifier,
      "action", "mirred", "egress", "redirect", "dev", this.spec.tun,
    ]);
  }

  // fullnat: a filter per local address on each interface the servers are reached through.
  private async setReplyInterfaces(servers: RealServerAddress[]): Promise<void> {
    const s = this.spec, pref = s.pref + REPLY_PREF_OFFSET;
    const want = new Set<string>();
    for (const r of servers) want.add(await interfaceToward(r.address));
    for (const dev of this.replyInterfaces) {
      if (want.has(dev)) continue;
      await sh(["tc", "filter", "del", "dev", dev, "ingress", "pref", String(pref)], /./);
      this.replyInterfaces.delete(dev);
    }
    for (const dev of want) {
      if (this.replyInterfaces.has(dev)) continue;
      await this.clearFilters(dev, pref);
      this.replyInterfaces.add(dev);
      for (const local of s.localAddresses ?? []) {
        if (isIPv6(local)) {
          await this.redirect(dev, pref, ["protocol", "ipv6", "u32", "match", "ip6", "dst", `${local}/128`, ...this.matchProtocol("ip6")]);
          // ICMPv6 errors only (types below 128): neighbour discovery and echo stay the kernel's.
          await this.redirect(dev, pref, icmp6ErrorsTo(local));
          continue;
        }
        await this.redirect(dev, pref, ["protocol", "ip", "u32", "match", "ip", "dst", `${local}/32`, ...this.matchProtocol("ip")]);
        // ICMP errors about the connections (port unreachable, fragmentation needed) too: the
        // director translates them for the client. Other ICMP to a local address is dropped there.
        await this.redirect(dev, pref, ["protocol", "ip", "u32", "match", "ip", "dst", `${local}/32`, "match", "ip", "protocol", "1", "0xff"]);
      }
    }
  }

  /** The rules follow the virtual server's real servers (pool membership changes at run time). */
  async setServers(servers: RealServerAddress[]): Promise<void> {
    if (this.spec.mode === "direct") return;
    if (this.spec.mode === "fullnat") return this.setReplyInterfaces(servers);
    const key = (r: RealServerAddress) => `${r.address}|${r.port}`;
    const want = new Set(servers.map(key));
    const have = new Set(this.servers.map(key));
    for (const r of this.servers) if (!want.has(key(r))) await sh(this.rule("del", r), /No such file|not exist/);
    for (const r of servers) if (!have.has(key(r))) await sh(this.rule("add", r), /File exists/);
    this.servers = servers.slice();
    await this.setIcmpRules(servers);
  }

  // nat: ICMP errors a server sends a client (port unreachable, fragmentation needed) quote the
  // server's address, which only the director can translate back to the VIP. `ip rule` cannot
  // match ICMP types, so all the server's forwarded ICMP goes in and the director drops what is
  // no error (icmp_not_error: a server's echo replies to clients and its own pings out). ICMP to
  // this host itself (IPv6: neighbour discovery too) is still delivered locally (the local table
  // is looked up first).
  private async setIcmpRules(servers: RealServerAddress[]): Promise<void> {
    const want = new Set(servers.map((r) => r.address));
    for (const a of this.icmpSources) if (!want.has(a)) await sh(this.icmpRule("del", a), /No such file|not exist/);
    for (const a of want) if (!this.icmpSources.has(a)) await sh(this.icmpRule("add", a), /File exists/);
    this.icmpSources = want;
  }

  private icmpRule(op: "add" | "del", address: string): string[] {
    return this.ruleFrom(op, address, ["ipproto", isIPv6(address) ? "58" : "1"]);
  }

  async stop(): Promise<void> {
    const s = this.spec;
    await this.setServers([]);
    if (this.filtered) await sh(["tc", "filter", "del", "dev", s.interface, "ingress", "pref", String(s.pref)], /./);
    this.filtered = false;
  }

  private rule(op: "add" | "del", r: RealServerAddress): string[] {
    return this.ruleFrom(op, r.address, ["ipproto", this.spec.protocol, "sport", String(r.port)]);
  }

  /** A policy rule at this virtual server's preference: packets from `address` matching `selector` into the TUN's table. */
  private ruleFrom(op: "add" | "del", address: string, selector: string[]): string[] {
    const s = this.spec, v6 = isIPv6(address);
    return [
      "ip", ...(v6 ? ["-6"] : []), "rule", op, "pref", String(s.pref), "from", `${address}/${v6 ? 128 : 32}`,
      ...selector, "lookup", String(s.table),
    ];
  }
}

const isIPv6 = (address: string) => address.includes(":");

/** ICMPv6 errors to the VIP (types below 128: unreachable, packet too big, time exceeded,
 * parameter problem; never neighbour discovery, echo or MLD) go to the TUN too, beside the VIP:port
 * filter (the same preference: `stop` removes both). They quote a packet the VIP sent a client (a
 * nat reply, a dr server's answer); the director finds its connection and sends the error to the
 * server (nat: addresses translated), so a server learns a client path's MTU. */
function icmp6Errors(s: SteerSpec): string[] {
  return [
    "tc", "filter", "add", "dev", s.interface, "ingress", "pref", String(s.pref), ...icmp6ErrorsTo(s.vip),
    "action", "mirred", "egress", "redirect", "dev", s.tun,
  ];
}

/** The u32 classifier's match on ICMPv6 errors (the type's high bit clear, read right after the
 * fixed header) to `address`. */
function icmp6ErrorsTo(address: string): string[] {
  return [
    "protocol", "ipv6", "u32", "match", "ip6", "dst", `${address}/128`, "match", "ip6", "protocol", "58", "0xff",
    "match", "u8", "0", "0x80", "at", "40",
  ];
}

/** ICMPv4 errors: destination unreachable (fragmentation needed, port unreachable), time
 * exceeded, parameter problem. Never echo: `ping VIP` stays the kernel's to answer. */
const ICMP4_ERROR_TYPES = [3, 11, 12];

/** ICMPv4 errors of one type to the VIP go to the TUN too, as icmp6Errors does for IPv6, beside
 * the VIP:port filter (the same preference: `stop` removes them all). The type is read at offset
 * 20, so only headers without options match (an ICMP error's sender adds none). */
function icmp4Error(vip: string, type: number): string[] {
  return [
    "protocol", "ip", "u32", "match", "ip", "dst", `${vip}/32`, "match", "ip", "protocol", "1", "0xff",
    "match", "u8", "0x45", "0xff", "at", "0", "match", "u8", String(type), "0xff", "at", "20",
  ];
}

/** The u32 classifier's match on VIP, protocol and port (IPv6: with no extension header between
 * the fixed header and TCP or UDP, which is how clients send them). */
function vipMatch(s: SteerSpec): string[] {
  const ip = isIPv6(s.vip) ? "ip6" : "ip";
  return [
    "protocol", ip === "ip6" ? "ipv6" : "ip", "u32", "match", ip, "dst", `${s.vip}/${ip === "ip6" ? 128 : 32}`,
    "match", ip, "protocol", s.protocol === "tcp" ? "6" : "17", "0xff", "match", ip, "dport", String(s.port), "0xffff",
  ];
}
