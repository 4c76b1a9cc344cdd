// The L7 edge: listeners (the socket path by default, or the runtime's HTTP server with Hono),
// routes to pools, pools to servers.
import { Hono } from "hono";
import { runtime, type PeerInfo } from "../runtime/index.ts";
import type { TlsCertificate } from "../runtime/types.ts";
import type { Config, ListenerConfig } from "../config/schema.ts";
import type { DataPlane } from "../core/dataplane.ts";
import { Pool } from "./pools.ts";
import { EdgeStats } from "./stats.ts";
import { routeMatcher } from "./routes.ts";
import { hostOf } from "../http1/request-head.ts";
import { forward } from "./forward.ts";
import { errorResponse } from "./errors.ts";
import { SocketListener } from "./http1/listener.ts";
import { DeadlineSweep } from "../core/timer.ts";
import { UpstreamPool } from "./http1/upstream-pool.ts";

type Env = { Bindings: { peer: PeerInfo } };

export class Edge {
  readonly pools = new Map<string, Pool>();
  readonly stats = new EdgeStats();
  /** The port each listener bound, in config order (the config may say 0). */
  readonly ports: number[] = [];
  readonly deadlines = new DeadlineSweep();
  readonly upstreams = new UpstreamPool();
  private readonly stops: (() => Promise<void>)[] = [];

  constructor(readonly config: Config, dp: DataPlane) {
    for (const p of config.pools) this.pools.set(p.name, new Pool(p, dp, this.upstreams));
  }

  /** The fetch path: a Hono app per listener. */
  app(listener: ListenerConfig): Hono<Env> {
    const match = routeMatcher(this.config.routes, listener.name);
    const proto = listener.tls ? "https" : "http";
    const app = new Hono<Env>();
    app.all("*", (c) => {
      const req = c.req.raw;
      this.stats.requests++;
      // Path and query as received: everything after the authority in the absolute URL.
      const target = req.url.slice(req.url.indexOf("/", req.url.indexOf("//") + 2));
      const qmark = target.indexOf("?");
      const host = hostOf(req.headers.get("host"));
      const route = match({ host, path: qmark < 0 ? target : target.slice(0, qmark), method: req.method, headers: req.headers });
      if (!route) {
        this.stats.errors.no_route++;
        return errorResponse(404, "no_route", "no route matches this request");
      }
      const facts = { clientAddress: c.env.peer.address, target, host, headers: req.headers };
      return forward({ req, facts, route, pool: this.pools.get(route.pool)!, proto, requestId: listener.requestId }, this.stats);
    });
    return app;
  }

  async start(): Promise<void> {
    for (const l of this.config.listeners) {
      const tls = l.tls ? await loadCertificates(l) : undefined;
      if (l.engine === "socket") {
        const listener = new SocketListener(this, l, this.deadlines, tls);
        this.ports.push(await listener.start());
        this.stops.push(() => listener.stop());
      } else {
        const app = this.app(l);
        const server = await runtime.serveHttp({
          hostname: l.bind.host,
          port: l.bind.port,
          tls,
          idleTimeout: Math.ceil(l.limits.idleTimeoutMs / 1000),
          fetch: (req, peer) => app.fetch(req, { peer }),
        });
        this.ports.push(server.port);
        this.stops.push(() => server.stop());
      }
    }
  }

  async stop(): Promise<void> {
    for (const p of this.pools.values()) p.stop();
    await Promise.all(this.stops.map((s) => s()));
    this.deadlines.stop();
    this.upstreams.closeAll();
  }
}

async function loadCertificates(l: ListenerConfig): Promise<TlsCertificate[]> {
  const out: TlsCertificate[] = [];
  for (const t of l.tls!) {
    try {
      out.push({ cert: await runtime.readTextFile(t.cert), key: await runtime.readTextFile(t.key), serverNames: t.serverNames });
    } catch (e) {
      throw new Error(`listener ${l.name}: cannot read TLS files ${t.cert} / ${t.key}: ${(e as Error).message}`);
    }
  }
  return out;
}
