// Moves Ethernet frames between an interface and the director over AF_PACKET: one recvmmsg reads
// a batch of frames straight into the packet slots of linear memory, the director's batch entry
// runs once over them (as frames: DR rewrites the destination MAC), and one sendmmsg writes the
// forwarded ones out of the same interface. The socket's BPF filter takes only the VIP's frames;
// the kernel's own stack is kept from answering them by the steering's ingress drop (steer.ts).
import * as L from "../../../core/layout.ts";
import { ipv4DestinationFilter, PacketSocket } from "../../../ffi/packet.ts";
import type { Director } from "../director.ts";
import { BatchArea, MAX_ROUNDS, newCounters, PACKET_ROOM, type PortCounters } from "./batch.ts";

export class PacketPort {
  readonly counters: PortCounters = newCounters();
  private readonly area: BatchArea;
  private readonly socket: PacketSocket;
  private readonly out: number[] = [];

  /** A port on interface `ifindex` for frames to `vip` (IPv4 bytes) carrying `protocol`. */
  constructor(director: Director, ifindex: number, vip: Uint8Array, protocol: number) {
    this.area = new BatchArea(director);
    this.socket = new PacketSocket(ifindex, ipv4DestinationFilter(vip, protocol), L.MAX_BATCH);
  }

  poll(): number {
    let total = 0;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const n = this.round();
      total += n;
      if (n < L.MAX_BATCH) break;
    }
    if (total === 0) this.area.director.tick(this.area.nowMs());
    return total;
  }

  close(): void {
    this.socket.close();
  }

  private round(): number {
    const a = this.area;
    a.remap();
    let n: number;
    try {
      n = this.socket.receive(L.MAX_BATCH, (k) => a.base + a.slot(k), PACKET_ROOM);
    } catch {
      this.counters.readErrors++;
      return 0;
    }
    if (n === 0) return 0;
    this.counters.received += n;
    this.counters.batches++;
    for (let k = 0; k < n; k++) {
      // A frame cut to its slot is not forwarded: describe it as empty (counted as truncated).
      const cut = this.socket.truncated(k);
      if (cut) this.counters.oversize++;
      a.describe(k, a.slot(k), cut ? 0 : this.socket.length(k), true);
    }
    a.run(n);
    const out = this.out;
    out.length = 0;
    for (let k = 0; k < n; k++) {
      if (a.kept(k)) out.push(k);
      else this.counters.dropped++;
    }
    const sent = this.socket.send(out.length, (j) => a.base + a.offset(out[j]), (j) => a.length(out[j]));
    this.counters.sent += sent;
    this.counters.writeErrors += out.length - sent;
    return n;
  }
}
