// Keep-alive connections to upstream servers, reused across requests (nginx `keepalive`).
import { runtime, type TcpSocket } from "../../runtime/index.ts";
import type { TcpHandlers } from "../../runtime/types.ts";
import { indexFor } from "../../http1/head.ts";

/** What an upstream connection's events go to while a request uses it. */
export interface UpstreamUser {
  upstreamData(chunk: Uint8Array): void;
  upstreamDrain(): void;
  upstreamClosed(): void;
}

export class UpstreamConn implements TcpHandlers {
  socket!: TcpSocket;
  user: UpstreamUser | null = null;
  closed = false;
  /** True once it has served a request: a failure on a reused connection may be a stale one. */
  reused = false;
  idleSince = 0;
  /** The head-scan index for responses on this connection (one at a time). */
  readonly index = indexFor(256);

  constructor(readonly key: string, private readonly pool: UpstreamPool) {}

  data(chunk: Uint8Array): void {
    if (this.user) this.user.upstreamData(chunk);
    else this.socket.destroy(); // an idle connection must not speak
  }

  drain(): void {
    this.user?.upstreamDrain();
  }

  close(): void {
    this.closed = true;
    if (this.user) this.user.upstreamClosed();
    else this.pool.forget(this);
  }
}

export class UpstreamPool {
  private readonly idle = new Map<string, UpstreamConn[]>();

  constructor(private readonly maxIdlePerServer = 1024, private readonly idleTimeoutMs = 60_000) {}

  /** An idle connection to host:port, or null. */
  take(host: string, port: number): UpstreamConn | null {
    const list = this.idle.get(`${host}:${port}`);
    const now = Date.now();
    while (list && list.length > 0) {
      const c = list.pop()!;
      if (!c.closed && now - c.idleSince < this.idleTimeoutMs) return c;
      c.socket.destroy();
    }
    return null;
  }

  /** A new connection; rejects with UpstreamError, or "timeout" after timeoutMs. */
  connect(host: string, port: number, user: UpstreamUser, timeoutMs: number): Promise<UpstreamConn> {
    const conn = new UpstreamConn(`${host}:${port}`, this);
    conn.user = user;
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; reject(new Error("timeout")); }, timeoutMs);
      // The exchange copies whatever it keeps of a chunk, so the runtime may lend them.
      runtime.connectTcp({ hostname: host, port, handlers: conn, lendChunks: true }).then((socket) => {
        clearTimeout(timer);
        conn.socket = socket;
        if (timedOut) socket.destroy();
        else resolve(conn);
      }, (e) => {
        clearTimeout(timer);
        if (!timedOut) reject(e);
      });
    });
  }

  /** Returns a connection after a complete exchange; kept when reusable and there is room. */
  release(conn: UpstreamConn, reusable: boolean): void {
    conn.user = null;
    if (!reusable || conn.closed) { conn.socket.destroy(); return; }
    let list = this.idle.get(conn.key);
    if (!list) this.idle.set(conn.key, list = []);
    if (list.length >= this.maxIdlePerServer) { conn.socket.destroy(); return; }
    conn.reused = true;
    conn.idleSince = Date.now();
    list.push(conn);
  }

  forget(conn: UpstreamConn): void {
    const list = this.idle.get(conn.key);
    const i = list ? list.indexOf(conn) : -1;
    if (i >= 0) list!.splice(i, 1);
  }

  closeAll(): void {
    for (const list of this.idle.values()) for (const c of list) c.socket.destroy();
    this.idle.clear();
  }
}
