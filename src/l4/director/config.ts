// The `virtual_servers:` section, in keepalived's words: a VIP:port, protocol, lb_kind, the
// interface, a pool from `pools:` (servers, scheduler, health), persistence_timeout and, for
// fullnat, local_addresses. `fulcrum run` serves what the packet I/O can carry (io/) and refuses the rest.
import {
  boolean, type Checker, choice, duration, FirstSeen, integer, type PathSegment, reference, string, valueOf,
} from "../../config/checker.ts";
import { parseHostPort } from "../../config/address.ts";
import { parseIP, type Family } from "../../vrrp/ip.ts";
import type { LbKind } from "./names.ts";

export interface VirtualServerConfig {
  name: string;
  address: string;
  port: number;
  family: Family;
  protocol: "tcp" | "udp";
  lbKind: LbKind;
  interface: string | null;
  pool: string;
  /** ms; 0: no persistence. */
  persistenceMs: number;
  localAddresses: string[];
  toa: boolean;
  /** fullnat over TCP: a PROXY protocol v2 header before the client's first bytes. */
  proxyProtocol: "v2" | null;
  /** Path MTU toward the servers (tun's encapsulation, TOA's room); null: the interface's. */
  mtu: number | null;
}

const KEYS = [
  "name", "address", "protocol", "lb_kind", "interface", "pool", "persistence_timeout", "local_addresses", "toa", "proxy_protocol", "mtu",
] as const;
const NAME = /^[A-Za-z0-9_.-]+$/;

/** Reads `virtual_servers:` (absent: none). Pool names are those `pools:` declares. */
export function readVirtualServers(c: Checker, value: unknown, poolNames: readonly string[]): VirtualServerConfig[] {
  if (value === undefined) return [];
  const path = ["virtual_servers"];
  const out: VirtualServerConfig[] = [];
  const names = new FirstSeen(), vips = new FirstSeen(), locals = new FirstSeen();
  c.list(value, path, "a non-empty list of virtual servers").forEach((item, i) => {
    const vs = readOne(c, item, [...path, i], poolNames);
    if (vs === undefined) return;
    const nameTwice = names.check(vs.name, i);
    if (nameTwice !== undefined) c.fail([...path, i, "name"], `virtual server "${vs.name}" is already defined at virtual_servers[${nameTwice}]`);
    const key = `${vs.protocol} ${vs.address} ${vs.port}`;
    const vipTwice = vips.check(key, i);
    if (vipTwice !== undefined) c.fail([...path, i, "address"], `${vs.protocol} ${vs.address}:${vs.port} is already served by virtual_servers[${vipTwice}]`);
    // Each virtual server has its own stacks of local ports: two sharing an address could hand
    // out the same address:port toward the same server.
    vs.localAddresses.forEach((address, k) => {
      const twice = locals.check(address, i);
      if (twice !== undefined) c.fail([...path, i, "local_addresses", k], `local address ${address} is already used by virtual_servers[${twice}]`);
    });
    out.push(vs);
  });
  return out;
}

function readOne(c: Checker, value: unknown, p: PathSegment[], poolNames: readonly string[]): VirtualServerConfig | undefined {
  const m = c.mapping(value, p, "a virtual server mapping with name, address and pool");
  if (m === undefined) return undefined;
  c.checkKeys(m, p, KEYS);
  const name = c.required(m, p, "name", string("a virtual server name"));
  if (name !== undefined && !NAME.test(name)) c.fail([...p, "name"], `expected letters, digits, "_", "." or "-", got ${JSON.stringify(name)}`);
  const vip = c.required(m, p, "address", (ck, v, path) => {
    const hp = typeof v === "string" ? parseHostPort(v, true) : null;
    const ip = hp ? parseIP(hp.host) : null;
    return hp && ip ? { host: hp.host, port: hp.port, family: ip.family }
      : ck.expected(path, `a VIP and port, "10.0.0.100:80" or "[2001:db8::100]:80" (an address, not a name)`, v);
  });
  const protocol = c.optional(m, p, "protocol", choice(["tcp", "udp"] as const), "tcp" as const);
  const lbKind = c.optional(m, p, "lb_kind", choice(["nat", "dr", "tun", "fullnat"] as const), "nat" as const);
  const iface = c.optional(m, p, "interface", string("an interface name"), null);
  const pool = c.required(m, p, "pool", reference("pool", poolNames));
  const persistenceMs = c.optional(m, p, "persistence_timeout", duration({ zeroAllowed: true }), 0);
  const toa = c.optional(m, p, "toa", boolean, false);
  const proxyProtocol = c.optional(m, p, "proxy_protocol", choice(["v2"] as const), null);
  const mtu = c.optional(m, p, "mtu", integer(576, 65535), null);
  const localAddresses: string[] = [];
  const la = valueOf(m, "local_addresses");
  if (la !== undefined) {
    c.list(la, [...p, "local_addresses"], "a non-empty list of IP addresses").forEach((a, k) => {
      const ip = typeof a === "string" ? parseIP(a) : null;
      if (ip === null) { c.expected([...p, "local_addresses", k], "an IPv4 or IPv6 address", a); return; }
      if (vip && ip.family !== vip.family) c.fail([...p, "local_addresses", k], `expected an IPv${vip.family} address like the VIP, got ${a}`);
      localAddresses.push(a as string);
    });
  }
  if (lbKind === "fullnat" && la === undefined) c.fail([...p, "local_addresses"], "fullnat needs local_addresses: the sources toward the servers");
  if (lbKind !== "fullnat" && la !== undefined) c.fail([...p, "local_addresses"], `only fullnat uses local_addresses (lb_kind is ${lbKind})`, "key");
  if (toa && lbKind !== "fullnat") c.fail([...p, "toa"], `toa carries the client address through fullnat only (lb_kind is ${lbKind})`, "key");
  if (toa && protocol !== "tcp") c.fail([...p, "toa"], "toa is a TCP option: protocol must be tcp", "key");
  if (proxyProtocol && lbKind !== "fullnat") c.fail([...p, "proxy_protocol"], `proxy_protocol is written into the stream by fullnat only (lb_kind is ${lbKind})`, "key");
  if (proxyProtocol && protocol !== "tcp") c.fail([...p, "proxy_protocol"], "proxy_protocol goes before a TCP stream: protocol must be tcp", "key");
  if (name === undefined || vip === undefined || pool === undefined) return undefined;
  return {
    name, address: vip.host, port: vip.port, family: vip.family, protocol, lbKind, interface: iface, pool,
    persistenceMs, localAddresses, toa, proxyProtocol, mtu,
  };
}

/** A virtual server's real servers are of its VIP's family (the director rewrites addresses in
 * place, or frames them for dr): a pool server given as an address of the other family is an
 * error at that server, naming the virtual server. Names (resolved at run time) are checked when
 * they resolve. */
export function checkPoolFamilies(c: Checker, servers: VirtualServerConfig[], pools: readonly { name: string; servers: readonly { address: { host: string } }[] }[]): void {
  for (const vs of servers) {
    const pool = pools.find((p) => p.name === vs.pool);
    pool?.servers.forEach((server, k) => {
      const family = parseIP(server.address.host)?.family;
      if (family === undefined || family === vs.family) return;
      c.fail(["pools", pool.name, "servers", k], `expected an IPv${vs.family} address like the VIP of virtual server ${vs.name} (${vs.address}), got ${server.address.host}`);
    });
  }
}

/** Why the packet I/O cannot serve a virtual server yet, or null when it can. */
export function unservable(vs: VirtualServerConfig): string | null {
  if (vs.interface === null) return "no interface: the director needs the interface the VIP's packets arrive on";
  return null;
}

/** What `fulcrum run` says of virtual servers it cannot serve yet (null: it serves them all). */
export function directorRefusal(servers: VirtualServerConfig[]): string | null {
  const refused = servers.flatMap((v) => {
    const why = unservable(v);
    return why === null ? [] : [`${v.name} (${v.lbKind} ${v.protocol} ${v.family === 6 ? `[${v.address}]` : v.address}:${v.port}): ${why}`];
  });
  if (refused.length === 0) return null;
  return `fulcrum: virtual_servers: ${servers.length} checked, ${refused.length} cannot be served: ${refused.join("; ")}. `
    + "Remove them to run the rest.";
}
