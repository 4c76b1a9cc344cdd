// A listener on the socket path: accepts TCP connections and gives each a ClientConn.
import { runtime, type TcpSocket } from "../../runtime/index.ts";
import type { TcpListener, TlsCertificate } from "../../runtime/types.ts";
import type { ListenerConfig, RouteConfig } from "../config.ts";
import type { ListenerLimits } from "../options.ts";
import type { EdgeStats } from "../stats.ts";
import type { HttpPool } from "../http-pool.ts";
import { type RequestFacts, routeMatcher } from "../routes.ts";
import { ClientConn, type ConnectionHost } from "./client-conn.ts";
import type { DeadlineSweep } from "../../core/timer.ts";
import type { RequestHead } from "../../http1/request-head.ts";
import { K_X_REQUEST_ID } from "../../http1/head-scan.ts";

const NO_HANDLERS = { data() {}, drain() {}, close() {} };

/** What a listener needs of the edge it serves (Edge implements it). */
export interface ListenerHost {
  readonly routes: readonly RouteConfig[];
  readonly stats: EdgeStats;
  readonly pools: ReadonlyMap<string, HttpPool>;
}

/** Where a listening socket sends what it accepts: the listener of the generation serving now.
 * Shared along reloads, so the socket stays open while generations change. */
interface Acceptor {
  current: SocketListener;
}

export class SocketListener implements ConnectionHost {
  readonly match: (f: RequestFacts) => RouteConfig | null;
  readonly limits: ListenerLimits;
  readonly proto: "http" | "https";
  private readonly conns = new Set<ClientConn>();
  private server: TcpListener | null = null;
  private acceptor: Acceptor = { current: this };

  constructor(
    private readonly edge: ListenerHost,
    readonly config: ListenerConfig,
    readonly deadlines: DeadlineSweep,
    private readonly tls?: TlsCertificate[],
  ) {
    this.match = routeMatcher([...edge.routes], config.name);
    this.limits = config.limits;
    this.proto = config.tls ? "https" : "http";
  }

  /** Opens the listening socket, or takes over `previous`'s (a reload: the same bind, so the
   * socket never closes; what it accepts from now on comes here). */
  async start(previous?: SocketListener): Promise<number> {
    if (previous?.server && previous.canHandOver(this)) {
      this.server = previous.server;
      previous.server = null;
      this.acceptor = previous.acceptor;
      this.acceptor.current = this;
      if (this.tls) this.server.setCertificates?.(this.tls);
      return this.server.port;
    }
    const acceptor = this.acceptor;
    this.server = await runtime.listenTcp({
      hostname: this.config.bind.host,
      port: this.config.bind.port,
      tls: this.tls,
      accept: (socket: TcpSocket) => acceptor.current.accept(socket),
    });
    return this.server.port;
  }

  /** The same address, and both plain or both TLS (certificates can change in place). */
  private canHandOver(next: SocketListener): boolean {
    const a = this.config.bind, b = next.config.bind;
    return a.host === b.host && a.port === b.port && !this.tls === !next.tls;
  }

  /** Whether this listener still owns its listening socket (it does until a successor takes it). */
  get listening(): boolean {
    return this.server !== null;
  }

  private accept(socket: TcpSocket) {
    if (this.conns.size >= this.limits.maxConnections) {
      this.stats.errors.too_many_connections++;
      socket.destroy();
      return NO_HANDLERS;
    }
    const conn = new ClientConn(socket, this);
    this.conns.add(conn);
    return conn;
  }

  /** A reload: stop accepting (unless a successor took the socket), close idle connections,
   * let the busy ones finish; resolves once none is left or `timeoutMs` passed (then they are cut). */
  async retire(timeoutMs: number): Promise<void> {
    await this.server?.stop();
    this.server = null;
    for (const c of [...this.conns]) c.retire();
    const deadline = Date.now() + timeoutMs;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.stop();
  }

  get stats(): EdgeStats { return this.edge.stats; }
  get pools(): ReadonlyMap<string, HttpPool> { return this.edge.pools; }

  connectionClosed(conn: ClientConn): void {
    this.conns.delete(conn);
  }

  /** X-Request-ID: the client's when it is sane, else a new one. */
  requestId(req: RequestHead): string | null {
    if (!this.config.requestId) return null;
    return saneRequestId(req.joined(K_X_REQUEST_ID)) ?? crypto.randomUUID();
  }

  get connections(): number {
    return this.conns.size;
  }

  async stop(): Promise<void> {
    // Connections first: a TLS server's close waits for every connection to end.
    for (const c of [...this.conns]) c.socket.destroy();
    this.conns.clear();
    await this.server?.stop();
  }
}

/** A client's X-Request-ID worth passing on: printable, no spaces, not absurdly long. */
function saneRequestId(value: string | null): string | null {
  return value !== null && /^[\x21-\x7e]{1,200}$/.test(value) ? value : null;
}
