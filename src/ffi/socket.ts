// BSD sockets through libc: what raw IP (VRRP, ICMPv6), AF_PACKET and netlink sockets need.
// Every socket is opened non-blocking, so a receive that finds nothing returns null instead of
// blocking the event loop; callers poll. Layouts and constants are Linux x86-64/aarch64.
import { runtime } from "../runtime/index.ts";
import type { FfiSymbol } from "../runtime/types.ts";

const SYMBOLS = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "buffer", "u32"], returns: "i32" },
  bind: { args: ["i32", "buffer", "u32"], returns: "i32" },
  sendto: { args: ["i32", "buffer", "usize", "i32", "buffer", "u32"], returns: "i64" },
  recvfrom: { args: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], returns: "i64" },
  recvmsg: { args: ["i32", "buffer", "i32"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
  clock_gettime: { args: ["i32", "buffer"], returns: "i32" },
  __errno_location: { args: [], returns: "usize" },
  // memcpy(dst, dst, 0) returns dst: the address of a buffer, for structs that hold pointers (msghdr).
  memcpy: { args: ["buffer", "buffer", "usize"], returns: "usize" },
  // memmove from a raw address into a buffer: reads errno.
  memmove: { args: ["buffer", "usize", "usize"], returns: "usize" },
} satisfies Record<string, FfiSymbol>;

let lib: ReturnType<typeof runtime.dlopen<typeof SYMBOLS>> | null = null;
const libc = () => (lib ??= runtime.dlopen("libc.so.6", SYMBOLS));

export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;

export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
/** Each datagram carries its kernel arrival time (CLOCK_REALTIME) as an SCM_TIMESTAMPNS control message. */
export const SO_TIMESTAMPNS = 35;
export const SCM_TIMESTAMPNS = SO_TIMESTAMPNS;
export const SO_BINDTODEVICE = 25;
/** SO_RCVBUF beyond net.core.rmem_max (needs CAP_NET_ADMIN). */
export const SO_RCVBUFFORCE = 33;
export const IPPROTO_IP = 0;
export const IP_TTL = 2;
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
export const IP_ADD_MEMBERSHIP = 35;
export const IPPROTO_IPV6 = 41;
export const IPV6_CHECKSUM = 7;
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MULTICAST_IF = 17;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_MULTICAST_LOOP = 19;
export const IPV6_ADD_MEMBERSHIP = 20;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const IPV6_RECVHOPLIMIT = 51;
export const IPV6_HOPLIMIT = 52;
export const IPPROTO_ICMPV6 = 58;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 9: "EBADF", 11: "EAGAIN", 13: "EACCES", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 22: "EINVAL",
  24: "EMFILE", 90: "EMSGSIZE", 93: "EPROTONOSUPPORT", 97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL",
  100: "ENETDOWN", 101: "ENETUNREACH", 105: "ENOBUFS", 113: "EHOSTUNREACH",
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** A failed system call, with the errno it set. */
export class SocketError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${errnoName(errno)}`);
  }
}

const errnoBytes = new Uint8Array(new ArrayBuffer(4));
const errnoView = new DataView(errnoBytes.buffer);

/** errno of the last failed call on this thread (read right after it, before anything else runs). */
export function lastErrno(): number {
  const c = libc();
  c.memmove(errnoBytes, c.__errno_location(), 4);
  return errnoView.getInt32(0, true);
}

/** The address of a buffer's first byte. The buffer must own a fixed ArrayBuffer (not be moved). */
export function addressOf(buffer: Uint8Array): bigint {
  return BigInt(libc().memcpy(buffer, buffer, 0));
}

function check(call: string, result: number | bigint): number {
  const n = Number(result);
  if (n < 0) throw new SocketError(call, lastErrno());
  return n;
}

export function openSocket(family: number, type: number, protocol: number): number {
  return check("socket", libc().socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
}

export function closeSocket(fd: number): void {
  libc().close(fd);
}

/** setsockopt with an int value or raw option bytes. */
export function setOption(fd: number, level: number, name: number, value: number | Uint8Array, what = `setsockopt(${level}, ${name})`): void {
  const bytes = typeof value === "number" ? int32(value) : value;
  check(what, libc().setsockopt(fd, level, name, bytes, bytes.length));
}

/** SO_BINDTODEVICE: only this interface's packets, and sends leave through it. */
export function bindToDevice(fd: number, name: string): void {
  setOption(fd, SOL_SOCKET, SO_BINDTODEVICE, new TextEncoder().encode(`${name}\0`), `SO_BINDTODEVICE ${name}`);
}

export function bindSocket(fd: number, sockaddr: Uint8Array): void {
  check("bind", libc().bind(fd, sockaddr, sockaddr.length));
}

/** Sends one datagram; returns the bytes sent. */
export function sendTo(fd: number, data: Uint8Array, sockaddr: Uint8Array): number {
  return check("sendto", libc().sendto(fd, data, data.length, 0, sockaddr, sockaddr.length));
}

/** One datagram into `buffer` and the sender into `from`, or null when nothing is waiting. */
const fromLength = new Uint8Array(4);
const fromLengthView = new DataView(fromLength.buffer);

export function receiveFrom(fd: number, buffer: Uint8Array, from: Uint8Array): number | null {
  fromLengthView.setInt32(0, from.length, true);
  const n = Number(libc().recvfrom(fd, buffer, buffer.length, MSG_DONTWAIT, from, fromLength));
  if (n >= 0) return n;
  const errno = lastErrno();
  if (errno === 11) return null;
  throw new SocketError("recvfrom", errno);
}

const timespec = new Uint8Array(new ArrayBuffer(16));

/** CLOCK_REALTIME in nanoseconds: the clock of SO_TIMESTAMPNS. */
export function realtimeNs(): bigint {
  check("clock_gettime", libc().clock_gettime(0, timespec));
  return timespecNs(timespec);
}

/** A struct timespec (two 64-bit fields) as nanoseconds. */
export function timespecNs(bytes: Uint8Array): bigint {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 16);
  return v.getBigInt64(0, true) * 1_000_000_000n + v.getBigInt64(8, true);
}

function int32(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, true);
  return b;
}

// ------------------------------------------------------------------------------------- recvmsg

/** A received datagram with its ancillary data (control messages), as recvmsg returns them. */
export interface Message {
  length: number;
  /** Control messages as [level, type, data]. */
  control: [number, number, Uint8Array][];
}

/**
 * A reusable recvmsg(2) setup: one fixed ArrayBuffer holds the msghdr, the iovec, the sender
 * address and the control buffer, so their addresses stay valid for the socket's life.
 */
export class MessageReceiver {
  readonly data: Uint8Array;
  readonly from: Uint8Array;
  readonly #control: Uint8Array;
  readonly #header: Uint8Array;
  readonly #view: DataView;

  constructor(dataSize = 2048, fromSize = 128, controlSize = 256) {
    const memory = new ArrayBuffer(56 + 16 + fromSize + controlSize + dataSize);
    this.#header = new Uint8Array(memory, 0, 56); // struct msghdr
    const iov = new Uint8Array(memory, 56, 16); // struct iovec
    this.from = new Uint8Array(memory, 72, fromSize);
    this.#control = new Uint8Array(memory, 72 + fromSize, controlSize);
    this.data = new Uint8Array(memory, 72 + fromSize + controlSize, dataSize);
    this.#view = new DataView(memory);
    const base = addressOf(new Uint8Array(memory));
    const iovView = new DataView(memory, 56, 16);
    iovView.setBigUint64(0, base + BigInt(this.data.byteOffset), true);
    iovView.setBigUint64(8, BigInt(dataSize), true);
    const h = this.#view;
    h.setBigUint64(0, base + BigInt(this.from.byteOffset), true); // msg_name
    h.setBigUint64(16, base + BigInt(iov.byteOffset), true); // msg_iov
    h.setBigUint64(24, 1n, true); // msg_iovlen
    h.setBigUint64(32, base + BigInt(this.#control.byteOffset), true); // msg_control
  }

  /** One datagram, or null when nothing is waiting. */
  receive(fd: number): Message | null {
    // Called on every poll, mostly to find nothing: it allocates nothing until a datagram is there.
    const h = this.#view;
    h.setUint32(8, this.from.length, true); // msg_namelen
    h.setUint32(40, this.#control.length, true); // msg_controllen (its high half stays 0)
    h.setInt32(48, 0, true); // msg_flags
    const n = Number(libc().recvmsg(fd, this.#header, MSG_DONTWAIT));
    if (n < 0) {
      const errno = lastErrno();
      if (errno === 11) return null;
      throw new SocketError("recvmsg", errno);
    }
    const controlLength = h.getUint32(40, true);
    return { length: n, control: parseControl(this.#control.subarray(0, controlLength)) };
  }
}

/** struct cmsghdr entries: {size_t len; int level; int type; data}, each aligned to 8 bytes. */
function parseControl(bytes: Uint8Array): [number, number, Uint8Array][] {
  const out: [number, number, Uint8Array][] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let at = 0; at + 16 <= bytes.length;) {
    const length = Number(view.getBigUint64(at, true));
    if (length < 16 || at + length > bytes.length) break;
    out.push([view.getInt32(at + 8, true), view.getInt32(at + 12, true), bytes.slice(at + 16, at + length)]);
    at += (length + 7) & ~7;
  }
  return out;
}

// ----------------------------------------------------------------------------------- sockaddrs

export function sockaddrIn(address: Uint8Array): Uint8Array {
  const s = new Uint8Array(16);
  new DataView(s.buffer).setUint16(0, AF_INET, true);
  s.set(address, 4);
  return s;
}

export function sockaddrIn6(address: Uint8Array, scopeId = 0): Uint8Array {
  const s = new Uint8Array(28);
  const v = new DataView(s.buffer);
  v.setUint16(0, AF_INET6, true);
  s.set(address, 8);
  v.setUint32(24, scopeId, true);
  return s;
}

/** The address bytes in a sockaddr_in / sockaddr_in6. */
export function addressOfSockaddr(s: Uint8Array): Uint8Array | null {
  const family = s[0] | (s[1] << 8);
  if (family === AF_INET) return s.slice(4, 8);
  if (family === AF_INET6) return s.slice(8, 24);
  return null;
}

/** struct sockaddr_ll for sending a frame out of an interface. */
export function sockaddrLl(ifindex: number, protocol: number, destination: Uint8Array): Uint8Array {
  const s = new Uint8Array(20);
  const v = new DataView(s.buffer);
  v.setUint16(0, AF_PACKET, true);
  v.setUint16(2, protocol); // network byte order
  v.setInt32(4, ifindex, true);
  s[11] = destination.length;
  s.set(destination, 12);
  return s;
}

/** struct sockaddr_nl; pid 0 is the kernel. */
export function sockaddrNl(groups = 0): Uint8Array {
  const s = new Uint8Array(12);
  const v = new DataView(s.buffer);
  v.setUint16(0, AF_NETLINK, true);
  v.setUint32(8, groups, true);
  return s;
}

/** struct ip_mreqn: a group, and the interface by index. */
export function ipMreqn(group: Uint8Array, ifindex: number): Uint8Array {
  const m = new Uint8Array(12);
  m.set(group, 0);
  new DataView(m.buffer).setInt32(8, ifindex, true);
  return m;
}

/** struct ipv6_mreq. */
export function ipv6Mreq(group: Uint8Array, ifindex: number): Uint8Array {
  const m = new Uint8Array(20);
  m.set(group, 0);
  new DataView(m.buffer).setInt32(16, ifindex, true);
  return m;
}
