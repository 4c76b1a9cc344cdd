// A listener on the socket path: accepts TCP connections and gives each a ClientConn.
import { OverloadGuard } from "../../core/overload.ts";
import { runtime, type TcpSocket } from "../../runtime/index.ts";
import type { TcpListener, TlsCertificate } from "../../runtime/types.ts";
import type { ListenerConfig, RouteConfig } from "../config.ts";
import type { ListenerLimits } from "../options.ts";
import { EdgeStats, type RouteStats } from "../stats.ts";
import type { HttpPool } from "../http-pool.ts";
import { type RequestFacts, routeMatcher } from "../routes.ts";
import { ClientConn, type ConnectionHost } from "./client-conn.ts";
import type { DeadlineSweep } from "../../core/timer.ts";
import type { RequestHead } from "../../http1/request-head.ts";
import { K_X_REQUEST_ID } from "../../http1/head-scan.ts";
import { H2Connection, type H2Host } from "../h2/connection.ts";
import { PrefaceSniffer } from "../h2/sniff.ts";
import { H2UpstreamPool } from "../h2/upstream.ts";
import { acceptProxyHeader } from "../../l4/proxy-accept.ts";
import { AccessLog } from "../../log/access-log.ts";
import type { EdgeLimits, Held, Refusal } from "../limits/limiter.ts";
import type { HeaderLookup } from "../../http1/head.ts";
import type { Admission, EdgeAccess } from "../access/admission.ts";
import type { ExchangeClient } from "./exchange.ts";
import type { SharedCount } from "../../core/shared-count.ts";

const NO_HANDLERS = { data() {}, drain() {}, close() {} };
/** A retired generation's idle keep-alive connection closes after this long without a request:
 * closing one at once races a client that is just sending its next request on it. */
const RETIRE_IDLE_MS = 1000;

/** What a listener needs of the edge it serves (Edge implements it). */
export interface ListenerHost {
  readonly routes: readonly RouteConfig[];
  readonly routeStats: ReadonlyMap<RouteConfig, RouteStats>;
  readonly pools: ReadonlyMap<string, HttpPool>;
  readonly clientLimits: EdgeLimits;
  readonly access: EdgeAccess;
}

/** Where a listening socket sends what it accepts: the listener of the generation serving now.
 * Shared along reloads, so the socket stays open while generations change. */
interface Acceptor {
  current: SocketListener;
}

export class SocketListener implements ConnectionHost, H2Host {
  readonly match: (f: RequestFacts) => RouteConfig | null;
  readonly limits: ListenerLimits;
  readonly proto: "http" | "https";
  readonly stats = new EdgeStats();
  private readonly conns = new Set<ClientConn>();
  private readonly h2conns = new Set<H2Connection>();
  readonly h2Upstreams = new H2UpstreamPool();
  private server: TcpListener | null = null;
  private acceptor: Acceptor = { current: this };
  /** Sheds new requests while the process is overloaded; null: the listener has no bounds. */
  readonly overload: OverloadGuard | null;
  /** Opened once the listener serves; the sink of its path is shared (src/log/sink.ts). */
  accessLog: AccessLog | null = null;
  /** With workers: the open connections of every worker on this port, which max_connections
   * caps (set before start); null: this process's alone. */
  sharedConnections: SharedCount | null = null;
  /** In a supervisor's mirror (Edge.mirror): the connections its workers have open, summed
   * there (src/control/workers/counters.ts). */
  mirrored: { connections: number } | null = null;

  constructor(
    private readonly edge: ListenerHost,
    readonly config: ListenerConfig,
    readonly deadlines: DeadlineSweep,
    private readonly tls?: TlsCertificate[],
  ) {
    this.match = routeMatcher([...edge.routes], config.name);
    this.overload = config.overload ? new OverloadGuard(config.overload) : null;
    this.limits = config.limits;
    this.proto = config.tls ? "https" : "http";
  }

  /** Opens the listening socket, or takes over `previous`'s (a reload: the same bind, so the
   * socket never closes; what it accepts from now on comes here). The ALPN offer stays the one
   * the socket was opened with. */
  async start(previous?: SocketListener): Promise<number> {
    this.overload?.start();
    return AccessLog.openFor(this.config.accessLog, this.config.name, (log) => {
      this.accessLog = log;
      return this.listen(previous);
    });
  }

  private async listen(previous?: SocketListener): Promise<number> {
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
      alpn: this.tls && this.config.http2 ? ["h2", "http/1.1"] : undefined,
      reusePort: this.config.reusePort,
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
    const open = this.sharedConnections ? this.sharedConnections.value : this.conns.size + this.h2conns.size;
    if (open >= this.limits.maxConnections) {
      this.stats.errors.too_many_connections++;
      socket.destroy();
      return NO_HANDLERS;
    }
    this.stats.connections++;
    if (this.config.acceptProxy) {
      return acceptProxyHeader(socket, this.limits.headerTimeoutMs, (client, rest) => {
        const conn = this.openH1(socket, client);
        if (rest.length > 0) conn.data(rest);
        return conn;
      }, (why, reason) => {
        this.stats.errors.bad_proxy_header++;
        console.error(`fulcrum: ${this.config.name}: bad_proxy_header (${why}) from ${socket.remoteAddress}: ${reason}`);
      });
    }
    if (socket.alpnProtocol === "h2") return this.openH2(socket);
    if (!this.tls && this.config.http2) {
      return new PrefaceSniffer(socket, this.deadlines, this.limits.idleTimeoutMs, () => this.openH2(socket), () => this.openH1(socket));
    }
    return this.openH1(socket);
  }

  /** A reload: stop accepting (unless a successor took the socket), close idle HTTP/1
   * connections and let the busy ones finish; HTTP/2 clients get a GOAWAY and their streams in
   * flight finish. Resolves once none is left or `timeoutMs` passed (then they are cut). */
  async retire(timeoutMs: number): Promise<void> {
    this.server?.close();
    const goaway = Promise.all([...this.h2conns].map((c) => c.shutdown()));
    const deadline = Date.now() + timeoutMs;
    // Only a sweep that closely follows the previous one closes idle connections. The first runs
    // in the reload's own tick, and a later one may come after the event loop was held up (a slow
    // build, a starved process): either way a request that arrived on an "idle" connection
    // meanwhile may not be read yet, and closing it would drop that request. Such a sweep only
    // marks the connections retiring; the next one, after the loop has read, decides.
    const STALL_MS = 250;
    let last = -Infinity;
    for (;;) {
      const now = Date.now();
      const idleMs = now - last > STALL_MS ? Infinity : RETIRE_IDLE_MS;
      last = now;
      for (const c of [...this.conns]) c.retire(now, idleMs);
      if (this.conns.size === 0 || now >= deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await goaway;
    await this.stop();
  }

  /** `peer`: the client a PROXY header named (accept_proxy), instead of the socket's peer. */
  private openH1(socket: TcpSocket, peer?: { address: string; port: number }): ClientConn {
    const conn = new ClientConn(socket, this, peer);
    this.conns.add(conn);
    this.sharedConnections?.add(1);
    return conn;
  }

  private openH2(socket: TcpSocket): H2Connection {
    const conn = new H2Connection(socket, this);
    this.h2conns.add(conn);
    this.sharedConnections?.add(1);
    return conn;
  }

  h2Closed(conn: H2Connection): void {
    if (this.h2conns.delete(conn)) this.sharedConnections?.add(-1);
  }

  get routeStats(): ReadonlyMap<RouteConfig, RouteStats> { return this.edge.routeStats; }

  /** Access rules and route actions, before the pool (src/edge/access/admission.ts). */
  admit(client: ExchangeClient, req: RequestHead, route: RouteConfig): Admission {
    return this.edge.access.admit(client, req, route, this.config.name, this.edge.routeStats.get(route));
  }
  get pools(): ReadonlyMap<string, HttpPool> { return this.edge.pools; }

  /** This listener's and the route's per-client limits for one request (src/edge/limits/). */
  admitLimits(route: RouteConfig, client: string, headers: HeaderLookup, held: Held): Refusal | null {
    return this.edge.clientLimits.admit(this.config.name, route, client, headers, held);
  }

  connectionClosed(conn: ClientConn): void {
    if (this.conns.delete(conn)) this.sharedConnections?.add(-1);
  }

  /** X-Request-ID: the client's when it is sane, else a new one. */
  requestId(req: RequestHead): string | null {
    if (!this.config.requestId) return null;
    return saneRequestId(req.joined(K_X_REQUEST_ID)) ?? crypto.randomUUID();
  }

  get connections(): number {
    return this.mirrored?.connections ?? this.conns.size + this.h2conns.size;
  }

  async stop(): Promise<void> {
    // Connections first: a TLS server's close waits for every connection to end. HTTP/2 clients
    // get a GOAWAY and their streams in flight finish (bounded), so they move on without errors.
    for (const c of [...this.conns]) c.socket.destroy();
    this.sharedConnections?.add(-this.conns.size);
    this.conns.clear();
    await Promise.all([...this.h2conns].map((c) => c.shutdown()));
    this.sharedConnections?.add(-this.h2conns.size);
    this.h2conns.clear();
    this.h2Upstreams.closeAll();
    this.overload?.stop();
    await this.server?.stop();
    await this.accessLog?.close();
  }
}

/** A client's X-Request-ID worth passing on: printable, no spaces, not absurdly long. */
function saneRequestId(value: string | null): string | null {
  return value !== null && /^[\x21-\x7e]{1,200}$/.test(value) ? value : null;
}
