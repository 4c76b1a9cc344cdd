// AF_PACKET senders: Ethernet frames out of one interface in batches, two ways the director's DR
// port can choose between (bench/RESULTS.md, the director lab, measures both):
// - PacketSocket: one sendmmsg(2) per batch, each frame at a raw address the caller gives (packet
//   slots in WASM linear memory: the kernel copies each into a new buffer);
// - PacketRing: a PACKET_TX_RING (TPACKET_V2) shared with the kernel by mmap; each frame is
//   written into a free ring slot, marked for sending, and one send(2) flushes them all.
// Send only: the sockets are opened with protocol 0, so the kernel delivers them no frames.
import { runtime } from "../runtime/index.ts";
import type { FfiSymbol } from "../runtime/types.ts";
import {
  AF_PACKET, addressOf, bindSocket, closeSocket, lastErrno, openSocket, setOption, SOCK_RAW, SocketError, sockaddrLl,
} from "./socket.ts";

const SYMBOLS = {
  sendmmsg: { args: ["i32", "usize", "u32", "i32"], returns: "i32" },
  send: { args: ["i32", "usize", "usize", "i32"], returns: "i64" },
  mmap: { args: ["usize", "usize", "i32", "i32", "i32", "i64"], returns: "usize" },
  munmap: { args: ["usize", "usize"], returns: "i32" },
} satisfies Record<string, FfiSymbol>;

let lib: ReturnType<typeof runtime.dlopen<typeof SYMBOLS>> | null = null;
const libc = () => (lib ??= runtime.dlopen("libc.so.6", SYMBOLS));

const MSG_DONTWAIT = 0x40;
/** struct mmsghdr: a msghdr (56 bytes) and msg_len, padded to 64. */
const MMSG = 64;
const IOV = 16;

/** Frames out of one interface, a batch per call. The frames are `source` bytes at `offsetOf(k)`
 * (raw address `sourceAddress + offsetOf(k)`), `lengthOf(k)` long. */
export interface FrameSender {
  readonly fd: number;
  /** Writes `count` frames; returns how many the kernel took (the rest: its queue or ring was
   * full, or it refused one). */
  send(count: number, source: Uint8Array, sourceAddress: number, offsetOf: (k: number) => number, lengthOf: (k: number) => number): number;
  /** Sends what an earlier call left queued (a ring the kernel could not take all of at once). */
  flush(): void;
  close(): void;
}

function openBound(ifindex: number): number {
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0);
  try {
    bindSocket(fd, sockaddrLl(ifindex, 0, new Uint8Array(0)));
  } catch (e) {
    closeSocket(fd);
    throw e;
  }
  return fd;
}

export class PacketSocket implements FrameSender {
  readonly fd: number;
  private readonly headers: Uint8Array;
  private readonly view: DataView;
  private readonly iovs: DataView;
  private readonly headersAt: number;

  /** A socket sending out of interface `ifindex`, batches of up to `batch` frames. */
  constructor(readonly ifindex: number, readonly batch: number) {
    this.fd = openBound(ifindex);
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

  send(count: number, _source: Uint8Array, sourceAddress: number, offsetOf: (k: number) => number, lengthOf: (k: number) => number): number {
    if (count === 0) return 0;
    this.prepare(count, sourceAddress, offsetOf, lengthOf);
    const n = libc().sendmmsg(this.fd, this.headersAt, count, MSG_DONTWAIT);
    return n < 0 ? 0 : n;
  }

  /** Nothing is ever left queued: what sendmmsg did not take is gone (counted by the caller). */
  flush(): void {}

  close(): void {
    closeSocket(this.fd);
  }

  private prepare(count: number, base: number, offsetOf: (k: number) => number, length: (k: number) => number): void {
    const v = this.view, iov = this.iovs;
    for (let k = 0; k < count; k++) {
      const h = k * MMSG;
      v.setBigUint64(h, 0n, true); // msg_name: none (bound)
      v.setUint32(h + 8, 0, true);
      v.setBigUint64(h + 32, 0n, true); // no control
      v.setBigUint64(h + 40, 0n, true);
      v.setInt32(h + 48, 0, true);
      v.setUint32(h + 56, 0, true);
      iov.setBigUint64(k * IOV, BigInt(base + offsetOf(k)), true);
      iov.setBigUint64(k * IOV + 8, BigInt(length(k)), true);
    }
  }
}

const SOL_PACKET = 263;
const PACKET_VERSION = 10;
const PACKET_TX_RING = 13;
const TPACKET_V2 = 1;
const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
/** tp_status of a tx frame: free for the process, queued for the kernel, being sent, refused. */
const TP_STATUS_AVAILABLE = 0;
const TP_STATUS_SEND_REQUEST = 1;
const TP_STATUS_WRONG_FORMAT = 4;
/** struct tpacket2_hdr: tp_status at 0, tp_len at 4. */
const TP_LEN = 4;
/** Where a tx frame's data starts: TPACKET2_HDRLEN (the 32-byte header aligned, and a
 * sockaddr_ll) less the sockaddr_ll, as the kernel reads it when PACKET_TX_HAS_OFF is unset. */
const TX_DATA = 32;
/** A slot per frame: room for a packet slot's frame (4096 less the headroom) after the header. */
export const RING_FRAME = 4096;

export class PacketRing implements FrameSender {
  readonly fd: number;
  private readonly address: number;
  private readonly size: number;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  /** The next slot to fill; slots are used in ring order, as the kernel sends them. */
  private next = 0;
  /** Frames are marked for sending that the last send(2) did not take (its socket buffer full). */
  private unflushed = false;

  /** A tx ring of `frames` slots (a multiple of 16) on interface `ifindex`. */
  constructor(readonly ifindex: number, readonly frames: number) {
    this.fd = openBound(ifindex);
    this.size = frames * RING_FRAME;
    try {
      setOption(this.fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2, "setsockopt(PACKET_VERSION)");
      // struct tpacket_req: block size, blocks, frame size, frames (16 frames a 64 KiB block).
      const req = new DataView(new ArrayBuffer(16));
      req.setUint32(0, RING_FRAME * 16, true);
      req.setUint32(4, frames / 16, true);
      req.setUint32(8, RING_FRAME, true);
      req.setUint32(12, frames, true);
      setOption(this.fd, SOL_PACKET, PACKET_TX_RING, new Uint8Array(req.buffer), "setsockopt(PACKET_TX_RING)");
      const at = libc().mmap(0, this.size, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, 0);
      // MAP_FAILED is (void *) -1: 2^64 - 1 as an unsigned number.
      if (Number(at) >= 2 ** 63) throw new SocketError("mmap PACKET_TX_RING", lastErrno());
      this.address = Number(at);
    } catch (e) {
      closeSocket(this.fd);
      throw e;
    }
    const ring = runtime.nativeMemory(this.address, this.size);
    this.bytes = new Uint8Array(ring);
    this.view = new DataView(ring);
  }

  send(count: number, source: Uint8Array, _sourceAddress: number, offsetOf: (k: number) => number, lengthOf: (k: number) => number): number {
    const v = this.view, room = RING_FRAME - TX_DATA;
    let queued = 0;
    for (let k = 0; k < count; k++) {
      const slot = this.next * RING_FRAME;
      const status = v.getUint32(slot, true);
      // Still queued or being sent from an earlier flush: the ring is full for now.
      if (status !== TP_STATUS_AVAILABLE && status !== TP_STATUS_WRONG_FORMAT) break;
      const off = offsetOf(k), len = lengthOf(k);
      if (len > room) continue;
      this.bytes.set(source.subarray(off, off + len), slot + TX_DATA);
      v.setUint32(slot + TP_LEN, len, true);
      v.setUint32(slot, TP_STATUS_SEND_REQUEST, true);
      this.next = (this.next + 1) % this.frames;
      queued++;
    }
    if (queued > 0 || this.unflushed) this.push();
    return queued;
  }

  flush(): void {
    if (this.unflushed) this.push();
  }

  // One call sends every frame marked, in ring order; without MSG_DONTWAIT it would wait for them
  // to leave. When the socket's buffer is full (EAGAIN) the rest stay marked in the ring and go
  // with the next call (the port flushes on its next poll even when nothing came in).
  private push(): void {
    this.unflushed = Number(libc().send(this.fd, 0, 0, MSG_DONTWAIT)) < 0;
  }

  close(): void {
    libc().munmap(this.address, this.size);
    closeSocket(this.fd);
  }
}
