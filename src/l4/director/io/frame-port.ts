// DR's port: packets for the VIP come in through a TUN of their own (the kernel's ingress
// classifier hands them over, segmented and with their checksums complete), each is framed in
// the headroom before its slot with an Ethernet header, the director's batch entry runs once
// over the frames (DR sets the real server's MAC as destination and the director's as source),
// and the forwarded frames go out of the interface over AF_PACKET in one system call: a
// sendmmsg, or a flush of a PACKET_TX_RING they were copied into (FULCRUM_DR_TX, the faster
// by bench/RESULTS.md by default). The servers answer the clients directly; nothing comes back
// through here.
import * as L from "../../../core/layout.ts";
import { type FrameSender, PacketRing, PacketSocket } from "../../../ffi/packet.ts";
import { runtime } from "../../../runtime/index.ts";
import { closeTun, openTun, type Tun } from "../../../ffi/tun.ts";
import type { Director } from "../director.ts";
import { BatchArea, newCounters, pollRounds, type PortCounters } from "./batch.ts";

/** How frames leave: "sendmmsg" or "ring" (FULCRUM_DR_TX picks; bench/director-lab.bench.ts measures both). */
export type FrameTx = "sendmmsg" | "ring";
export const DEFAULT_FRAME_TX: FrameTx = "sendmmsg";
/** Ring slots: four batches, so a flush still in flight never holds up the next batch. */
const RING_FRAMES = L.MAX_BATCH * 4;

export function frameTxOf(text: string | undefined): FrameTx {
  if (text === undefined || text === "") return DEFAULT_FRAME_TX;
  if (text === "sendmmsg" || text === "ring") return text;
  throw new Error(`FULCRUM_DR_TX: "${text}" is not sendmmsg or ring`);
}

export class FramePort {
  readonly counters: PortCounters = newCounters();
  private readonly area: BatchArea;
  private readonly socket: FrameSender;
  private readonly out: number[] = [];

  private constructor(readonly tun: Tun, director: Director, ifindex: number, readonly tx: FrameTx) {
    this.area = new BatchArea(director);
    try {
      this.socket = tx === "ring" ? new PacketRing(ifindex, RING_FRAMES) : new PacketSocket(ifindex, L.MAX_BATCH);
    } catch (e) {
      closeTun(tun);
      throw e;
    }
  }

  /** A TUN named `tunName` in, frames out of interface `ifindex`. */
  static open(tunName: string, director: Director, ifindex: number, tx = frameTxOf(runtime.env("FULCRUM_DR_TX"))): FramePort {
    return new FramePort(openTun(tunName), director, ifindex, tx);
  }

  poll(): number {
    return pollRounds(this.area, () => this.round());
  }

  close(): void {
    this.socket.close();
    closeTun(this.tun);
  }

  private round(): number {
    const a = this.area;
    a.remap();
    const n = a.readTun(this.tun.fd, true, this.counters);
    if (n === 0) {
      this.socket.flush();
      return 0;
    }
    this.counters.received += n;
    this.counters.batches++;
    a.run(n);
    const out = this.out;
    out.length = 0;
    for (let k = 0; k < n; k++) {
      if (a.kept(k)) out.push(k);
      else this.counters.dropped++;
    }
    const sent = this.socket.send(out.length, a.bytes, a.base, (j) => a.offset(out[j]), (j) => a.length(out[j]));
    this.counters.sent += sent;
    this.counters.writeErrors += out.length - sent;
    return n;
  }
}
