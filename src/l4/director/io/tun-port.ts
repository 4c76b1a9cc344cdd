// Moves packets between a TUN device and the director in batches: each round reads up to
// MAX_BATCH packets straight into the batch area of linear memory (the read's buffer is the
// packet slot itself, no copy), runs the director's batch entry once, and writes every packet it
// forwarded back into the TUN, where the kernel routes it on (to a real server or to the client).
// Packets come in because the kernel steers them to the TUN (steer.ts).
import * as L from "../../../core/layout.ts";
import { addressOf } from "../../../ffi/socket.ts";
import { closeTun, openTun, readPacket, type Tun, writePacket } from "../../../ffi/tun.ts";
import type { Director } from "../director.ts";

/** What the port has moved, and what the kernel refused. */
export interface PortCounters {
  received: number;
  sent: number;
  dropped: number;
  batches: number;
  /** Writes the kernel refused, by errno (EAGAIN: the TUN's queue was full). */
  writeErrors: number;
  readErrors: number;
}

/** Rounds of MAX_BATCH per poll at most, so a flood cannot hold the event loop. */
const MAX_ROUNDS = 16;
const PACKET_ROOM = L.PKT_SLOT - L.PKT_HEADROOM;

export class TunPort {
  readonly counters: PortCounters = { received: 0, sent: 0, dropped: 0, batches: 0, writeErrors: 0, readErrors: 0 };
  private memory: ArrayBuffer | null = null;
  private base = 0;
  private view!: DataView;
  private bytes!: Uint8Array;
  private readonly t0 = performance.now();

  private constructor(readonly tun: Tun, private readonly director: Director) {}

  /** Opens (creating) the TUN interface `name` for the director. */
  static open(name: string, director: Director): TunPort {
    return new TunPort(openTun(name), director);
  }

  /** The director's clock: ms since the port opened (the kernels' expiry arithmetic wraps safely). */
  nowMs(): number {
    return Math.floor(performance.now() - this.t0) + 1;
  }

  /** Reads, directs and writes until the TUN has nothing waiting (or MAX_ROUNDS); returns the
   * packets read. */
  poll(): number {
    let total = 0;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const n = this.round();
      total += n;
      if (n < L.MAX_BATCH) break;
    }
    if (total === 0) this.director.tick(this.nowMs());
    return total;
  }

  close(): void {
    closeTun(this.tun);
  }

  private round(): number {
    this.remap();
    const { view, bytes, base } = this;
    let n = 0;
    for (; n < L.MAX_BATCH; n++) {
      const off = L.DIR_PKT_OFF + n * L.PKT_SLOT + L.PKT_HEADROOM;
      let len: number | null;
      try {
        len = readPacket(this.tun.fd, base + off, PACKET_ROOM);
      } catch {
        this.counters.readErrors++;
        break;
      }
      if (len === null) break;
      const d = L.DIR_DESC_OFF + n * L.DESC_SIZE;
      view.setUint32(d + L.DESC_OFF, off, true);
      view.setUint32(d + L.DESC_LEN, len, true);
      view.setUint16(d + L.DESC_FLAGS, 0, true);
    }
    if (n === 0) return 0;
    this.counters.received += n;
    this.counters.batches++;
    this.director.processBatch(n, this.nowMs());
    for (let k = 0; k < n; k++) {
      const d = L.DIR_DESC_OFF + k * L.DESC_SIZE;
      if (bytes[d + L.DESC_VERDICT] === L.VERDICT_DROP) { this.counters.dropped++; continue; }
      const errno = writePacket(this.tun.fd, base + view.getUint32(d + L.DESC_OFF, true), view.getUint32(d + L.DESC_LEN, true));
      if (errno === 0) this.counters.sent++;
      else this.counters.writeErrors++;
    }
    return n;
  }

  // The memory is replaced when it grows: take its address and views again.
  private remap(): void {
    const memory = this.director.plane.memory;
    if (memory === this.memory) return;
    this.memory = memory;
    this.bytes = new Uint8Array(memory);
    this.view = new DataView(memory);
    this.base = Number(addressOf(this.bytes));
  }
}
