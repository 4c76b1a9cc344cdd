// dr sends frames to the real servers' MACs: they come from the kernel's neighbour table, and a
// server not in it yet is nudged so the kernel resolves it (ARP for IPv4, neighbour discovery for
// IPv6) on the way to a datagram.
import dgram from "node:dgram";
import { runtime } from "../../../runtime/index.ts";
import { formatIP, parseIP, type Family } from "../../../vrrp/ip.ts";
import { sh } from "./steer.ts";

/** Backoff bounds for IPv6 reads, ms. */
const IPV6_WAIT_MIN = 100, IPV6_WAIT_MAX = 2000;

/** Reads the neighbour table's resolved entries. IPv6 costs a process per read, so while its
 * entries stay as they were (a server that is gone never resolves) its reads back off from each
 * call to one every 2 s; a change in them, or in the addresses sought, brings them back to each call. */
export class NeighbourReader {
  private last6 = new Map<string, string>();
  private due6 = 0;
  private wait6 = 0;
  private sought = "";

  /** The resolved entries of the families asked for: address (as formatIP writes it) -> MAC.
   * `sought`: the addresses the caller still looks for. */
  async read(families: ReadonlySet<Family>, sought: readonly string[], nowMs = performance.now()): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (families.has(4)) for (const [ip, mac] of await neighbours4()) out.set(ip, mac);
    if (families.has(6)) {
      const key = sought.join(" ");
      if (key !== this.sought) {
        this.sought = key;
        this.due6 = 0;
      }
      if (nowMs >= this.due6) {
        const fresh = new Map(parseNeighbours6(await sh(["ip", "-6", "-j", "neigh", "show"]).catch(() => "[]")));
        const same = fresh.size === this.last6.size && [...fresh].every(([ip, mac]) => this.last6.get(ip) === mac);
        this.wait6 = same ? Math.min(Math.max(this.wait6 * 2, IPV6_WAIT_MIN), IPV6_WAIT_MAX) : 0;
        this.due6 = nowMs + this.wait6;
        this.last6 = fresh;
      }
      for (const [ip, mac] of this.last6) out.set(ip, mac);
    }
    return out;
  }
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

/** IPv6 has no /proc file: `ip -6 -j neigh`'s output. An entry with a link-layer address is
 * resolved (reachable, stale, delay, probe or permanent); incomplete and failed ones are not. */
export function parseNeighbours6(text: string): [string, string][] {
  let entries: unknown;
  try {
    entries = JSON.parse(text || "[]");
  } catch {
    return [];
  }
  if (!Array.isArray(entries)) return [];
  return entries.flatMap((e: { dst?: unknown; lladdr?: unknown; state?: unknown }) =>
    typeof e?.dst === "string" && typeof e.lladdr === "string" && !(Array.isArray(e.state) && e.state.includes("FAILED"))
      ? [[neighbourKey(e.dst), e.lladdr] as [string, string]]
      : []);
}

/** One datagram to the discard port: the kernel resolves the server's MAC on the way. */
export function nudge(address: string): void {
  const s = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
  s.on("error", () => s.close());
  s.send(new Uint8Array(0), 9, address, () => s.close());
}
