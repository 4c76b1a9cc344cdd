// A plain listener with `http2: true` serves HTTP/2 with prior knowledge (RFC 9113 §3.3) and
// HTTP/1.1 on the same port: the first bytes say which. A client that starts with the HTTP/2
// preface gets an H2Connection; anything else a ClientConn, handed the bytes read so far.
import type { TcpHandlers, TcpSocket } from "../../runtime/types.ts";
import type { DeadlineSweep, Timed } from "../../core/timer.ts";
import { PREFACE } from "../../http2/frame.ts";

export class PrefaceSniffer implements TcpHandlers, Timed {
  deadline: number;
  private seen: Uint8Array = new Uint8Array(0);
  private chosen: TcpHandlers | null = null;

  /** A client that sends nothing for timeoutMs is closed, as an idle HTTP/1.1 one would be. */
  constructor(
    private readonly socket: TcpSocket, private readonly deadlines: DeadlineSweep, timeoutMs: number,
    private readonly h2: () => TcpHandlers, private readonly h1: () => TcpHandlers,
  ) {
    this.deadline = deadlines.now + timeoutMs;
    deadlines.watch(this);
  }

  expire(): void { if (!this.chosen) this.socket.end(); }

  data(chunk: Uint8Array): void {
    if (this.chosen) { this.chosen.data(chunk); return; }
    this.deadlines.unwatch(this);
    const bytes = this.seen.length === 0 ? chunk : join(this.seen, chunk);
    const n = Math.min(bytes.length, PREFACE.length);
    let match = true;
    for (let i = 0; i < n && match; i++) match = bytes[i] === PREFACE[i];
    if (match && n < PREFACE.length) { this.seen = bytes.slice(); return; } // undecided yet
    this.chosen = match ? this.h2() : this.h1();
    this.seen = new Uint8Array(0);
    this.chosen.data(bytes);
  }

  drain(): void { this.chosen?.drain(); }

  close(): void {
    this.deadlines.unwatch(this);
    this.chosen?.close();
  }
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
