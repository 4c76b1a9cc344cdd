// The director's batch area as the ports see it: packet slots and descriptors in linear memory,
// at raw addresses for the system calls (taken again when the memory grows and moves), and what
// a port counts. Each port fills descriptors, runs the batch once, and writes out what was kept.
import * as L from "../../../core/layout.ts";
import { addressOf } from "../../../ffi/socket.ts";
import { readPacket } from "../../../ffi/tun.ts";
import type { Director } from "../director.ts";

/** What a port has moved, and what the kernel refused. */
export interface PortCounters {
  received: number;
  sent: number;
  dropped: number;
  batches: number;
  /** Packets the kernel did not take on write (its queue full, or refused). */
  writeErrors: number;
  readErrors: number;
  /** Frames longer than a packet slot (GRO or offloads on the interface), dropped. */
  oversize: number;
}

/** Bytes a packet may have: its slot less the headroom rewrites may prepend into. */
export const PACKET_ROOM = L.PKT_SLOT - L.PKT_HEADROOM;
/** Rounds of MAX_BATCH per poll at most, so a flood cannot hold the event loop. */
export const MAX_ROUNDS = 16;
/** An Ethernet header: what a frame port puts in front of a packet read from its TUN. */
const ETH_HLEN = 14;

/** Runs a port's `round` (one batch read, directed and written; returns the packets read) until
 * a batch comes back short or MAX_ROUNDS ran; an idle poll lets the director's timers run.
 * Returns the packets read. */
export function pollRounds(area: BatchArea, round: () => number): number {
  let total = 0;
  for (let i = 0; i < MAX_ROUNDS; i++) {
    const n = round();
    total += n;
    if (n < L.MAX_BATCH) break;
  }
  if (total === 0) area.director.tick(area.nowMs());
  return total;
}

export function newCounters(): PortCounters {
  return { received: 0, sent: 0, dropped: 0, batches: 0, writeErrors: 0, readErrors: 0, oversize: 0 };
}

export class BatchArea {
  private memory: ArrayBuffer | null = null;
  /** The address of linear memory's first byte now. */
  base = 0;
  view!: DataView;
  bytes!: Uint8Array;
  private readonly t0 = performance.now();

  constructor(readonly director: Director) {}

  /** The director's clock: ms since the area was made (the kernels' expiry arithmetic wraps safely). */
  nowMs(): number {
    return Math.floor(performance.now() - this.t0) + 1;
  }

  /** Call before each batch: the memory is replaced when it grows. */
  remap(): void {
    const memory = this.director.plane.memory;
    if (memory === this.memory) return;
    this.memory = memory;
    this.bytes = new Uint8Array(memory);
    this.view = new DataView(memory);
    this.base = Number(addressOf(this.bytes));
  }

  /** Offset of slot k's packet (after the headroom). */
  slot(k: number): number {
    return L.DIR_PKT_OFF + k * L.PKT_SLOT + L.PKT_HEADROOM;
  }

  /** Reads up to MAX_BATCH packets from a TUN into the slots and describes them; `framed`: each
   * gets an Ethernet header in front (MACs left zero for the director, the type from the IP
   * version). Returns the packets read. */
  readTun(fd: number, framed: boolean, counters: PortCounters): number {
    const head = framed ? ETH_HLEN : 0;
    let n = 0;
    for (; n < L.MAX_BATCH; n++) {
      const off = this.slot(n);
      let len: number | null;
      try {
        len = readPacket(fd, this.base + off + head, PACKET_ROOM - head);
      } catch {
        counters.readErrors++;
        break;
      }
      if (len === null) break;
      if (framed) {
        const b = this.bytes;
        b.fill(0, off, off + 12);
        const v6 = len > 0 && (b[off + ETH_HLEN] >> 4) === 6;
        b[off + 12] = v6 ? 0x86 : 0x08;
        b[off + 13] = v6 ? 0xdd : 0x00;
      }
      this.describe(n, off, len + head, framed);
    }
    return n;
  }

  describe(k: number, off: number, len: number, l2: boolean): void {
    const d = L.DIR_DESC_OFF + k * L.DESC_SIZE;
    this.view.setUint32(d + L.DESC_OFF, off, true);
    this.view.setUint32(d + L.DESC_LEN, len, true);
    this.view.setUint16(d + L.DESC_FLAGS, l2 ? L.DESCF_L2 : 0, true);
  }

  /** Runs the batch; then kept(k), offset(k) and length(k) say what goes out. */
  run(n: number): void {
    this.director.processBatch(n, this.nowMs());
  }

  kept(k: number): boolean {
    return this.bytes[L.DIR_DESC_OFF + k * L.DESC_SIZE + L.DESC_VERDICT] !== L.VERDICT_DROP;
  }

  offset(k: number): number {
    return this.view.getUint32(L.DIR_DESC_OFF + k * L.DESC_SIZE + L.DESC_OFF, true);
  }

  length(k: number): number {
    return this.view.getUint32(L.DIR_DESC_OFF + k * L.DESC_SIZE + L.DESC_LEN, true);
  }
}
