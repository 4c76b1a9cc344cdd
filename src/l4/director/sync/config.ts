// The `director_sync:` section, keepalived's `lvs_sync_daemon <interface> <vrrp_instance>
// [id <syncid>] [port <port>] [group <address>]`, with `peer` for unicast: the master of the
// named VRRP instance streams its connections, the other nodes keep them in their tables.
//
//   director_sync: { interface: eth0, vrrp_instance: VI_1, port: 8848, peer: 10.0.0.2 }
import { type Checker, duration, integer, type Mapping, type PathSegment, reference, string } from "../../../config/checker.ts";
import { formatIP, parseIP } from "../../../vrrp/ip.ts";

export interface DirectorSyncConfig {
  interface: string;
  vrrpInstance: string;
  /** UDP port, IPVS's 8848 by default. */
  port: number;
  /** Multicast group (IPVS's 224.0.0.81) when no peer is given. */
  group: string;
  /** Unicast to this address instead of the group (and only its datagrams are taken). */
  peer: string | null;
  /** Sync id both ends carry (IPVS's syncid); null: the VRRP instance's virtual_router_id. */
  id: number | null;
  /** A connection whose expiry moved on this much since it was sent is sent again. */
  refreshMs: number;
}

export const DEFAULT_SYNC_PORT = 8848;
export const DEFAULT_SYNC_GROUP = "224.0.0.81";
const KEYS = ["interface", "vrrp_instance", "port", "group", "peer", "id", "refresh"] as const;

function ipv4(what: string, check: (bytes: Uint8Array) => boolean): (c: Checker, v: unknown, p: PathSegment[]) => string | undefined {
  return (c, v, p) => {
    const ip = typeof v === "string" ? parseIP(v) : null;
    return ip && ip.family === 4 && check(ip.bytes) ? formatIP(ip.bytes) : c.expected(p, what, v);
  };
}

/** Reads `director_sync:` (absent: null). It needs the VRRP instance it follows and a
 * `virtual_servers:` section whose connections it carries. */
export function readDirectorSync(c: Checker, value: unknown, o: { instanceNames: readonly string[]; virtualServers: boolean }): DirectorSyncConfig | null {
  if (value === undefined) return null;
  const p = ["director_sync"];
  const m: Mapping | undefined = c.mapping(value, p, "a mapping with interface and vrrp_instance");
  if (m === undefined) return null;
  c.checkKeys(m, p, KEYS);
  if (!o.virtualServers) c.fail(p, "director_sync carries the packet director's connections: it needs a virtual_servers section");
  if (o.instanceNames.length === 0) {
    c.fail([...p, "vrrp_instance"], "expected the name of an instance of the vrrp section, and there is no vrrp section");
  }
  const iface = c.required(m, p, "interface", string("an interface name"));
  const instance = o.instanceNames.length === 0 ? undefined : c.required(m, p, "vrrp_instance", reference("vrrp instance", o.instanceNames));
  const port = c.optional(m, p, "port", integer(1, 65535), DEFAULT_SYNC_PORT);
  const group = c.optional(m, p, "group", ipv4("an IPv4 multicast address (224.0.0.0/4)", (b) => b[0] >= 224 && b[0] <= 239), DEFAULT_SYNC_GROUP);
  const peer = c.optional(m, p, "peer", ipv4("an IPv4 unicast address", (b) => b[0] !== 0 && b[0] < 224), null);
  const id = c.optional(m, p, "id", integer(0, 255), null);
  const refreshMs = c.optional(m, p, "refresh", duration({ zeroAllowed: false }), 10_000);
  if (iface === undefined || instance === undefined) return null;
  return { interface: iface, vrrpInstance: instance, port, group, peer, id, refreshMs };
}
