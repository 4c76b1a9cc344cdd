// The VRRP advertisement on the wire: VRRPv2 (RFC 3768, IPv4 only) and VRRPv3 (RFC 9568, IPv4
// and IPv6). Pure functions: bytes in, a decoded advert or the reason it was rejected out.

import type { Family } from "./ip.ts";

export const VRRP_PROTOCOL = 112;
export const VRRP_TTL = 255;
export const VRRP_GROUP_V4 = Uint8Array.of(224, 0, 0, 18);
export const VRRP_GROUP_V6 = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12);

const HEADER = 8;
const V2_AUTH_DATA = 8;
const TYPE_ADVERTISEMENT = 1;
/** v2 authentication types; 2 (IP AH) is deprecated and not implemented by keepalived either. */
export const AUTH_NONE = 0;
export const AUTH_PASS = 1;

export interface Advert {
  version: 2 | 3;
  vrid: number;
  priority: number;
  /** Advertisement interval in centiseconds (v2 carries whole seconds: 100 per second). */
  intervalCs: number;
  /** 4 bytes each for IPv4, 16 for IPv6. */
  addresses: Uint8Array[];
  /** v2 only: AUTH_NONE or AUTH_PASS; 0 in v3. */
  authType: number;
  /** v2 only: the 8 authentication data bytes (a PASS password, zero padded). */
  authData: Uint8Array;
}

/** How a v3 IPv4 checksum is computed: over a pseudo-header (RFC 5798/9568 as keepalived does by
 * default) or over the VRRP message alone as in v2 (keepalived's `v3_checksum_as_v2`). */
export type ChecksumMode = "pseudo-header" | "v2-style";

interface Endpoints {
  source: Uint8Array;
  destination: Uint8Array;
}

/** Why a received advert was dropped; also the keys of the per-instance drop counters. */
export type DropReason =
  | "length" // shorter than its fixed fields, or a broken IP header
  | "ttl" // TTL / hop limit not 255: it may have crossed a router
  | "version"
  | "type"
  | "count" // address count disagrees with the length, or is zero
  | "checksum"
  | "vrid" // no instance here uses that virtual router id
  | "auth" // v2 authentication type or password differs
  | "interval" // v2 interval differs from ours, or a zero interval
  | "addresses"; // address list differs and the sender is not the address owner

/** Every drop reason (the tests show each one is reachable). */
export const DROP_REASONS: readonly DropReason[] = [
  "length", "ttl", "version", "type", "count", "checksum", "vrid", "auth", "interval", "addresses",
];

type Decoded = { ok: true; advert: Advert } | { ok: false; reason: DropReason; detail: string };

// ------------------------------------------------------------------------------------- checksums

/** The Internet checksum (RFC 1071) over the concatenation of `parts`. */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let odd = false; // an odd-length part leaves its last byte as the high half of the next word
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) {
      sum += odd ? part[i] : part[i] << 8;
      odd = !odd;
    }
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function pseudoHeader(family: Family, endpoints: Endpoints, length: number): Uint8Array {
  if (family === 4) {
    const p = new Uint8Array(12);
    p.set(endpoints.source, 0);
    p.set(endpoints.destination, 4);
    p[9] = VRRP_PROTOCOL;
    p[10] = length >> 8;
    p[11] = length & 0xff;
    return p;
  }
  const p = new Uint8Array(40);
  p.set(endpoints.source, 0);
  p.set(endpoints.destination, 16);
  new DataView(p.buffer).setUint32(32, length);
  p[39] = VRRP_PROTOCOL;
  return p;
}

/** The checksum a message must carry (computed with its checksum field taken as zero). */
function advertChecksum(message: Uint8Array, family: Family, endpoints: Endpoints | null, mode: ChecksumMode): number {
  const zeroed = message.slice();
  zeroed[6] = 0;
  zeroed[7] = 0;
  const version = message[0] >> 4;
  // IPv6 has no header checksum, so v3 over IPv6 always covers the pseudo-header.
  const withPseudo = version === 3 && (family === 6 || mode === "pseudo-header");
  if (!withPseudo) return internetChecksum(zeroed);
  if (endpoints === null) throw new Error("a VRRPv3 checksum needs the source and destination addresses");
  return internetChecksum(pseudoHeader(family, endpoints, message.length), zeroed);
}

// --------------------------------------------------------------------------------------- encode

/** The VRRP message (what follows the IP header). `endpoints` are needed for a v3 checksum. */
export function encodeAdvert(a: Advert, family: Family, endpoints: Endpoints | null, mode: ChecksumMode = "pseudo-header"): Uint8Array {
  const addressLength = family === 4 ? 4 : 16;
  if (a.version === 2 && family !== 4) throw new Error("VRRPv2 is defined for IPv4 only");
  if (a.addresses.length < 1 || a.addresses.length > 255) throw new Error("an advert carries 1..255 addresses");
  const length = HEADER + a.addresses.length * addressLength + (a.version === 2 ? V2_AUTH_DATA : 0);
  const m = new Uint8Array(length);
  m[0] = (a.version << 4) | TYPE_ADVERTISEMENT;
  m[1] = a.vrid;
  m[2] = a.priority;
  m[3] = a.addresses.length;
  if (a.version === 2) {
    m[4] = a.authType;
    m[5] = Math.round(a.intervalCs / 100);
  } else {
    const interval = a.intervalCs & 0x0fff; // the top 4 bits are reserved and sent as zero
    m[4] = interval >> 8;
    m[5] = interval & 0xff;
  }
  a.addresses.forEach((address, i) => {
    if (address.length !== addressLength) throw new Error(`address ${i} has ${address.length} bytes, expected ${addressLength}`);
    m.set(address, HEADER + i * addressLength);
  });
  if (a.version === 2) m.set(a.authData.subarray(0, V2_AUTH_DATA), HEADER + a.addresses.length * 4);
  const sum = advertChecksum(m, family, endpoints, mode);
  m[6] = sum >> 8;
  m[7] = sum & 0xff;
  return m;
}

/** The 8 auth data bytes of a v2 PASS password: its first 8 bytes, zero padded (as keepalived). */
export function passwordBytes(password: string): Uint8Array {
  const out = new Uint8Array(V2_AUTH_DATA);
  out.set(new TextEncoder().encode(password).subarray(0, V2_AUTH_DATA));
  return out;
}

// --------------------------------------------------------------------------------------- decode

export interface ReceiveContext {
  family: Family;
  /** TTL (IPv4) or hop limit (IPv6) the packet arrived with. */
  hopLimit: number;
  endpoints: Endpoints;
  /** How v3 IPv4 checksums are expected; IPv6 always uses the pseudo-header. */
  checksumMode: ChecksumMode;
}

const drop = (reason: DropReason, detail: string): Decoded => ({ ok: false, reason, detail });

/** Checks a received VRRP message as RFC 3768 §7.1 and RFC 9568 §7.1 require, in their order. */
export function decodeAdvert(m: Uint8Array, ctx: ReceiveContext): Decoded {
  if (ctx.hopLimit !== VRRP_TTL) {
    return drop("ttl", `${ctx.family === 4 ? "TTL" : "hop limit"} ${ctx.hopLimit}, expected ${VRRP_TTL}`);
  }
  if (m.length < HEADER) return drop("length", `${m.length} bytes, shorter than the ${HEADER}-byte header`);
  const version = m[0] >> 4;
  const type = m[0] & 0x0f;
  if (version !== 2 && version !== 3) return drop("version", `version ${version}`);
  if (version === 2 && ctx.family === 6) return drop("version", "version 2 over IPv6");
  if (type !== TYPE_ADVERTISEMENT) return drop("type", `type ${type}, expected ${TYPE_ADVERTISEMENT} (advertisement)`);
  const count = m[3];
  const addressLength = ctx.family === 4 ? 4 : 16;
  const expected = HEADER + count * addressLength + (version === 2 ? V2_AUTH_DATA : 0);
  if (count === 0) return drop("count", "address count 0");
  if (m.length !== expected) {
    return drop("count", `address count ${count} needs ${expected} bytes, got ${m.length}`);
  }
  const carried = (m[6] << 8) | m[7];
  const computed = advertChecksum(m, ctx.family, ctx.endpoints, ctx.checksumMode);
  if (carried !== computed) {
    const hex = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;
    return drop("checksum", `checksum ${hex(carried)}, expected ${hex(computed)}`);
  }
  const addresses: Uint8Array[] = [];
  for (let i = 0; i < count; i++) addresses.push(m.slice(HEADER + i * addressLength, HEADER + (i + 1) * addressLength));
  const advert: Advert = {
    version,
    vrid: m[1],
    priority: m[2],
    intervalCs: version === 2 ? m[5] * 100 : ((m[4] & 0x0f) << 8) | m[5],
    addresses,
    authType: version === 2 ? m[4] : AUTH_NONE,
    authData: version === 2 ? m.slice(HEADER + count * 4) : new Uint8Array(V2_AUTH_DATA),
  };
  return { ok: true, advert };
}

/** The VRID of a message long enough to have one (to find the instance it is for), or null. */
export function peekVrid(m: Uint8Array): number | null {
  return m.length >= 2 ? m[1] : null;
}

// ---------------------------------------------------------------------------------- IPv4 header

interface IPv4Packet {
  source: Uint8Array;
  destination: Uint8Array;
  ttl: number;
  protocol: number;
  payload: Uint8Array;
}

/** Splits what a raw IPv4 socket returns (header included) into header fields and payload. */
export function parseIPv4Packet(bytes: Uint8Array): IPv4Packet | null {
  if (bytes.length < 20 || bytes[0] >> 4 !== 4) return null;
  const headerLength = (bytes[0] & 0x0f) * 4;
  const totalLength = (bytes[2] << 8) | bytes[3];
  if (headerLength < 20 || totalLength < headerLength || bytes.length < headerLength) return null;
  const end = Math.min(totalLength, bytes.length);
  return {
    source: bytes.slice(12, 16),
    destination: bytes.slice(16, 20),
    ttl: bytes[8],
    protocol: bytes[9],
    payload: bytes.subarray(headerLength, end),
  };
}

// --------------------------------------------------------------------------- per-instance checks

/** What an instance expects of adverts for its virtual router. */
export interface Expectation {
  version: 2 | 3;
  /** Our own interval: v2 requires adverts to carry the same one. */
  intervalCs: number;
  authType: number;
  authData: Uint8Array;
  addresses: Uint8Array[];
}

type Checked = { ok: true } | { ok: false; reason: DropReason; detail: string };

/** The checks after the VRID matched an instance (RFC 3768 §7.1, RFC 9568 §7.1). */
export function checkAdvert(a: Advert, e: Expectation): Checked {
  if (a.version !== e.version) return { ok: false, reason: "version", detail: `version ${a.version}, this instance runs ${e.version}` };
  if (a.version === 2) {
    if (a.authType !== e.authType) {
      return { ok: false, reason: "auth", detail: `authentication type ${a.authType}, expected ${e.authType}` };
    }
    if (e.authType === AUTH_PASS && !a.authData.every((b, i) => b === e.authData[i])) {
      return { ok: false, reason: "auth", detail: "wrong password" };
    }
  }
  if (a.intervalCs === 0) return { ok: false, reason: "interval", detail: "advertisement interval 0" };
  if (a.version === 2 && a.intervalCs !== e.intervalCs) {
    return { ok: false, reason: "interval", detail: `interval ${a.intervalCs / 100}s, ours is ${e.intervalCs / 100}s` };
  }
  // The address owner (priority 255) is authoritative; anyone else must agree with our list.
  if (a.priority !== 255 && !sameAddressSet(a.addresses, e.addresses)) {
    return { ok: false, reason: "addresses", detail: `${a.addresses.length} address(es) that differ from ours` };
  }
  return { ok: true };
}

function sameAddressSet(a: Uint8Array[], b: Uint8Array[]): boolean {
  const key = (x: Uint8Array) => Array.from(x).join(",");
  const mine = new Set(b.map(key));
  const theirs = new Set(a.map(key));
  return mine.size === theirs.size && [...theirs].every((k) => mine.has(k));
}
