// The PROXY protocol (HAProxy's proxy-protocol.txt), v1 text and v2 binary: the header a proxy
// sends first on a connection so the server learns the client's address. Pure: encode for
// `send_proxy`, parse for `accept_proxy` (incrementally: a header may arrive over several reads).
import { formatIP, parseIP } from "../vrrp/ip.ts";

export interface Endpoint {
  address: string;
  port: number;
}

/** What a header says: `local` (a health check from the proxy itself) carries no addresses. */
export interface ProxyHeader {
  version: 1 | 2;
  command: "proxy" | "local";
  transport: "tcp" | "udp" | "unknown";
  source: Endpoint | null;
  destination: Endpoint | null;
  /** PP2_TYPE_AUTHORITY (v2): the host name the client asked for (TLS SNI). */
  authority: string | null;
}

export type ProxyParse =
  | { status: "incomplete" }
  | { status: "ok"; header: ProxyHeader; length: number }
  | { status: "invalid"; kind: ProxyHeaderError; reason: string };

/** Why a header was refused: none at all, longer than the bound, or not well formed. */
export type ProxyHeaderError = "missing" | "too_long" | "malformed";

export const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
const V1_PREFIX = "PROXY ";
/** The longest v1 line, CRLF included (the spec's bound). */
export const V1_MAX = 107;
/** The longest v2 header accepted: the address block and the TLVs a proxy sends (SNI, ALPN,
 * unique id) fit easily; a larger one is refused rather than buffered. */
export const V2_MAX = 16 + 2048;
const PP2_TYPE_AUTHORITY = 0x02;

/** Reads a PROXY header at the start of `buf`. */
export function parseProxyHeader(buf: Uint8Array): ProxyParse {
  if (buf.length === 0) return { status: "incomplete" };
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  if (buf[0] === V1_PREFIX.charCodeAt(0)) return parseV1(buf);
  return missing();
}

function missing(): ProxyParse {
  return { status: "invalid", kind: "missing", reason: "no PROXY header (neither the v1 nor the v2 signature)" };
}

function bad(kind: ProxyHeaderError, reason: string): ProxyParse {
  return { status: "invalid", kind, reason };
}

function parseV1(buf: Uint8Array): ProxyParse {
  for (let i = 0; i < Math.min(buf.length, V1_PREFIX.length); i++) {
    if (buf[i] !== V1_PREFIX.charCodeAt(i)) return missing();
  }
  let end = -1;
  for (let i = 0; i + 1 < Math.min(buf.length, V1_MAX); i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) { end = i; break; }
  }
  if (end < 0) return buf.length >= V1_MAX ? bad("too_long", `v1 header longer than ${V1_MAX} bytes`) : { status: "incomplete" };
  const line = String.fromCharCode(...buf.subarray(0, end));
  const parts = line.split(" ");
  const length = end + 2;
  if (parts[1] === "UNKNOWN") {
    return { status: "ok", length, header: { version: 1, command: "proxy", transport: "unknown", source: null, destination: null, authority: null } };
  }
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    return bad("malformed", `malformed v1 header ${JSON.stringify(line)}`);
  }
  const family = parts[1] === "TCP4" ? 4 : 6;
  const src = endpoint(parts[2], parts[4], family);
  const dst = endpoint(parts[3], parts[5], family);
  if (!src || !dst) return bad("malformed", `malformed v1 address in ${JSON.stringify(line)}`);
  return { status: "ok", length, header: { version: 1, command: "proxy", transport: "tcp", source: src, destination: dst, authority: null } };
}

function endpoint(address: string, port: string, family: 4 | 6): Endpoint | null {
  const ip = parseIP(address);
  if (!ip || ip.family !== family || !/^(0|[1-9][0-9]{0,4})$/.test(port) || Number(port) > 65535) return null;
  return { address: formatIP(ip.bytes), port: Number(port) };
}

function parseV2(buf: Uint8Array): ProxyParse {
  for (let i = 0; i < Math.min(buf.length, V2_SIGNATURE.length); i++) {
    if (buf[i] !== V2_SIGNATURE[i]) return missing();
  }
  if (buf.length < 16) return { status: "incomplete" };
  const verCmd = buf[12], famProto = buf[13];
  const bodyLength = (buf[14] << 8) | buf[15];
  if (verCmd >> 4 !== 2) return bad("malformed", `v2 header with version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return bad("malformed", `v2 header with command ${cmd}`);
  if (16 + bodyLength > V2_MAX) return bad("too_long", `v2 header of ${16 + bodyLength} bytes (at most ${V2_MAX})`);
  if (buf.length < 16 + bodyLength) return { status: "incomplete" };
  const length = 16 + bodyLength;
  const body = buf.subarray(16, length);
  const family = famProto >> 4, proto = famProto & 0x0f;
  const transport = proto === 1 ? "tcp" : proto === 2 ? "udp" : "unknown";
  const addressBytes = family === 1 ? 12 : family === 2 ? 36 : family === 0 ? 0 : -1;
  if (addressBytes < 0 || proto > 2) return bad("malformed", `v2 header with address family/protocol 0x${famProto.toString(16)}`);
  if (body.length < addressBytes) return bad("malformed", "v2 header shorter than its addresses");
  const authority = readAuthority(body.subarray(addressBytes));
  if (authority === undefined) return bad("malformed", "v2 header with a malformed TLV");
  let source: Endpoint | null = null, destination: Endpoint | null = null;
  if (cmd === 1 && addressBytes > 0) {
    const n = addressBytes === 12 ? 4 : 16;
    const ports = new DataView(body.buffer, body.byteOffset + 2 * n, 4);
    source = { address: formatIP(body.slice(0, n)), port: ports.getUint16(0) };
    destination = { address: formatIP(body.slice(n, 2 * n)), port: ports.getUint16(2) };
  }
  const header: ProxyHeader = { version: 2, command: cmd === 1 ? "proxy" : "local", transport, source, destination, authority };
  return { status: "ok", length, header };
}

/** The authority TLV's value, null when absent, undefined when the TLVs do not parse. */
function readAuthority(tlvs: Uint8Array): string | null | undefined {
  let authority: string | null = null;
  for (let i = 0; i < tlvs.length;) {
    if (i + 3 > tlvs.length) return undefined;
    const type = tlvs[i], len = (tlvs[i + 1] << 8) | tlvs[i + 2];
    if (i + 3 + len > tlvs.length) return undefined;
    if (type === PP2_TYPE_AUTHORITY) authority = new TextDecoder().decode(tlvs.subarray(i + 3, i + 3 + len));
    i += 3 + len;
  }
  return authority;
}

/** Both endpoints' address bytes when they are of one family (an IPv4-mapped IPv6 address counts as IPv4). */
function addressPair(src: Endpoint, dst: Endpoint): { family: 4 | 6; src: Uint8Array; dst: Uint8Array } | null {
  const a = parseIP(unmapped(src.address)), b = parseIP(unmapped(dst.address));
  if (!a || !b) return null;
  if (a.family === b.family) return { family: a.family, src: a.bytes, dst: b.bytes };
  // Mixed families (an IPv4 client on an IPv6 listener): both as IPv6, the IPv4 one mapped.
  const six = (ip: { family: 4 | 6; bytes: Uint8Array }) => ip.family === 6 ? ip.bytes : Uint8Array.of(...new Array(10).fill(0), 0xff, 0xff, ...ip.bytes);
  return { family: 6, src: six(a), dst: six(b) };
}

function unmapped(address: string): string {
  return address.toLowerCase().startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** The v1 line for a TCP connection from `src` to `dst` ("PROXY UNKNOWN" for addresses it cannot read). */
export function encodeProxyV1(src: Endpoint, dst: Endpoint): Uint8Array {
  const pair = addressPair(src, dst);
  const line = pair
    ? `PROXY TCP${pair.family} ${formatIP(pair.src)} ${formatIP(pair.dst)} ${src.port} ${dst.port}\r\n`
    : "PROXY UNKNOWN\r\n";
  return Uint8Array.from(line, (ch) => ch.charCodeAt(0));
}

/** The v2 header for a connection from `src` to `dst`, with the authority TLV when known. */
export function encodeProxyV2(src: Endpoint, dst: Endpoint, o: { transport?: "tcp" | "udp"; authority?: string | null } = {}): Uint8Array {
  const pair = addressPair(src, dst);
  const authority = o.authority ? new TextEncoder().encode(o.authority) : null;
  const addressBytes = pair ? (pair.family === 4 ? 12 : 36) : 0;
  const tlvBytes = authority ? 3 + authority.length : 0;
  const out = new Uint8Array(16 + addressBytes + tlvBytes);
  out.set(V2_SIGNATURE);
  out[12] = 0x21; // version 2, PROXY
  out[13] = pair ? ((pair.family === 4 ? 1 : 2) << 4) | (o.transport === "udp" ? 2 : 1) : 0;
  new DataView(out.buffer).setUint16(14, addressBytes + tlvBytes);
  if (pair) {
    const n = pair.src.length;
    out.set(pair.src, 16);
    out.set(pair.dst, 16 + n);
    new DataView(out.buffer).setUint16(16 + 2 * n, src.port);
    new DataView(out.buffer).setUint16(18 + 2 * n, dst.port);
  }
  if (authority) {
    const at = 16 + addressBytes;
    out[at] = PP2_TYPE_AUTHORITY;
    new DataView(out.buffer).setUint16(at + 1, authority.length);
    out.set(authority, at + 3);
  }
  return out;
}

export function encodeProxyHeader(version: "v1" | "v2", src: Endpoint, dst: Endpoint, authority: string | null = null): Uint8Array {
  return version === "v1" ? encodeProxyV1(src, dst) : encodeProxyV2(src, dst, { authority });
}
