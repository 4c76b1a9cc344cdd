// Seeded packet streams for the simulator: TCP and UDP flows of every lb kind and family
// (handshakes, data, teardowns, resets, flows first seen mid-way), servers' replies built from
// what the director sent them, ICMP errors quoting packets in flight, and fuzzed or truncated
// packets. Tests compare the WASM kernels with their twin over these and check that every packet
// gets a counted reason.
import type { VirtualServerSpec } from "./director.ts";
import { buildPacket, buildIcmpError, type SimPacket, type SimResult, type TcpFlags } from "./simulator.ts";

export const MIXED_SERVICES: VirtualServerSpec[] = [
  { name: "nat4", address: "10.0.0.100", port: 80, protocol: "tcp", kind: "nat", scheduler: "wlc",
    servers: [{ address: "10.0.1.1", port: 8080 }, { address: "10.0.1.2", port: 8080, weight: 2 }] },
  { name: "fnat4", address: "10.0.0.101", port: 443, protocol: "tcp", kind: "fullnat", scheduler: "mh", toa: true,
    localAddresses: ["10.0.2.50", "10.0.2.51"], servers: [{ address: "10.0.1.3", port: 8443 }, { address: "10.0.1.4", port: 8443 }] },
  { name: "tun4", address: "10.0.0.102", port: 53, protocol: "udp", kind: "tun", scheduler: "rr", mtu: 600,
    servers: [{ address: "10.0.1.5", port: 53 }, { address: "10.0.1.6", port: 53 }] },
  { name: "dr4", address: "10.0.0.103", port: 80, protocol: "tcp", kind: "dr", scheduler: "sh", persistenceSeconds: 30,
    mac: "02:00:00:00:00:aa", servers: [{ address: "10.0.1.7", port: 80, mac: "02:00:00:00:01:07" }, { address: "10.0.1.8", port: 80, mac: "02:00:00:00:01:08" }] },
  { name: "nat6", address: "2001:db8::100", port: 53, protocol: "udp", kind: "nat", scheduler: "rr", persistenceSeconds: 20,
    servers: [{ address: "2001:db8:1::1", port: 5353 }, { address: "2001:db8:1::2", port: 5353 }] },
  { name: "fnat6", address: "2001:db8::101", port: 80, protocol: "tcp", kind: "fullnat", scheduler: "lc", toa: true,
    localAddresses: ["2001:db8:2::50"], servers: [{ address: "2001:db8:1::3", port: 8080 }] },
  { name: "tun4tcp", address: "10.0.0.104", port: 80, protocol: "tcp", kind: "tun", scheduler: "mh",
    servers: [{ address: "10.0.1.9", port: 80 }, { address: "10.0.1.10", port: 80 }, { address: "10.0.1.11", port: 80 }] },
];

const L2 = { src: "02:00:00:00:00:01", dst: "02:00:00:00:00:aa" };

/** xorshift32: reproducible streams from a seed. */
export function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
}

interface Flow { vs: VirtualServerSpec; client: string; sport: number; step: number }

export class Traffic {
  private readonly flows: Flow[] = [];
  private readonly r: (n: number) => number;

  constructor(seed: number, private readonly services = MIXED_SERVICES) {
    this.r = rng(seed);
  }

  private client(v6: boolean): string {
    return v6 ? `2001:db8:9::${(this.r(64) + 1).toString(16)}` : `192.168.${this.r(4)}.${this.r(250) + 1}`;
  }

  private clientPacket(f: Flow): SimPacket {
    const tcp = f.vs.protocol === "tcp";
    const script: TcpFlags[] = [{ syn: true }, { ack: true }, { ack: true, psh: true }, { ack: true, psh: true }, { fin: true, ack: true }, { ack: true }];
    const flags = tcp ? (this.r(40) === 0 ? { rst: true } : script[Math.min(f.step, script.length - 1)]) : undefined;
    f.step++;
    const l2 = f.vs.kind === "dr" || this.r(4) === 0;
    return {
      bytes: buildPacket({
        src: f.client, dst: f.vs.address, sport: f.sport, dport: f.vs.port, protocol: f.vs.protocol, flags,
        payload: this.r(3) === 0 ? this.r(900) : this.r(40), l2: l2 ? L2 : undefined,
      }),
      l2,
    };
  }

  /** A batch of n packets; `last` are the results of the previous batch, answered by servers
   * (replies to what reached them) and routers (ICMP errors quoting it). */
  batch(n: number, last: SimResult[] = []): SimPacket[] {
    const out: SimPacket[] = [];
    const sent = last.filter((x) => x.verdict === "to_server" && x.bytes.length >= 28);
    while (out.length < n) {
      const pick = this.r(20);
      if (pick < 3 || this.flows.length === 0) {
        const vs = this.services[this.r(this.services.length)];
        const v6 = vs.address.includes(":");
        // One flow in six starts mid-way, as a flow ECMP moved here from another node: dr and tun
        // with a keyed consistent scheduler take it over, the rest drop it as not_syn.
        const step = this.r(6) === 0 ? 1 + this.r(3) : 0;
        this.flows.push({ vs, client: this.client(v6), sport: 1024 + this.r(60000), step });
        if (this.flows.length > 400) this.flows.splice(this.r(this.flows.length), 1);
      } else if (pick < 14) {
        out.push(this.clientPacket(this.flows[this.r(this.flows.length)]));
      } else if (pick < 18 && sent.length > 0) {
        const reply = serverReply(sent[this.r(sent.length)], this.r(2) === 0);
        if (reply) out.push({ bytes: reply });
      } else if (pick < 19 && sent.length > 0) {
        const q = sent[this.r(sent.length)];
        const err = icmpAbout(q);
        if (err) out.push({ bytes: err });
      } else {
        const base = this.clientPacket(this.flows[this.r(this.flows.length)]);
        out.push(mutate(base, this.r));
      }
    }
    return out;
  }
}

// The IP packet of a result (the Ethernet header, if any, stripped).
function ipOf(res: SimResult): Uint8Array | null {
  const b = res.bytes;
  const v = b[0] >> 4;
  if (v === 4 || v === 6) return b;
  return b.length > 14 ? b.subarray(14) : null;
}

/** What a server answers to a packet that reached it (nat and fullnat; others answer directly). */
function serverReply(res: SimResult, tcp: boolean): Uint8Array | null {
  const ip = ipOf(res);
  if (!ip || ip.length < 40) return null;
  const v6 = ip[0] >> 4 === 6;
  const proto = v6 ? ip[6] : ip[9];
  if (proto !== 6 && proto !== 17) return null;
  const l4 = v6 ? 40 : (ip[0] & 15) * 4;
  if (ip.length < l4 + 4) return null;
  const text = (o: number) => v6 ? hex6(ip.subarray(o, o + 16)) : Array.from(ip.subarray(o, o + 4)).join(".");
  const src = text(v6 ? 8 : 12), dst = text(v6 ? 24 : 16);
  const sport = (ip[l4] << 8) | ip[l4 + 1], dport = (ip[l4 + 2] << 8) | ip[l4 + 3];
  return buildPacket({
    src: dst, dst: src, sport: dport, dport: sport, protocol: proto === 6 ? "tcp" : "udp",
    flags: proto === 6 ? (tcp ? { syn: true, ack: true } : { fin: true, ack: true }) : undefined, payload: 20,
  });
}

function icmpAbout(res: SimResult): Uint8Array | null {
  const ip = ipOf(res);
  if (!ip || ip.length < 48) return null;
  const v6 = ip[0] >> 4 === 6;
  const text = (o: number) => v6 ? hex6(ip.subarray(o, o + 16)) : Array.from(ip.subarray(o, o + 4)).join(".");
  const server = text(v6 ? 24 : 16), local = text(v6 ? 8 : 12);
  return buildIcmpError(server, local, v6 ? 1 : 3, v6 ? 4 : 3, ip, v6 ? 1232 : 28 + (ip.length % 40));
}

function hex6(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] << 8) | b[i + 1]).toString(16));
  return g.join(":");
}

/** A packet with bytes flipped, cut short, lengthened with garbage, or replaced by noise. */
export function mutate(p: SimPacket, r: (n: number) => number): SimPacket {
  const kind = r(5);
  let b = p.bytes.slice();
  if (kind === 0) b = b.subarray(0, r(b.length + 1));
  else if (kind === 1) for (let k = r(4) + 1; k > 0; k--) b[r(b.length)] = r(256);
  else if (kind === 2) { b = b.subarray(0, r(b.length + 1)); if (b.length) b[r(b.length)] ^= 1 << r(8); }
  else if (kind === 3) b = Uint8Array.from({ length: r(120) }, () => r(256));
  else { const head = r(Math.min(b.length, 80)); if (head < b.length) b[head] = r(256); b[0] = (b[0] & 15) | (r(16) << 4); }
  return { bytes: b, l2: r(3) === 0 ? !p.l2 : p.l2 };
}
