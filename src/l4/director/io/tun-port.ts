// Moves packets between a TUN device and the director in batches: each round reads up to
// MAX_BATCH packets straight into the batch area of linear memory (the read's buffer is the
// packet slot itself, no copy), runs the director's batch entry once, and writes every packet it
// forwarded back into the TUN, where the kernel routes it on (to a real server or to the client).
// Packets come in because the kernel steers them to the TUN (steer.ts). A TUN has no batch read:
// one read per packet, in one loop per batch.
import { closeTun, openTun, type Tun, writePacket } from "../../../ffi/tun.ts";
import type { Director } from "../director.ts";
import { BatchArea, newCounters, pollRounds, type PortCounters } from "./batch.ts";

export class TunPort {
  readonly counters: PortCounters = newCounters();
  private readonly area: BatchArea;

  private constructor(readonly tun: Tun, director: Director) {
    this.area = new BatchArea(director);
  }

  /** Opens (creating) the TUN interface `name` for the director. */
  static open(name: string, director: Director): TunPort {
    return new TunPort(openTun(name), director);
  }

  /** Reads, directs and writes until the TUN has nothing waiting (or MAX_ROUNDS); returns the
   * packets read. */
  poll(): number {
    return pollRounds(this.area, () => this.round());
  }

  close(): void {
    closeTun(this.tun);
  }

  private round(): number {
    const a = this.area;
    a.remap();
    const n = a.readTun(this.tun.fd, false, this.counters);
    if (n === 0) return 0;
    this.counters.received += n;
    this.counters.batches++;
    a.run(n);
    for (let k = 0; k < n; k++) {
      if (!a.kept(k)) { this.counters.dropped++; continue; }
      if (writePacket(this.tun.fd, a.base + a.offset(k), a.length(k)) === 0) this.counters.sent++;
      else this.counters.writeErrors++;
    }
    return n;
  }
}
