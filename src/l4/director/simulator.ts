// The director with no devices (as Katran's tester): builds packets, lays them out in the batch
// area of linear memory with their descriptors, runs processBatch on a simulated clock, and reads
// back each packet's verdict, reason and bytes. Tests and the bench drive the data path with it.
import * as L from "../../core/layout.ts";
import { parseIP } from "../../vrrp/ip.ts";
import type { Director } from "./director.ts";
import { REASON_NAMES } from "./names.ts";

export interface TcpFlags { syn?: boolean; ack?: boolean; fin?: boolean; rst?: boolean; psh?: boolean }

export interface PacketSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  protocol: "tcp" | "udp";
  flags?: TcpFlags;
  seq?: number;
  ackNumber?: number;
  /** Payload bytes, or a length of a repeating pattern. */
  payload?: Uint8Array | number;
  /** TCP options (a multiple of 4 bytes). */
  options?: Uint8Array;
  /** IPv4 don't-fragment; true by default. */
  df?: boolean;
  /** IPv4 UDP without a checksum (0). */
  noUdpChecksum?: boolean;
  /** An Ethernet header with these MACs (AF_PACKET frames); absent: a bare IP packet (TUN). */
  l2?: { src: string; dst: string };
}

export interface SimPacket {
  bytes: Uint8Array;
  l2?: boolean;
}

export type Verdict = "drop" | "to_server" | "to_client";

export interface SimResult {
  verdict: Verdict;
  reason: string;
  /** The packet as the kernel left it (rewritten, encapsulated or replaced by an ICMP error). */
  bytes: Uint8Array;
  conn: number;
}

function addr(text: string): Uint8Array {
  const ip = parseIP(text);
  if (ip === null) throw new Error(`simulator: bad address ${text}`);
  return ip.bytes;
}

export function mac(text: string): Uint8Array {
  return Uint8Array.from(text.split(":").map((p) => parseInt(p, 16)));
}

/** One's-complement sum of bytes as big-endian words (the builder's own; tests keep theirs). */
function onesSum(b: Uint8Array, start: number, end: number, init = 0): number {
  let s = init;
  for (let i = start; i < end; i += 2) s += (b[i] << 8) | (i + 1 < end ? b[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudoSum(src: Uint8Array, dst: Uint8Array, proto: number, len: number): number {
  const p = new Uint8Array(src.length * 2 + 4);
  p.set(src, 0); p.set(dst, src.length);
  const dv = new DataView(p.buffer);
  if (src.length === 4) { dv.setUint8(8, 0); dv.setUint8(9, proto); dv.setUint16(10, len); }
  else { dv.setUint16(32, len); dv.setUint8(35, proto); }
  return onesSum(p, 0, p.length);
}

function wrapIp(src: Uint8Array, dst: Uint8Array, proto: number, l4: Uint8Array, df: boolean): Uint8Array {
  const v6 = src.length === 16;
  const h = v6 ? 40 : 20;
  const out = new Uint8Array(h + l4.length);
  const dv = new DataView(out.buffer);
  if (v6) {
    out[0] = 0x60;
    dv.setUint16(4, l4.length);
    out[6] = proto; out[7] = 64;
    out.set(src, 8); out.set(dst, 24);
  } else {
    out[0] = 0x45;
    dv.setUint16(2, out.length);
    dv.setUint16(4, 0x1234);
    dv.setUint16(6, df ? 0x4000 : 0);
    out[8] = 64; out[9] = proto;
    out.set(src, 12); out.set(dst, 16);
    dv.setUint16(10, ~onesSum(out, 0, 20) & 0xffff);
  }
  out.set(l4, h);
  return out;
}

function withL2(ip: Uint8Array, l2: { src: string; dst: string } | undefined): Uint8Array {
  if (!l2) return ip;
  const out = new Uint8Array(14 + ip.length);
  out.set(mac(l2.dst), 0); out.set(mac(l2.src), 6);
  out[12] = (ip[0] >> 4) === 6 ? 0x86 : 0x08; out[13] = (ip[0] >> 4) === 6 ? 0xdd : 0x00;
  out.set(ip, 14);
  return out;
}

/** A TCP or UDP packet with valid checksums. */
export function buildPacket(spec: PacketSpec): Uint8Array {
  const src = addr(spec.src), dst = addr(spec.dst);
  const payload = typeof spec.payload === "number"
    ? Uint8Array.from({ length: spec.payload }, (_, i) => (i * 7 + 3) & 0xff)
    : spec.payload ?? new Uint8Array(0);
  let l4: Uint8Array;
  if (spec.protocol === "tcp") {
    const opts = spec.options ?? new Uint8Array(0);
    const hl = 20 + opts.length;
    l4 = new Uint8Array(hl + payload.length);
    const dv = new DataView(l4.buffer);
    dv.setUint16(0, spec.sport); dv.setUint16(2, spec.dport);
    dv.setUint32(4, spec.seq ?? 1000); dv.setUint32(8, spec.ackNumber ?? 0);
    l4[12] = (hl / 4) << 4;
    const f = spec.flags ?? {};
    l4[13] = (f.fin ? 1 : 0) | (f.syn ? 2 : 0) | (f.rst ? 4 : 0) | (f.psh ? 8 : 0) | (f.ack ? 16 : 0);
    dv.setUint16(14, 65535);
    l4.set(opts, 20);
    l4.set(payload, hl);
    dv.setUint16(16, ~onesSum(l4, 0, l4.length, pseudoSum(src, dst, 6, l4.length)) & 0xffff);
  } else {
    l4 = new Uint8Array(8 + payload.length);
    const dv = new DataView(l4.buffer);
    dv.setUint16(0, spec.sport); dv.setUint16(2, spec.dport); dv.setUint16(4, l4.length);
    l4.set(payload, 8);
    if (!spec.noUdpChecksum) dv.setUint16(6, (~onesSum(l4, 0, l4.length, pseudoSum(src, dst, 17, l4.length)) & 0xffff) || 0xffff);
  }
  return withL2(wrapIp(src, dst, spec.protocol === "tcp" ? 6 : 17, l4, spec.df ?? true), spec.l2);
}

/** An ICMP (ICMPv6) error from `src` to `dst` quoting `quoted` (an IP packet, cut to `quoteLen`). */
export function buildIcmpError(src: string, dst: string, type: number, code: number, quoted: Uint8Array,
  quoteLen = quoted.length, l2?: { src: string; dst: string }): Uint8Array {
  const s = addr(src), d = addr(dst), v6 = s.length === 16;
  const q = quoted.subarray(0, Math.min(quoteLen, quoted.length));
  const msg = new Uint8Array(8 + q.length);
  msg[0] = type; msg[1] = code;
  msg.set(q, 8);
  const init = v6 ? pseudoSum(s, d, 58, msg.length) : 0;
  new DataView(msg.buffer).setUint16(2, ~onesSum(msg, 0, msg.length, init) & 0xffff);
  return withL2(wrapIp(s, d, v6 ? 58 : 1, msg, true), l2);
}

const VERDICTS: Verdict[] = ["drop", "to_server", "to_client"];

export class Simulator {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(readonly director: Director, public clockMs = 0) {
    this.bytes = new Uint8Array(director.plane.memory);
    this.view = new DataView(director.plane.memory);
  }

  advance(ms: number): void {
    this.clockMs += ms;
    this.director.tick(this.clockMs);
  }

  /** Lays out up to MAX_BATCH packets and their descriptors; returns how many. */
  load(packets: SimPacket[], from = 0): number {
    const n = Math.min(L.MAX_BATCH, packets.length - from);
    for (let k = 0; k < n; k++) {
      const p = packets[from + k];
      if (p.bytes.length > L.PKT_SLOT - L.PKT_HEADROOM) throw new Error(`simulator: packet of ${p.bytes.length} bytes exceeds a slot`);
      const off = L.DIR_PKT_OFF + k * L.PKT_SLOT + L.PKT_HEADROOM;
      this.bytes.set(p.bytes, off);
      const d = L.DIR_DESC_OFF + k * L.DESC_SIZE;
      this.view.setUint32(d + L.DESC_OFF, off, true);
      this.view.setUint32(d + L.DESC_LEN, p.bytes.length, true);
      this.view.setUint16(d + L.DESC_FLAGS, p.l2 ? L.DESCF_L2 : 0, true);
    }
    return n;
  }

  /** The verdict, reason and bytes the kernel left in descriptor k. */
  result(k: number): SimResult {
    const d = L.DIR_DESC_OFF + k * L.DESC_SIZE;
    const off = this.view.getUint32(d + L.DESC_OFF, true), len = this.view.getUint32(d + L.DESC_LEN, true);
    return {
      verdict: VERDICTS[this.bytes[d + L.DESC_VERDICT]] ?? "drop",
      reason: REASON_NAMES[this.bytes[d + L.DESC_REASON]] ?? `reason ${this.bytes[d + L.DESC_REASON]}`,
      bytes: this.bytes.slice(off, off + Math.min(len, L.PKT_SLOT)),
      conn: this.view.getInt32(d + L.DESC_CONN, true),
    };
  }

  /** Pushes packets through the data path in batches at the current clock. */
  send(packets: SimPacket[]): SimResult[] {
    const out: SimResult[] = [];
    for (let from = 0; from < packets.length;) {
      const n = this.load(packets, from);
      this.director.processBatch(n, this.clockMs);
      for (let k = 0; k < n; k++) out.push(this.result(k));
      from += n;
    }
    return out;
  }

  /** One packet through the data path. */
  one(bytes: Uint8Array, l2 = false): SimResult {
    return this.send([{ bytes, l2 }])[0];
  }
}
