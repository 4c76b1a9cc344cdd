// A TUN device through libc: open /dev/net/tun, attach it to an interface (TUNSETIFF with
// IFF_TUN | IFF_NO_PI: bare IP packets, no prefix), and read or write one packet per call at a raw
// address, so packets go straight to and from WASM linear memory with no copy. The fd is
// non-blocking: a read that finds nothing returns null, and the caller polls.
import { runtime } from "../runtime/index.ts";
import type { FfiSymbol } from "../runtime/types.ts";
import { lastErrno, SocketError } from "./socket.ts";

const SYMBOLS = {
  open: { args: ["buffer", "i32", "i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "buffer"], returns: "i32" },
  // The address is a raw pointer (usize), so a packet slot inside linear memory needs no view.
  read: { args: ["i32", "usize", "usize"], returns: "i64" },
  write: { args: ["i32", "usize", "usize"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
} satisfies Record<string, FfiSymbol>;

let lib: ReturnType<typeof runtime.dlopen<typeof SYMBOLS>> | null = null;
const libc = () => (lib ??= runtime.dlopen("libc.so.6", SYMBOLS));

const O_RDWR = 2, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001, IFF_NO_PI = 0x1000;
const EAGAIN = 11;
/** IFNAMSIZ less the terminating NUL. */
export const MAX_INTERFACE_NAME = 15;

export interface Tun {
  fd: number;
  /** The interface name the kernel gave (the one asked for). */
  name: string;
}

/** Opens (creating when absent) the TUN interface `name`; it is down until brought up. */
export function openTun(name: string): Tun {
  if (name.length === 0 || name.length > MAX_INTERFACE_NAME) throw new Error(`tun: interface name "${name}" must be 1 to ${MAX_INTERFACE_NAME} characters`);
  const c = libc();
  const fd = c.open(new TextEncoder().encode("/dev/net/tun\0"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) throw new SocketError("open /dev/net/tun", lastErrno());
  // struct ifreq: ifr_name[16], then ifr_flags (short) in the union.
  const ifreq = new Uint8Array(40);
  ifreq.set(new TextEncoder().encode(name), 0);
  new DataView(ifreq.buffer).setUint16(16, IFF_TUN | IFF_NO_PI, true);
  if (c.ioctl(fd, TUNSETIFF, ifreq) < 0) {
    const errno = lastErrno();
    c.close(fd);
    throw new SocketError(`TUNSETIFF ${name}`, errno);
  }
  const end = ifreq.indexOf(0);
  return { fd, name: new TextDecoder().decode(ifreq.subarray(0, end < 0 ? 16 : end)) };
}

/** One packet into [address, address + capacity): its length, or null when none is waiting. */
export function readPacket(fd: number, address: number, capacity: number): number | null {
  const n = Number(libc().read(fd, address, capacity));
  if (n >= 0) return n;
  const errno = lastErrno();
  if (errno === EAGAIN) return null;
  throw new SocketError("read tun", errno);
}

/** One packet from [address, address + length): 0 once written, else the errno (EAGAIN: the
 * device's queue is full; EINVAL: the kernel refused the packet). The caller counts, never throws. */
export function writePacket(fd: number, address: number, length: number): number {
  const n = Number(libc().write(fd, address, length));
  return n >= 0 ? 0 : lastErrno();
}

export function closeTun(tun: Tun): void {
  libc().close(tun.fd);
}
