// The L7 edge: one Hono app per listener, routes to pools, pools to servers.
import { Hono } from "hono";
import { runtime, type HttpServer, type PeerInfo } from "../runtime/index.ts";
import type { Config, ListenerConfig } from "../config/schema.ts";
import type { DataPlane } from "../core/dataplane.ts";
import { Pool } from "./pools.ts";
import { EdgeStats } from "./stats.ts";
import { hostOf, routeMatcher } from "./routes.ts";
import { errorResponse, forward } from "./forward.ts";

type Env = { Bindings: { peer: PeerInfo } };

export class Edge {
  readonly pools = new Map<string, Pool>();
  readonly stats = new EdgeStats();
  readonly servers: HttpServer[] = [];

  constructor(readonly config: Config, dp: DataPlane) {
    for (const p of config.pools) this.pools.set(p.name, new Pool(p, dp));
  }

  app(listener: ListenerConfig): Hono<Env> {
    const match = routeMatcher(this.config.routes, listener.name);
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
      return forward({ req, facts, route, pool: this.pools.get(route.pool)!, proto: "http" }, this.stats);
    });
    return app;
  }

  async start(): Promise<void> {
    for (const l of this.config.listeners) {
      const app = this.app(l);
      this.servers.push(await runtime.serveHttp({
        hostname: l.bind.host,
        port: l.bind.port,
        fetch: (req, peer) => app.fetch(req, { peer }),
      }));
    }
  }

  async stop(): Promise<void> {
    for (const p of this.pools.values()) p.stop();
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}
