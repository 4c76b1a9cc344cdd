// AF_PACKET in batches: one sendmmsg(2) writes a batch of Ethernet frames out of one interface,
// each frame at a raw address the caller gives (packet slots in WASM linear memory: no copy).
// Send only: the socket is opened with protocol 0, so the kernel delivers it no frames.
import { runtime } from "../runtime/index.ts";
import type { FfiSymbol } from "../runtime/types.ts";
import { AF_PACKET, addressOf, bindSocket, closeSocket, openSocket, SOCK_RAW, sockaddrLl } from "./socket.ts";

const SYMBOLS = {
  sendmmsg: { args: ["i32", "usize", "u32", "i32"], returns: "i32" },
} satisfies Record<string, FfiSymbol>;

let lib: ReturnType<typeof runtime.dlopen<typeof SYMBOLS>> | null = null;
const libc = () => (lib ??= runtime.dlopen("libc.so.6", SYMBOLS));

const MSG_DONTWAIT = 0x40;
/** struct mmsghdr: a msghdr (56 bytes) and msg_len, padded to 64. */
const MMSG = 64;
const IOV = 16;

export class PacketSocket {
  readonly fd: number;
  private readonly headers: Uint8Array;
  private readonly view: DataView;
  private readonly iovs: DataView;
  private readonly headersAt: number;

  /** A socket sending out of interface `ifindex`, batches of up to `batch` frames. */
  constructor(readonly ifindex: number, readonly batch: number) {
    this.fd = openSocket(AF_PACKET, SOCK_RAW, 0);
    try {
      bindSocket(this.fd, sockaddrLl(ifindex, 0, new Uint8Array(0)));
    } catch (e) {
      closeSocket(this.fd);
      throw e;
    }
    // The mmsghdr array, then one iovec per message; their addresses stay valid (a fixed ArrayBuffer).
    const memory = new ArrayBuffer(batch * (MMSG + IOV));
    this.headers = new Uint8Array(memory);
    this.view = new DataView(memory);
    this.iovs = new DataView(memory, batch * MMSG);
    this.headersAt = Number(addressOf(this.headers));
    for (let k = 0; k < batch; k++) {
      this.view.setBigUint64(k * MMSG + 16, BigInt(this.headersAt + batch * MMSG + k * IOV), true); // msg_iov
      this.view.setBigUint64(k * MMSG + 24, 1n, true); // msg_iovlen
    }
  }

  /** Writes `count` frames out of the bound interface; returns how many the kernel took (the
   * rest: its queue was full or it refused one). */
  send(count: number, addressOfFrame: (k: number) => number, lengthOf: (k: number) => number): number {
    if (count === 0) return 0;
    this.prepare(count, addressOfFrame, lengthOf);
    const n = libc().sendmmsg(this.fd, this.headersAt, count, MSG_DONTWAIT);
    return n < 0 ? 0 : n;
  }

  close(): void {
    closeSocket(this.fd);
  }

  private prepare(count: number, at: (k: number) => number, length: (k: number) => number): void {
    const v = this.view, iov = this.iovs;
    for (let k = 0; k < count; k++) {
      const h = k * MMSG;
      v.setBigUint64(h, 0n, true); // msg_name: none (bound)
      v.setUint32(h + 8, 0, true);
      v.setBigUint64(h + 32, 0n, true); // no control
      v.setBigUint64(h + 40, 0n, true);
      v.setInt32(h + 48, 0, true);
      v.setUint32(h + 56, 0, true);
      iov.setBigUint64(k * IOV, BigInt(at(k)), true);
      iov.setBigUint64(k * IOV + 8, BigInt(length(k)), true);
    }
  }
}
