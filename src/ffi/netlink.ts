// rtnetlink (NETLINK_ROUTE) requests: add and remove interface addresses, list addresses and
// links, create and delete macvlan links. The kernel answers a request while handling the
// send, so a non-blocking receive right after finds the reply; no call ever blocks.
import {
  AF_INET, AF_INET6, AF_NETLINK, bindSocket, closeSocket, openSocket, receiveFrom, sendTo, SOCK_RAW, sockaddrNl,
} from "./socket.ts";
import { errnoName } from "./socket.ts";

const NETLINK_ROUTE = 0;
const RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18, RTM_NEWADDR = 20, RTM_DELADDR = 21, RTM_GETADDR = 22;
const NLMSG_ERROR = 2, NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1, NLM_F_ACK = 0x4, NLM_F_DUMP = 0x300, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400;
const IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_LABEL = 3, IFA_CACHEINFO = 6, IFA_FLAGS = 8;
const INFINITY_LIFE_TIME = 0xffffffff;
const IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_LINK = 5, IFLA_OPERSTATE = 16, IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, IFLA_MACVLAN_MODE = 1;
export const MACVLAN_MODE_PRIVATE = 1;
export const MACVLAN_MODE_BRIDGE = 4;
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;
/** Multicast group for link changes (bind with it to hear them). */
export const RTMGRP_LINK = 0x1;

/** An error the kernel returned for a request (its errno, e.g. EEXIST). */
export class NetlinkError extends Error {
  constructor(readonly request: string, readonly errno: number) {
    super(`${request}: ${errnoName(errno)}`);
  }
}

export interface InterfaceAddress {
  ifindex: number;
  family: 4 | 6;
  address: Uint8Array;
  prefixLength: number;
  flags: number;
  scope: number;
  label: string | null;
}

export interface Link {
  ifindex: number;
  name: string;
  flags: number;
  mac: Uint8Array | null;
  /** RFC 2863 operational state: 6 is up, 2 down, 0 unknown (e.g. loopback). */
  operState: number;
}

// ------------------------------------------------------------------------------------ encoding

/** Builds one netlink message: header, fixed struct, then attributes (nested ones pre-encoded). */
class MessageBuilder {
  #parts: Uint8Array[] = [];

  constructor(readonly type: number, readonly flags: number, fixed: Uint8Array) {
    this.#parts.push(fixed);
  }

  attr(type: number, payload: Uint8Array): this {
    this.#parts.push(encodeAttr(type, payload));
    return this;
  }

  build(seq: number): Uint8Array {
    const length = 16 + this.#parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(length);
    const v = new DataView(out.buffer);
    v.setUint32(0, length, true);
    v.setUint16(4, this.type, true);
    v.setUint16(6, this.flags, true);
    v.setUint32(8, seq, true);
    let at = 16;
    for (const p of this.#parts) { out.set(p, at); at += p.length; }
    return out;
  }
}

const align4 = (n: number) => (n + 3) & ~3;

function encodeAttr(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(align4(4 + payload.length));
  const v = new DataView(out.buffer);
  v.setUint16(0, 4 + payload.length, true);
  v.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const u32 = (n: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); return b; };
const cString = (s: string) => new TextEncoder().encode(`${s}\0`);

/** struct ifaddrmsg. */
function ifaddrmsg(family: 4 | 6, prefixLength: number, flags: number, ifindex: number): Uint8Array {
  const m = new Uint8Array(8);
  m[0] = family === 4 ? AF_INET : AF_INET6;
  m[1] = prefixLength;
  m[2] = flags & 0xff;
  new DataView(m.buffer).setUint32(4, ifindex, true);
  return m;
}

/** struct ifinfomsg. */
function ifinfomsg(ifindex: number, flags = 0, change = 0): Uint8Array {
  const m = new Uint8Array(16);
  const v = new DataView(m.buffer);
  v.setInt32(4, ifindex, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return m;
}

// ------------------------------------------------------------------------------------ decoding

interface RawMessage {
  type: number;
  seq: number;
  body: Uint8Array;
}

function splitMessages(bytes: Uint8Array): RawMessage[] {
  const out: RawMessage[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let at = 0; at + 16 <= bytes.length;) {
    const length = v.getUint32(at, true);
    if (length < 16 || at + length > bytes.length) break;
    out.push({ type: v.getUint16(at + 4, true), seq: v.getUint32(at + 8, true), body: bytes.subarray(at + 16, at + length) });
    at += align4(length);
  }
  return out;
}

function parseAttrs(bytes: Uint8Array): Map<number, Uint8Array> {
  const attrs = new Map<number, Uint8Array>();
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let at = 0; at + 4 <= bytes.length;) {
    const length = v.getUint16(at, true);
    if (length < 4 || at + length > bytes.length) break;
    attrs.set(v.getUint16(at + 2, true) & 0x3fff, bytes.subarray(at + 4, at + length));
    at += align4(length);
  }
  return attrs;
}

const decodeString = (b: Uint8Array | undefined) => b === undefined ? null : new TextDecoder().decode(b).replace(/\0.*$/s, "");

function parseAddress(body: Uint8Array): InterfaceAddress | null {
  if (body.length < 8) return null;
  const family = body[0] === AF_INET ? 4 : body[0] === AF_INET6 ? 6 : null;
  if (family === null) return null;
  const attrs = parseAttrs(body.subarray(8));
  // IFA_LOCAL is the interface's own address on point-to-point links; IFA_ADDRESS otherwise.
  const address = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  if (address === undefined) return null;
  const flagsAttr = attrs.get(IFA_FLAGS);
  const flags = flagsAttr?.length === 4 ? new DataView(flagsAttr.buffer, flagsAttr.byteOffset).getUint32(0, true) : body[2];
  return {
    ifindex: new DataView(body.buffer, body.byteOffset).getUint32(4, true),
    family,
    address: address.slice(),
    prefixLength: body[1],
    flags,
    scope: body[3],
    label: decodeString(attrs.get(IFA_LABEL)),
  };
}

export function parseLink(body: Uint8Array): Link | null {
  if (body.length < 16) return null;
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const attrs = parseAttrs(body.subarray(16));
  return {
    ifindex: v.getInt32(4, true),
    name: decodeString(attrs.get(IFLA_IFNAME)) ?? "",
    flags: v.getUint32(8, true),
    mac: attrs.get(IFLA_ADDRESS)?.slice() ?? null,
    operState: attrs.get(IFLA_OPERSTATE)?.[0] ?? 0,
  };
}

// ------------------------------------------------------------------------------------ requests

/** A netlink route socket that sends requests and reads their replies. */
export class RouteSocket {
  readonly fd: number;
  #seq = Math.floor(Math.random() * 1e6);
  readonly #buffer = new Uint8Array(new ArrayBuffer(65536));
  readonly #from = new Uint8Array(12);

  /** `groups` subscribes to notifications, e.g. RTMGRP_LINK. */
  constructor(groups = 0) {
    this.fd = openSocket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    try {
      bindSocket(this.fd, sockaddrNl(groups));
    } catch (e) {
      closeSocket(this.fd);
      throw e;
    }
  }

  close(): void {
    closeSocket(this.fd);
  }

  /** Notifications waiting on a subscribed socket (replies to nothing), or none. */
  pending(): RawMessage[] {
    const out: RawMessage[] = [];
    for (let i = 0; i < 64; i++) {
      const n = receiveFrom(this.fd, this.#buffer, this.#from);
      if (n === null) break;
      out.push(...splitMessages(this.#buffer.slice(0, n)));
    }
    return out;
  }

  /** Sends a request and returns the reply messages (all parts of a dump); throws NetlinkError. */
  request(what: string, message: MessageBuilder): RawMessage[] {
    const seq = ++this.#seq;
    sendTo(this.fd, message.build(seq), sockaddrNl());
    const replies: RawMessage[] = [];
    const dump = (message.flags & NLM_F_DUMP) === NLM_F_DUMP;
    // The reply is queued during the send; a dump refills as it is read. Bounded all the same.
    let empty = 0;
    for (let reads = 0; reads < 10_000 && empty < 3; reads++) {
      const n = receiveFrom(this.fd, this.#buffer, this.#from);
      if (n === null) {
        empty++;
        continue;
      }
      for (const m of splitMessages(this.#buffer.slice(0, n))) {
        if (m.seq !== seq) continue; // a notification or a stale reply
        if (m.type === NLMSG_DONE) return replies;
        if (m.type === NLMSG_ERROR) {
          const errno = -new DataView(m.body.buffer, m.body.byteOffset).getInt32(0, true);
          if (errno !== 0) throw new NetlinkError(what, errno);
          return replies; // the ACK
        }
        replies.push(m);
        if (!dump) return replies;
      }
    }
    throw new Error(`${what}: no reply from the kernel`);
  }
}

let shared: RouteSocket | null = null;
/** One request socket per process, opened on first use. */
export function routeSocket(): RouteSocket {
  return (shared ??= new RouteSocket());
}

/** Adds an address to an interface; IPv6 addresses skip duplicate address detection (usable at
 * once). `deprecated` (IPv6): a preferred lifetime of 0, so the address receives but the kernel
 * never picks it as a source (a /128 VIP would otherwise win the longest-prefix rule). */
export function addAddress(ifindex: number, family: 4 | 6, address: Uint8Array, prefixLength: number, label?: string, deprecated = false): void {
  const flags = family === 6 ? IFA_F_NODAD : 0;
  const m = new MessageBuilder(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifaddrmsg(family, prefixLength, flags, ifindex))
    .attr(IFA_LOCAL, address)
    .attr(IFA_ADDRESS, address);
  if (label !== undefined && family === 4) m.attr(IFA_LABEL, cString(label));
  if (family === 6) m.attr(IFA_FLAGS, u32(flags));
  if (family === 6 && deprecated) {
    // struct ifa_cacheinfo: preferred and valid lifetimes, then two timestamps the kernel sets.
    const info = new Uint8Array(16);
    new DataView(info.buffer).setUint32(4, INFINITY_LIFE_TIME, true);
    m.attr(IFA_CACHEINFO, info);
  }
  routeSocket().request("RTM_NEWADDR", m);
}

export function deleteAddress(ifindex: number, family: 4 | 6, address: Uint8Array, prefixLength: number): void {
  const m = new MessageBuilder(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, ifaddrmsg(family, prefixLength, 0, ifindex))
    .attr(IFA_LOCAL, address)
    .attr(IFA_ADDRESS, address);
  routeSocket().request("RTM_DELADDR", m);
}

/** Every address of one interface (or of all, with ifindex 0), in the kernel's order (primaries first). */
export function listAddresses(ifindex = 0, family?: 4 | 6): InterfaceAddress[] {
  const all: InterfaceAddress[] = [];
  for (const f of family === undefined ? [4, 6] as const : [family]) {
    const request = new MessageBuilder(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, ifaddrmsg(f, 0, 0, 0));
    for (const reply of routeSocket().request("RTM_GETADDR", request)) {
      const a = parseAddress(reply.body);
      if (a !== null && (ifindex === 0 || a.ifindex === ifindex)) all.push(a);
    }
  }
  return all;
}

export function getLink(ifindex: number): Link | null {
  try {
    const replies = routeSocket().request("RTM_GETLINK", new MessageBuilder(RTM_GETLINK, NLM_F_REQUEST, ifinfomsg(ifindex)));
    return replies.length > 0 ? parseLink(replies[0].body) : null;
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === 19) return null; // ENODEV
    throw e;
  }
}

/** RTM_NEWLINK notifications and replies carry a link; anything else yields null. */
export function linkOfMessage(m: RawMessage): Link | null {
  return m.type === RTM_NEWLINK || m.type === RTM_DELLINK ? parseLink(m.body) : null;
}

/** Creates a macvlan link on `parentIndex` with a fixed MAC (a VRRP virtual MAC), and brings it up. */
export function createMacvlan(parentIndex: number, name: string, mac: Uint8Array, mode = MACVLAN_MODE_PRIVATE): void {
  const info = concat(
    encodeAttr(IFLA_INFO_KIND, cString("macvlan")),
    encodeAttr(IFLA_INFO_DATA, encodeAttr(IFLA_MACVLAN_MODE, u32(mode))),
  );
  const m = new MessageBuilder(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0, IFF_UP, IFF_UP))
    .attr(IFLA_IFNAME, cString(name))
    .attr(IFLA_LINK, u32(parentIndex))
    .attr(IFLA_ADDRESS, mac)
    .attr(IFLA_LINKINFO, info);
  routeSocket().request("RTM_NEWLINK macvlan", m);
}

export function deleteLink(ifindex: number): void {
  routeSocket().request("RTM_DELLINK", new MessageBuilder(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(ifindex)));
}
