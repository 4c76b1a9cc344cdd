// A memory segment shared between processes: a file (under /dev/shm, which is memory) mapped
// MAP_SHARED by each process that opens it, seen as an ArrayBuffer over the mapping. The workers'
// session counts live in one (src/control/workers/shared-counts.ts).
import { runtime } from "../runtime/index.ts";
import type { FfiSymbol } from "../runtime/types.ts";
import { lastErrno, SocketError } from "./socket.ts";

const SYMBOLS = {
  open: { args: ["buffer", "i32", "i32"], returns: "i32" },
  ftruncate: { args: ["i32", "i64"], returns: "i32" },
  mmap: { args: ["usize", "usize", "i32", "i32", "i32", "i64"], returns: "usize" },
  close: { args: ["i32"], returns: "i32" },
  munmap: { args: ["usize", "usize"], returns: "i32" },
} satisfies Record<string, FfiSymbol>;

let lib: ReturnType<typeof runtime.dlopen<typeof SYMBOLS>> | null = null;
const libc = () => (lib ??= runtime.dlopen("libc.so.6", SYMBOLS));

const O_RDWR = 2, O_CREAT = 0o100, O_CLOEXEC = 0o2000000;
const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;

/** Where each mapping is, for unmapShared. */
const mappings = new WeakMap<ArrayBuffer, { address: bigint; bytes: number }>();

/** Maps `bytes` of the file at `path` (created with mode 0600 and sized when `create`), shared
 * with every other process that maps it. The mapping lasts as long as the process, or until
 * unmapShared. */
export function mapShared(path: string, bytes: number, create: boolean): ArrayBuffer {
  const c = libc();
  const fd = c.open(new TextEncoder().encode(`${path}\0`), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o600);
  if (fd < 0) throw new SocketError(`open ${path}`, lastErrno());
  try {
    if (create && c.ftruncate(fd, BigInt(bytes)) < 0) throw new SocketError(`ftruncate ${path}`, lastErrno());
    const address = BigInt(c.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n));
    if (address === MAP_FAILED || address === 0n) throw new SocketError(`mmap ${path}`, lastErrno());
    const buffer = runtime.viewAddress(address, bytes);
    mappings.set(buffer, { address, bytes });
    return buffer;
  } finally {
    c.close(fd); // the mapping keeps the memory; the descriptor is not needed
  }
}

/** Unmaps a mapping mapShared made. Nothing may read or write `buffer` (or a view of it) after:
 * the memory is gone (a fault, not an exception). */
export function unmapShared(buffer: ArrayBuffer): void {
  const m = mappings.get(buffer);
  if (!m) return;
  mappings.delete(buffer);
  libc().munmap(m.address, m.bytes);
}
