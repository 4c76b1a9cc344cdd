// Connections checks send on: plain TCP through the runtime's sockets, opened at most one at a
// time per server, and a small wrapper a check's reader plugs into.
import { runtime, UpstreamError } from "../../runtime/index.ts";
import type { TcpSocket } from "../../runtime/types.ts";
import { type Deadline, fail, socketErrorText, type CheckResult, type CheckTarget } from "../result.ts";

/** What a response's bytes and the connection's end go to while a check uses it. */
export interface Sink {
  data(chunk: Uint8Array): void;
  close(error: Error | null): void;
}

/** A connection a check sends on, kept between checks when it can be. The transport (the
 * runtime's TCP for HTTP, node:tls for HTTPS) feeds it through received() and ended(). */
export class CheckConnection {
  sink: Sink | null = null;
  closed = false;

  constructor(private readonly send: (bytes: Uint8Array) => void, private readonly close: () => void) {}

  received(chunk: Uint8Array): void {
    if (this.sink) this.sink.data(chunk);
    else this.destroy(); // an idle connection must not speak
  }

  ended(error: Error | null): void {
    if (this.closed && !this.sink) return;
    this.closed = true;
    this.sink?.close(error);
  }

  write(bytes: Uint8Array): void {
    this.send(bytes);
  }

  destroy(): void {
    this.closed = true;
    this.close();
  }
}

/** Opens plain TCP connections through the runtime's own sockets (on Bun a third of node:net's
 * cost per check). Those cannot be cancelled, so a connect that outlives its check is kept and
 * the next check waits on it rather than starting another: never more than one per server. */
export class PlainConnector {
  private pending: Promise<CheckConnection | CheckResult> | null = null;
  /** The check waiting for the pending connect (checks of one server never overlap). */
  private waiter: ((r: CheckConnection | CheckResult) => void) | null = null;

  /** `label` starts reasons: "HTTP connect refused", "TCP connect timed out after 1s". */
  constructor(private readonly target: CheckTarget, private readonly label: string) {}

  connect(deadline: Deadline): Promise<CheckConnection | CheckResult> {
    return new Promise((resolve) => {
      const waiter = (r: CheckConnection | CheckResult) => {
        deadline.onExpire(null);
        resolve(r);
      };
      this.waiter = waiter;
      deadline.onExpire(() => {
        if (this.waiter === waiter) this.waiter = null;
        resolve(fail(`${this.label} connect timed out ${deadline.reason}`));
      });
      if (this.pending) return; // the next check takes over the attempt still under way
      const attempt = this.pending = this.open();
      attempt.then((r) => {
        this.pending = null;
        const w = this.waiter;
        this.waiter = null;
        if (w) w(r);
        else if (r instanceof CheckConnection) r.destroy(); // too late for any check
      });
    });
  }

  private open(): Promise<CheckConnection | CheckResult> {
    let socket: TcpSocket | null = null;
    const conn = new CheckConnection((b) => { socket?.write(b); }, () => socket?.destroy());
    return runtime.connectTcp({
      hostname: this.target.host,
      port: this.target.port,
      handlers: { data: (c) => conn.received(c), drain() {}, close: () => conn.ended(null) },
      readSize: 2048, // a health answer is small; a large read buffer per read costs more than the read
      lendChunks: true, // the response reader copies what it keeps
    }).then(
      (s) => { socket = s; return conn; },
      (e) => fail(`${this.label} connect ${e instanceof UpstreamError && e.kind === "refused" ? "refused" : socketErrorText(e)}`),
    );
  }
}

