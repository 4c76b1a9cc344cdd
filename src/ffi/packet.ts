// AF_PACKET in batches: one recvmmsg(2) reads up to a batch of Ethernet frames and one
// sendmmsg(2) writes a batch, each frame at a raw address the caller gives (packet slots in WASM
// linear memory: no copy). The socket is bound to one interface, ignores the frames this host
// sends (PACKET_IGNORE_OUTGOING), and takes only what a classic BPF filter accepts, so the reader
// sees only the frames it asked for. Non-blocking: a read that finds nothing returns 0.
import { runtime } from "../runtime/index.ts";
import type { FfiSymbol } from "../runtime/types.ts";
import {
  AF_PACKET, addressOf, bindSocket, closeSocket, lastErrno, openSocket, setOption, SOCK_RAW, SocketError, sockaddrLl,
  SOL_SOCKET, SO_RCVBUFFORCE,
} from "./socket.ts";

const SYMBOLS = {
  recvmmsg: { args: ["i32", "usize", "u32", "i32", "usize"], returns: "i32" },
  sendmmsg: { args: ["i32", "usize", "u32", "i32"], returns: "i32" },
} satisfies Record<string, FfiSymbol>;

let lib: ReturnType<typeof runtime.dlopen<typeof SYMBOLS>> | null = null;
const libc = () => (lib ??= runtime.dlopen("libc.so.6", SYMBOLS));

const ETH_P_ALL = 0x0003;
const SOL_PACKET = 263;
const PACKET_IGNORE_OUTGOING = 23;
const SO_ATTACH_FILTER = 26;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
/** struct mmsghdr: a msghdr (56 bytes) and msg_len, padded to 64. */
const MMSG = 64;
const IOV = 16;

/** A classic BPF instruction: opcode, jump-if-true, jump-if-false, constant. */
export type BpfInstruction = [code: number, jt: number, jf: number, k: number];

// Classic BPF opcodes the filters here use.
const LD_H_ABS = 0x28, LD_W_ABS = 0x20, LD_B_ABS = 0x30, JEQ_K = 0x15, RET_K = 0x06;

/** Accepts IPv4 frames to `address` (4 bytes) carrying `protocol` (6 TCP, 17 UDP); drops the rest. */
export function ipv4DestinationFilter(address: Uint8Array, protocol: number): BpfInstruction[] {
  const ip = ((address[0] << 24) | (address[1] << 16) | (address[2] << 8) | address[3]) >>> 0;
  return [
    [LD_H_ABS, 0, 0, 12], [JEQ_K, 0, 5, 0x0800], // ethertype IPv4
    [LD_W_ABS, 0, 0, 30], [JEQ_K, 0, 3, ip], // destination address
    [LD_B_ABS, 0, 0, 23], [JEQ_K, 0, 1, protocol],
    [RET_K, 0, 0, 0x40000], [RET_K, 0, 0, 0],
  ];
}

export class PacketSocket {
  readonly fd: number;
  private readonly headers: Uint8Array;
  private readonly view: DataView;
  private readonly iovs: DataView;
  private readonly headersAt: number;

  /** A socket on interface `ifindex` receiving what `filter` accepts; batches of up to `batch`. */
  constructor(readonly ifindex: number, filter: BpfInstruction[], readonly batch: number) {
    this.fd = openSocket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    try {
      setOption(this.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
      attachFilter(this.fd, filter);
      // A burst waits in the socket between polls (1 ms): room for several batches.
      try { setOption(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20, "SO_RCVBUFFORCE"); } catch { /* the default then */ }
      bindSocket(this.fd, sockaddrLl(ifindex, htons(ETH_P_ALL), new Uint8Array(0)));
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

  /** Reads up to `count` frames, frame k into [addressOf(k), + capacity); returns how many,
   * their lengths through length(k). 0 when none is waiting. */
  receive(count: number, addressOfSlot: (k: number) => number, capacity: number): number {
    this.prepare(count, addressOfSlot, () => capacity);
    const n = libc().recvmmsg(this.fd, this.headersAt, count, MSG_DONTWAIT, 0);
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno === EAGAIN) return 0;
    throw new SocketError("recvmmsg", errno);
  }

  /** The length of frame k of the last receive (cut to the capacity when it was longer). */
  length(k: number): number {
    return this.view.getUint32(k * MMSG + 56, true);
  }

  /** Whether frame k of the last receive was longer than its slot (MSG_TRUNC). */
  truncated(k: number): boolean {
    return (this.view.getInt32(k * MMSG + 48, true) & 0x20) !== 0;
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

function htons(v: number): number {
  return ((v & 0xff) << 8) | (v >>> 8);
}

// SO_ATTACH_FILTER: struct sock_fprog { u16 len; struct sock_filter *filter; }.
function attachFilter(fd: number, program: BpfInstruction[]): void {
  const code = new Uint8Array(program.length * 8);
  const cv = new DataView(code.buffer);
  program.forEach(([op, jt, jf, k], i) => {
    cv.setUint16(i * 8, op, true); code[i * 8 + 2] = jt; code[i * 8 + 3] = jf; cv.setUint32(i * 8 + 4, k, true);
  });
  const fprog = new Uint8Array(16);
  const fv = new DataView(fprog.buffer);
  fv.setUint16(0, program.length, true);
  fv.setBigUint64(8, addressOf(code), true);
  setOption(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, "SO_ATTACH_FILTER");
}
