// libc through the runtime's FFI: the calls later parts (raw sockets for ICMP and VRRP, rtnetlink
// for virtual addresses) build on. Opened on first use, so a process that never needs it never
// loads it.
import { runtime } from "../runtime/index.ts";
import type { FfiSymbol } from "../runtime/types.ts";

const SYMBOLS = {
  getpid: { args: [], returns: "i32" },
  if_nametoindex: { args: ["buffer"], returns: "u32" },
} satisfies Record<string, FfiSymbol>;

let lib: ReturnType<typeof runtime.dlopen<typeof SYMBOLS>> | null = null;
const libc = () => (lib ??= runtime.dlopen("libc.so.6", SYMBOLS));

export function getpid(): number {
  return libc().getpid();
}

/** The kernel's index for an interface name, or null when there is no such interface. */
export function interfaceIndex(name: string): number | null {
  const index = libc().if_nametoindex(new TextEncoder().encode(`${name}\0`));
  return index === 0 ? null : index;
}
