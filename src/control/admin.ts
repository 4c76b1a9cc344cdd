// The admin service: the admin API, /metrics and the dashboard (GET /, its live feed
// /api/events: src/control/dashboard/) on their own HTTP listener (the runtime adapter's
// serveHttp), a service of the supervisor beside the generation it reports on. Reads are open to
// whoever can reach the bind; every write is a POST with the bearer token from `token_file`, and is
// logged with who asked and what changed. A bad request gets a JSON error naming what was wrong;
// nothing a client sends stops the process.
import { limitRows } from "./admin-limits.ts";
import { runtime } from "../runtime/index.ts";
import type { HttpServer, PeerInfo } from "../runtime/types.ts";
import { formatHostPort, type HostPort } from "../config/address.ts";
import { type AdminConfig, readAdminToken } from "./admin-config.ts";
import type { ControlState } from "./admin-state.ts";
import {
  ApiError, type ApiRequest, bearerToken, errorResponse, json, pathSegments, readJsonBody, Router, sameToken, text,
} from "./admin-http.ts";
import { configView, poolsView, statusView, vrrpView, poolView, monitorsByKey } from "./admin-read.ts";
import { addPool, addServer, findPool, removePool, removeServer, setAdminState, setWeight, type WriteResult } from "./admin-write.ts";
import { CONTENT_TYPE } from "./metrics.ts";
import { type FulcrumMetrics, fulcrumMetrics } from "./metrics-fulcrum.ts";
import { l4ConnectionsView, l4View } from "./admin-l4.ts";
import { LiveFeed } from "./dashboard/feed.ts";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard/page.ts";

/** Request bodies are small JSON objects; more is refused. */
export const MAX_BODY_BYTES = 64 * 1024;

export class AdminService {
  private server: HttpServer | null = null;
  private readonly router = new Router();
  /** Requests being handled now: a listener a reload replaced closes once they are answered. */
  private inflight = 0;
  /** Requests by status code (fulcrum_admin_requests_total). */
  readonly counts = new Map<number, number>();
  readonly metrics: FulcrumMetrics;
  /** The dashboard's live feed and chart samples (GET /api/events). */
  readonly feed: LiveFeed;

  private constructor(public config: AdminConfig, readonly state: ControlState, private token: string | null,
    private readonly log: (line: string) => void) {
    this.metrics = fulcrumMetrics(state, this.counts);
    this.feed = new LiveFeed(state);
    this.routes();
  }

  /** Reads the token file and opens the listener; throws with the reason when either fails. */
  static async start(config: AdminConfig, state: ControlState, log = (line: string) => console.log(`fulcrum: ${line}`)): Promise<AdminService> {
    const service = new AdminService(config, state, await readAdminToken(config), log);
    try {
      service.server = await service.listen(config.bind);
    } catch (e) {
      service.feed.stop();
      throw e;
    }
    return service;
  }

  get url(): string {
    return `http://${formatHostPort({ host: this.config.bind.host, port: this.server?.port ?? this.config.bind.port })}`;
  }

  async stop(): Promise<void> {
    this.feed.stop();
    await this.server?.stop();
    this.server = null;
  }

  /** A reload's admin section, in two steps so that a reload that fails changes nothing: this
   * re-reads the token file and, when the bind changed, opens the new listener (throwing when
   * either fails); commit() puts the new token in force at once and closes the old listener once
   * the requests on it are answered (the reload's own POST among them); abort() closes what was
   * opened. */
  async prepare(config: AdminConfig): Promise<{ commit(): void; abort(): Promise<void> }> {
    const token = await readAdminToken(config);
    const { host, port } = this.config.bind;
    const opened = config.bind.host !== host || config.bind.port !== port ? await this.listen(config.bind) : null;
    return {
      commit: () => {
        this.config = config;
        this.token = token;
        if (!opened) return;
        const old = this.server;
        this.server = opened;
        void this.whenIdle().then(() => old?.stop()).catch((e) => this.log(`admin: closing the old listener: ${(e as Error).message}`));
      },
      abort: async () => { await opened?.stop(); },
    };
  }

  /** Stops once no request is being handled (at most 5 s): the admin section left the config. */
  async stopWhenIdle(): Promise<void> {
    await this.whenIdle();
    await this.stop();
  }

  private listen(bind: HostPort): Promise<HttpServer> {
    return runtime.serveHttp({ hostname: bind.host, port: bind.port, fetch: (req, peer) => this.handle(req, peer) });
  }

  // Bounded: 5 s of requests in a row, then the listener closes anyway.
  private async whenIdle(): Promise<void> {
    for (let waited = 0; this.inflight > 0 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    // The runtime writes the last answer after its handler returned: give it a moment.
    await new Promise((r) => setTimeout(r, 50));
  }

  private async handle(request: Request, peer: PeerInfo): Promise<Response> {
    let res: Response;
    this.inflight++;
    try {
      res = await this.dispatch(request, peer);
    } catch (e) {
      if (e instanceof ApiError) res = errorResponse(e);
      else {
        // A bug, not the client's fault: say so, keep serving.
        this.log(`admin: ${request.method} ${new URL(request.url).pathname} failed: ${(e as Error).stack ?? e}`);
        res = errorResponse(new ApiError(500, `internal error: ${(e as Error).message}`));
      }
    } finally {
      this.inflight--;
    }
    this.counts.set(res.status, (this.counts.get(res.status) ?? 0) + 1);
    return res;
  }

  private async dispatch(request: Request, peer: PeerInfo): Promise<Response> {
    const url = new URL(request.url);
    const segments = pathSegments(url.pathname);
    if (!segments) throw new ApiError(400, `path ${url.pathname} is not valid percent-encoding`);
    const found = this.router.find(request.method, segments);
    if (!found) throw new ApiError(404, `no such endpoint: ${request.method} ${url.pathname}`, { endpoints: ENDPOINTS });
    if (!found.methodOk) {
      const allow = this.router.allowed(segments);
      const why = allow.includes("POST") ? "; changes are POST only" : "";
      return json({ error: `${request.method} is not allowed on ${url.pathname}${why}`, allow }, 405, { allow: allow.join(", ") });
    }
    const req: ApiRequest = { method: request.method, segments, params: found.params, request, peer };
    if (found.route.write) this.authorize(request);
    // Workers' counters are summed into the generation first (each worker answers or is left
    // at its last answer within a bounded wait).
    else if (this.state.refresh && (url.pathname === "/metrics" || url.pathname.startsWith("/api/")) && url.pathname !== "/api/events") await this.state.refresh();
    return await found.route.handler(req);
  }

  /** 401 without a token, 403 with a wrong one or when writes are off (no token_file). */
  private authorize(request: Request): void {
    if (this.token === null) throw new ApiError(403, "writes are disabled: the admin section has no token_file");
    const given = bearerToken(request);
    if (given === null) throw new ApiError(401, "this change needs the admin token: Authorization: Bearer TOKEN (admin.token_file)");
    if (!sameToken(given, this.token)) throw new ApiError(403, "wrong admin token");
  }

  /** Runs a write, logs who did what, answers its body. */
  private write(req: ApiRequest, change: (body: Record<string, unknown>) => WriteResult): Promise<Response> {
    return readJsonBody(req.request, MAX_BODY_BYTES).then((body) => {
      const result = change(body);
      const agent = req.request.headers.get("user-agent");
      this.feed.poke();
      this.log(`admin: ${result.what} by ${formatHostPort({ host: req.peer.address, port: req.peer.port })}${agent ? ` (${agent})` : ""}`);
      return json(result.body);
    });
  }

  private routes(): void {
    const r = this.router, s = this.state;
    // The dashboard: one page, its script and style (no inline code, so the CSP forbids any), and its feed.
    r.get("/", () => page(DASHBOARD_HTML, "text/html; charset=utf-8"));
    r.get("/dashboard.js", () => page(DASHBOARD_JS, "text/javascript; charset=utf-8"));
    r.get("/dashboard.css", () => page(DASHBOARD_CSS, "text/css; charset=utf-8"));
    r.get("/api/events", () => this.feed.open());
    r.get("/healthz", () => text("ok\n"));
    // Envoy's /ready: 200 LIVE while serving; 503 while starting or draining.
    r.get("/ready", () => text(`${s.phase === "live" ? "LIVE" : s.phase === "starting" ? "PRE_INITIALIZING" : "DRAINING"}\n`, s.phase === "live" ? 200 : 503));
    r.get("/metrics", () => text(this.metrics.render(), 200, CONTENT_TYPE));
    r.get("/api/status", () => json(statusView(s)));
    r.get("/api/pools", () => json({ pools: poolsView(s.generation) }));
    r.get("/api/pools/:pool", ({ params }) => {
      const g = s.generation, pool = findPool(g, params.pool);
      return json(poolView(pool, monitorsByKey(g), g.health.snapshot().find((h) => h.pool === pool.name)));
    });
    r.get("/api/vrrp", () => json({ instances: vrrpView(s.generation) }));
    r.get("/api/l4", () => json(l4View(s.generation)));
    r.get("/api/l4/connections", (q) => json(l4ConnectionsView(s.generation, connectionsLimit(new URL(q.request.url)))));
    r.get("/api/workers", () => json({ workers: s.workers?.() ?? null }));
    r.get("/api/limits", () => json({ tables: limitRows(s.generation) }));
    r.get("/api/config", () => json({ generation: s.generation.id, file: s.file, sha256: s.checksum, config: configView(s.generation) }));

    // A reload as SIGHUP does it: 200 with the new generation, or 400 with every error (the
    // running configuration stays).
    r.post("/api/reload", async (q) => {
      if (!s.reload) throw new ApiError(409, "this process has no config file to reload (the configuration came from the command line)");
      const agent = q.request.headers.get("user-agent");
      this.log(`admin: reload by ${formatHostPort({ host: q.peer.address, port: q.peer.port })}${agent ? ` (${agent})` : ""}`);
      const r = await s.reload();
      this.feed.poke();
      return r.ok ? json({ reloaded: true, generation: r.generation }) : json({ reloaded: false, generation: r.generation, errors: r.errors ?? [] }, 400);
    });
    r.post("/api/pools", (q) => this.write(q, (body) => addPool(s.generation, body)));
    r.post("/api/pools/:pool/remove", (q) => this.write(q, () => removePool(s.generation, q.params.pool)));
    r.post("/api/pools/:pool/servers", (q) => this.write(q, (body) => addServer(s.generation, q.params.pool, body)));
    for (const to of ["ready", "drain", "maint"] as const) {
      r.post(`/api/pools/:pool/servers/:server/${to}`, (q) => this.write(q, () => setAdminState(s.generation, q.params.pool, q.params.server, to)));
    }
    r.post("/api/pools/:pool/servers/:server/weight", (q) => this.write(q, (body) => setWeight(s.generation, q.params.pool, q.params.server, body)));
    r.post("/api/pools/:pool/servers/:server/remove", (q) => this.write(q, () => removeServer(s.generation, q.params.pool, q.params.server)));
  }
}

/** GET /api/l4/connections' `limit`: 1000 by default, at most 100000 (a table may hold millions). */
function connectionsLimit(url: URL): number {
  const raw = url.searchParams.get("limit");
  if (raw === null) return 1000;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100_000) throw new ApiError(400, `limit: expected an integer 1..100000, got "${raw}"`);
  return Number(raw);
}

/** Listed in a 404, so a caller sees what there is. */
const ENDPOINTS = [
  "GET / (dashboard)", "GET /api/events (SSE)", "GET /api/l4", "GET /api/l4/connections?limit=N", "GET /api/workers", "GET /healthz", "GET /ready", "GET /metrics", "GET /api/status", "GET /api/pools", "GET /api/pools/POOL", "GET /api/vrrp",
  "GET /api/config", "POST /api/pools", "POST /api/pools/POOL/remove", "POST /api/pools/POOL/servers",
  "POST /api/pools/POOL/servers/HOST:PORT/{ready,drain,maint,weight,remove}",
];

/** The dashboard's own resources: scripts and styles only from this origin. */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

function page(body: string, contentType: string): Response {
  return new Response(body, {
    headers: { "content-type": contentType, "cache-control": "no-store", "content-security-policy": PAGE_CSP, "x-content-type-options": "nosniff" },
  });
}
