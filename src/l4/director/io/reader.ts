// When the director's ports are read. While packets flow, each poll is followed by another as
// soon as the event loop is free (as NAPI polls while there is work), not a tick later. When a
// poll finds nothing, the reader waits in poll(2) on the ports' TUNs off the event loop
// (runtime.waitReadable: a thread of its own blocks in it), so an idle director costs a wake-up
// per IDLE_WAIT_MS instead of a poll every millisecond, and the first packet wakes it as soon as
// that thread does. The timeout lets the director's timers (expiry) run while idle.
import { runtime } from "../../../runtime/index.ts";
import { addPoll, removePoll } from "../../../vrrp/poller.ts";

/** Longest idle wait: the director's expiry runs at least this often (its wheel has 1 s slots). */
export const IDLE_WAIT_MS = 100;
/** Where the runtime cannot wait (poll failed), the ports are polled on this tick instead; with
 * FULCRUM_DIRECTOR_IDLE=tick (the way before the wait, kept for the bench's same-run comparison)
 * on the process's poller at this period, as they were. */
const TICK_MS = 1;

export interface ReadablePort {
  readonly tun: { readonly fd: number };
  /** Reads, directs and writes what is waiting; returns the packets read. */
  poll(): number;
}

export class PortReader {
  private running = false;
  private waiting = false;
  private repoll = false;
  private readonly tick = runtime.env("FULCRUM_DIRECTOR_IDLE") === "tick";

  constructor(private readonly ports: () => ReadablePort[]) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.tick) addPoll(this.poll, TICK_MS);
    this.poll();
  }

  /** Reads no more; a wait in flight ends by its timeout and is ignored. */
  stop(): void {
    this.running = false;
    if (this.tick) removePoll(this.poll);
  }

  private readonly poll = (): void => {
    if (!this.running) return;
    let moved = 0;
    for (const port of this.ports()) {
      try {
        moved += port.poll();
      } catch (e) {
        // A failing port must not stop the others.
        console.error(`fulcrum: director: port poll failed: ${(e as Error).message}`);
      }
    }
    if (moved === 0) return this.wait();
    if (this.repoll) return;
    this.repoll = true;
    setImmediate(() => { this.repoll = false; this.poll(); });
  };

  private wait(): void {
    if (this.waiting || !this.running || this.tick) return;
    const fds = this.ports().map((p) => p.tun.fd);
    if (fds.length === 0) return;
    this.waiting = true;
    runtime.waitReadable(fds, IDLE_WAIT_MS).then((ready) => {
      this.waiting = false;
      if (ready < 0) setTimeout(this.poll, TICK_MS);
      else this.poll();
    });
  }
}
