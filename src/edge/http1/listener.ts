// A listener on the socket path: accepts TCP connections and gives each a ClientConn.
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

const NO_HANDLERS = { data() {}, drain() {}, close() {} };

/** What a listener needs of the edge it serves (Edge implements it). */
export interface ListenerHost {
  readonly routes: readonly RouteConfig[];
  readonly routeStats: ReadonlyMap<RouteConfig, RouteStats>;
  readonly pools: ReadonlyMap<string, HttpPool>;
}

export class SocketListener implements ConnectionHost {
  readonly match: (f: RequestFacts) => RouteConfig | null;
  readonly limits: ListenerLimits;
  readonly proto: "http" | "https";
  readonly stats = new EdgeStats();
  private readonly conns = new Set<ClientConn>();
  private server: TcpListener | null = null;

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

  async start(): Promise<number> {
    this.server = await runtime.listenTcp({
      hostname: this.config.bind.host,
      port: this.config.bind.port,
      tls: this.tls,
      accept: (socket: TcpSocket) => {
        if (this.conns.size >= this.limits.maxConnections) {
          this.stats.errors.too_many_connections++;
          socket.destroy();
          return NO_HANDLERS;
        }
        this.stats.connections++;
        const conn = new ClientConn(socket, this);
        this.conns.add(conn);
        return conn;
      },
    });
    return this.server.port;
  }

  get pools(): ReadonlyMap<string, HttpPool> { return this.edge.pools; }
  get routeStats(): ReadonlyMap<RouteConfig, RouteStats> { return this.edge.routeStats; }

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
