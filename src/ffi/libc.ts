// libc through the runtime's FFI: the calls later parts (raw sockets for ICMP and VRRP, rtnetlink
// for virtual addresses) build on. Opened on first use, so a process that never needs it never
// loads it.
import { runtime } from "../runtime/index.ts";
import type { FfiSymbol } from "../runtime/types.ts";
import { addressOf } from "./socket.ts";

const SYMBOLS = {
  getpid: { args: [], returns: "i32" },
  if_nametoindex: { args: ["buffer"], returns: "u32" },
  madvise: { args: ["usize", "usize", "i32"], returns: "i32" },
  sched_yield: { args: [], returns: "i32" },
} satisfies Record<string, FfiSymbol>;

let lib: ReturnType<typeof runtime.dlopen<typeof SYMBOLS>> | null = null;
const libc = () => (lib ??= runtime.dlopen("libc.so.6", SYMBOLS));

export function getpid(): number {
  return libc().getpid();
}

/** Gives the CPU to another runnable thread (a spinning waiter lets a lock's holder run). */
export function yieldCpu(): void {
  libc().sched_yield();
}

/** The kernel's index for an interface name, or null when there is no such interface. */
export function interfaceIndex(name: string): number | null {
  const index = libc().if_nametoindex(new TextEncoder().encode(`${name}\0`));
  return index === 0 ? null : index;
}

const MADV_HUGEPAGE = 14;
const PAGE = 4096;

/** Asks the kernel to back the whole 4 KiB pages of `range` with transparent huge pages (where
 * THP is "madvise", nothing else does: the runtimes never advise their WASM memory). Pages not
 * yet touched are then faulted in 2 MiB at a time. Returns the bytes advised, 0 when the kernel
 * refused (no THP, not Linux). */
export function adviseHugePages(range: Uint8Array): number {
  const at = Number(addressOf(range));
  const start = Math.ceil(at / PAGE) * PAGE;
  const end = Math.floor((at + range.byteLength) / PAGE) * PAGE;
  if (end <= start) return 0;
  return libc().madvise(start, end - start, MADV_HUGEPAGE) === 0 ? end - start : 0;
}
