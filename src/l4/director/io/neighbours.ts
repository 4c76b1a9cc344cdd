// dr sends frames to the real servers' MACs: they come from the kernel's neighbour table, and a
// server not in it yet is nudged so the kernel resolves it (ARP for IPv4, neighbour discovery for
// IPv6) on the way to a datagram.
import dgram from "node:dgram";
import { runtime } from "../../../runtime/index.ts";
import { formatIP, parseIP, type Family } from "../../../vrrp/ip.ts";
import { sh } from "./steer.ts";

/** The neighbour table's resolved entries of the families asked for: address (as formatIP
 * writes it) -> MAC. */
export async function neighbours(families: ReadonlySet<Family>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (families.has(4)) for (const [ip, mac] of await neighbours4()) out.set(ip, mac);
  if (families.has(6)) for (const [ip, mac] of await neighbours6()) out.set(ip, mac);
  return out;
}

/** The key `neighbours` files an address under. */
export function neighbourKey(address: string): string {
  const ip = parseIP(address);
  return ip ? formatIP(ip.bytes) : address;
}

/** IPv4 from /proc/net/arp. */
async function neighbours4(): Promise<[string, string][]> {
  const text = await runtime.readTextFile("/proc/net/arp").catch(() => "");
  const out: [string, string][] = [];
  for (const line of text.split("\n").slice(1)) {
    const [ip, , flags, mac] = line.trim().split(/\s+/);
    // Flags 0x2: ATF_COM, a resolved entry.
    if (ip && mac && (parseInt(flags, 16) & 2) !== 0) out.push([ip, mac]);
  }
  return out;
}

/** IPv6 has no /proc file: `ip -6 -j neigh`. An entry with a link-layer address is resolved
 * (reachable, stale, delay or probe); incomplete and failed ones have none. */
async function neighbours6(): Promise<[string, string][]> {
  const text = await sh(["ip", "-6", "-j", "neigh", "show"]).catch(() => "[]");
  let entries: { dst?: string; lladdr?: string; state?: string[] }[];
  try {
    entries = JSON.parse(text || "[]");
  } catch {
    return [];
  }
  return entries.flatMap((e) => e.dst && e.lladdr && !e.state?.includes("FAILED") ? [[neighbourKey(e.dst), e.lladdr] as [string, string]] : []);
}

/** One datagram to the discard port: the kernel resolves the server's MAC on the way. */
export function nudge(address: string): void {
  const s = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
  s.on("error", () => s.close());
  s.send(new Uint8Array(0), 9, address, () => s.close());
}
