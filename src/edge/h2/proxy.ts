// A request from an HTTP/2 client to a `protocol: h2` pool: the stream is carried over as an
// HTTP/2 stream to the server (gRPC needs this: trailers, bidirectional streaming), with the same
// pick, header rules and X-Forwarded-* as the HTTP/1.1 path, and flow control end to end. Not
// retried (a stream may already be half sent); an upstream failure before the answer is a 502.
import type { RequestHead } from "../../http1/request-head.ts";
import type { RouteConfig, HeaderRewrite } from "../config.ts";
import type { HttpPool } from "../http-pool.ts";
import type { Server } from "../../balancer/pool.ts";
import type { Timed } from "../../core/timer.ts";
import { UpstreamError } from "../../runtime/types.ts";
import type { H2Stream, StreamWork } from "./stream.ts";
import type { H2UpstreamConn, H2UpstreamPool, UpstreamStreamUser } from "./upstream.ts";
import { errorBody } from "../errors.ts";

const NONE: ReadonlySet<Server> = new Set();
/** Request fields recomputed here (the client's are replaced), and hop-by-hop ones. */
const RECOMPUTED = new Set(["host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "via", "x-request-id"]);
const VIA = "2 fulcrum";

function rewrite(fields: [string, string][], rule: HeaderRewrite): [string, string][] {
  if (rule.remove.length === 0 && rule.set.length === 0 && rule.add.length === 0) return fields;
  const drop = new Set([...rule.remove, ...rule.set.map(([n]) => n.toLowerCase())]);
  const out = fields.filter(([n]) => !drop.has(n));
  for (const [n, v] of rule.set) out.push([n.toLowerCase(), v]);
  for (const [n, v] of rule.add) out.push([n.toLowerCase(), v]);
  return out;
}

export class H2Proxy implements StreamWork, UpstreamStreamUser, Timed {
  deadline = 0;
  private server: Server | null = null;
  private conn: H2UpstreamConn | null = null;
  private id = 0;
  private finished = false;
  private answered = false;
  /** Body bytes that came before the upstream stream was open. */
  private early: Uint8Array[] = [];
  private earlyEnd = false;
  private earlyTrailers: [string, string][] | null = null;
  // For the access log.
  private readonly startedAt = Date.now();
  private lastServer: Server | null = null;
  private connectMs = -1;
  private headerMs = -1;
  private status = 0;
  private bodyBytes = 0;

  constructor(
    private readonly stream: H2Stream,
    private readonly req: RequestHead,
    private readonly fields: [string, string][],
    private readonly route: RouteConfig,
    private readonly pool: HttpPool,
    private readonly upstreams: H2UpstreamPool,
    private readonly requestId: string | null,
  ) {}

  /** When the server was picked (performance.now()): least_time's samples. */
  private pickedAt = 0;

  /** least_time: the time from the pick to now, when the pool times to `at`. */
  private timed(at: "header" | "last_byte"): void {
    if (this.server && this.pool.balance.timing === at) this.pool.balance.observeTime(this.server, performance.now() - this.pickedAt);
  }

  /** Picks a server and opens the stream; endStream: the request has no body. */
  start(endStream: boolean): void {
    this.earlyEnd = endStream;
    const server = this.pool.pickAvoiding(this.stream.keyFacts(this.req), NONE);
    if (!server) {
      this.stream.stats.errors.no_server++;
      this.fail(503, "no_server", `no server available in pool ${this.pool.name}`);
      return;
    }
    this.server = this.lastServer = server;
    this.pickedAt = performance.now();
    this.stream.deadlines.watch(this);
    this.arm();
    this.upstreams.get(server.host, server.port, this.pool.config.connectTimeoutMs).then((conn) => {
      if (this.finished) return;
      this.connectMs = Date.now() - this.startedAt;
      this.conn = conn;
      this.id = conn.open(this, this.requestFields(), this.earlyEnd && this.early.length === 0 && !this.earlyTrailers);
      if (this.early.length > 0 || (this.earlyEnd && this.earlyTrailers === null)) {
        const parts = this.early;
        this.early = [];
        parts.forEach((p, i) => conn.send(this.id, p, this.earlyEnd && this.earlyTrailers === null && i === parts.length - 1));
      }
      if (this.earlyTrailers) conn.sendTrailers(this.id, this.earlyTrailers);
    }, (e) => {
      if (this.finished) return;
      const refused = e instanceof UpstreamError && e.kind === "refused";
      const timedOut = (e as Error).message === "timeout";
      this.pool.reportFailure(server);
      this.stream.stats.errors[timedOut ? "upstream_timeout" : refused ? "upstream_refused" : "upstream_failed"]++;
      this.fail(timedOut ? 504 : 502, timedOut ? "upstream_timeout" : refused ? "upstream_refused" : "upstream_failed",
        timedOut ? "upstream connect timed out" : refused ? "upstream refused the connection" : "upstream connection failed");
    });
  }

  private requestFields(): [string, string][] {
    const s = this.stream;
    let authority = "", xff: string | null = null, via: string | null = null;
    const out: [string, string][] = [];
    const regular: [string, string][] = [];
    for (const [n, v] of this.fields) {
      if (n === ":authority") authority = v;
      if (n.charCodeAt(0) === 0x3a) { out.push([n, v]); continue; }
      if (n === "host") { if (!authority) { authority = v; out.push([":authority", v]); } continue; }
      if (n === "x-forwarded-for") { xff = xff === null ? v : `${xff}, ${v}`; continue; }
      if (n === "via") { via = via === null ? v : `${via}, ${v}`; continue; }
      if (RECOMPUTED.has(n)) continue;
      regular.push([n, v]);
    }
    const rewritten = rewrite(regular, this.route.requestHeaders);
    out.push(...rewritten);
    out.push(["x-forwarded-for", xff ? `${xff}, ${s.address}` : s.address], ["x-forwarded-proto", s.proto]);
    if (authority) out.push(["x-forwarded-host", authority]);
    out.push(["x-real-ip", s.address], ["via", via ? `${via}, ${VIA}` : VIA]);
    if (this.requestId) out.push(["x-request-id", this.requestId]);
    return out;
  }

  private arm(): void {
    this.deadline = this.stream.deadlines.now + this.pool.config.http.readTimeoutMs;
  }

  expire(): void {
    if (this.finished) return;
    console.error(`fulcrum: ${this.server?.label} h2 stream timed out (${this.req.method} ${this.req.target})`);
    if (this.server) this.pool.reportFailure(this.server);
    this.conn?.cancel(this.id);
    if (this.answered) { this.done(); this.stream.reset(); return; }
    this.stream.stats.errors.upstream_timeout++;
    this.fail(504, "upstream_timeout", "upstream timed out");
  }

  // ---------------------------------------------------------------- from the client stream

  clientBody(chunk: Uint8Array, last: boolean): void {
    if (this.finished) return;
    if (!this.conn) { if (chunk.length > 0) this.early.push(chunk.slice()); if (last) this.earlyEnd = true; return; }
    if (!this.conn.send(this.id, chunk, last)) this.stream.pauseReading();
  }

  clientTrailers(fields: [string, string][]): void {
    if (this.finished) return;
    const t = fields.filter(([n]) => n.charCodeAt(0) !== 0x3a);
    if (!this.conn) { this.earlyTrailers = t; this.earlyEnd = true; return; }
    this.conn.sendTrailers(this.id, t);
  }

  clientDrain(): void { this.conn?.hold(this.id, false); }

  clientGone(): void {
    if (this.finished) return;
    this.conn?.cancel(this.id);
    this.done();
  }

  // ---------------------------------------------------------------- from the server

  upstreamHeaders(fields: [string, string][], endStream: boolean): void {
    if (this.finished) return;
    this.arm();
    if (this.answered) { // trailers
      this.stream.finishBody(fields.filter(([n]) => n.charCodeAt(0) !== 0x3a));
      this.timed("last_byte");
      this.done();
      return;
    }
    const status = Number(fields.find(([n]) => n === ":status")?.[1] ?? 0);
    if (status < 200) { if (status >= 100 && status !== 101) this.stream.sendHead(fields, false); return; }
    this.answered = true;
    this.status = status;
    this.headerMs = Date.now() - this.startedAt;
    this.server!.traffic.responses[(status / 100) | 0]++;
    this.server!.traffic.responseTime.observe(this.headerMs);
    this.stream.countResponse(status);
    this.pool.reportSuccess(this.server!);
    this.pool.observe(this.server!, status);
    this.timed("header");
    let out = rewrite(fields.filter(([n]) => n !== "connection" && n !== "keep-alive" && n !== "transfer-encoding"), this.route.responseHeaders);
    if (this.requestId) out = [...out.filter(([n]) => n !== "x-request-id"), ["x-request-id", this.requestId]];
    this.stream.sendHead(out, endStream);
    if (endStream) { this.timed("last_byte"); this.done(); }
  }

  upstreamData(bytes: Uint8Array, endStream: boolean): void {
    if (this.finished || !this.answered) return;
    this.arm();
    this.bodyBytes += bytes.length;
    if (!this.stream.queueBody(bytes, endStream)) this.conn?.hold(this.id, true);
    if (endStream) { this.timed("last_byte"); this.done(); }
  }

  upstreamDrain(): void { this.stream.resumeReading(); }

  upstreamFailed(reason: string, beforeAnswer: boolean): void {
    if (this.finished) return;
    console.error(`fulcrum: ${this.server?.label} ${reason} (${this.req.method} ${this.req.target})`);
    if (this.server) this.pool.reportFailure(this.server);
    if (!beforeAnswer) { this.done(); this.stream.reset(); return; }
    this.stream.stats.errors.upstream_failed++;
    this.fail(502, "upstream_failed", reason);
  }

  private fail(status: number, kind: "no_server" | "upstream_failed" | "upstream_refused" | "upstream_timeout", detail: string): void {
    this.done(status, errorBody(status, detail).length);
    this.stream.respondError(status, kind, detail);
  }

  /** The stream's work is over; `status` and `bodyBytes` are what the client got (by default the
   * server's answer, or 499 when the client left before one). */
  private done(status = this.status || 499, bodyBytes = this.bodyBytes): void {
    if (this.finished) return;
    this.finished = true;
    this.stream.accessLog?.http({
      clientAddress: this.stream.address, method: this.req.method, target: this.req.target, protocol: "HTTP/2.0",
      headers: this.req, status, bodyBytes, upstream: this.lastServer, upstreamStatus: this.status, connectMs: this.connectMs,
      headerMs: this.headerMs, startedAt: this.startedAt, retries: 0, route: this.route.name, pool: this.pool.name,
    });
    this.deadline = 0;
    this.stream.deadlines.unwatch(this);
    if (this.server) { this.pool.release(this.server); this.server = null; }
    if (this.stream.exchange === this) this.stream.exchange = null;
  }
}
