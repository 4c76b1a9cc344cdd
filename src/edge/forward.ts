// The forwarding step of the fetch path: pick, send upstream, stream the answer back, and turn
// failures into the statuses operators expect (503 no server, 502 refused/failed, 504 timeout).
// The socket fast path (L7 issue) replaces this step, not routes, pools or schedulers.
import { runtime, UpstreamError } from "../runtime/index.ts";
import type { RouteConfig } from "./config.ts";
import type { HttpPool as Pool, KeyFacts } from "./http-pool.ts";
import type { Server } from "../balancer/pool.ts";
import { type FailureKind, mayRetry } from "./retry.ts";
import { saneRequestId } from "./headers.ts";
import { withoutCookie } from "./affinity.ts";
import type { EdgeStats, ErrorKind } from "./stats.ts";
import { clientResponseHeaders, upstreamRequestHeaders } from "./headers.ts";
import { errorResponse } from "./errors.ts";

const BODYLESS_STATUS = new Set([101, 204, 205, 304]);

export interface ForwardRequest {
  req: Request;
  facts: KeyFacts;
  route: RouteConfig;
  pool: Pool;
  proto: "http" | "https";
  /** Pass on or generate X-Request-ID. */
  requestId: boolean;
}

type Attempt = { response: Response } | { failure: FailureKind; status: number; kind: ErrorKind; detail: string };

export async function forward(f: ForwardRequest, stats: EdgeStats): Promise<Response> {
  const { req, pool, route } = f;
  const requestId = f.requestId ? saneRequestId(req.headers.get("x-request-id")) ?? crypto.randomUUID() : null;
  const headers = upstreamRequestHeaders(req.headers, { clientAddress: f.facts.clientAddress, proto: f.proto }, route.requestHeaders);
  if (requestId) headers.set("x-request-id", requestId);
  const dropCookie = pool.stickyCookieToDrop();
  if (dropCookie) dropRequestCookie(headers, dropCookie);
  // The fetch path streams request bodies, so only a request without one can be sent again.
  const state = { attempts: 0, startedAt: Date.now(), method: req.method, replayable: req.body === null, answered: false };
  const tried = new Set<Server>();
  let last: Extract<Attempt, { failure: FailureKind }> | null = null;
  for (;;) {
    const server = pool.pickAvoiding(f.facts, tried);
    if (!server) {
      if (last) return failed(last, stats);
      const wait = pool.waitForSlot();
      if (wait) {
        if (await wait) continue;
        stats.errors.queue_timeout++;
        return errorResponse(503, "queue_timeout", `no server of pool ${pool.name} freed up in time`);
      }
      stats.errors.no_server++;
      return errorResponse(503, "no_server", `no server available in pool ${pool.name}`);
    }
    tried.add(server);
    state.attempts++;
    const a = await attempt(f, server, headers, requestId);
    if ("response" in a) {
      if (pool.retry.statuses.has(a.response.status) && mayRetry(pool.retry, state, "status")) {
        void a.response.body?.cancel().catch(() => {});
        pool.reportFailure(server);
        stats.retries++;
        continue;
      }
      return a.response;
    }
    console.error(`fulcrum: ${server.label} ${a.status} ${a.detail} (${req.method} ${f.facts.target})`);
    last = a;
    if (!mayRetry(pool.retry, state, a.failure)) return failed(a, stats);
    stats.retries++;
  }
}

function failed(a: Extract<Attempt, { failure: FailureKind }>, stats: EdgeStats): Response {
  stats.errors[a.kind]++;
  return errorResponse(a.status, a.kind, a.detail);
}

async function attempt(f: ForwardRequest, server: Server, headers: Headers, requestId: string | null): Promise<Attempt> {
  const { req, pool, route } = f;
  const abort = new AbortController();
  const { connectTimeoutMs, http: { readTimeoutMs } } = pool.config;
  // fetch() cannot tell connecting from waiting, so until the response head arrives the two
  // timeouts add up; the socket path keeps them apart.
  const timer = setTimeout(() => abort.abort(), connectTimeoutMs + readTimeoutMs);
  try {
    const res = await runtime.upstream({
      host: server.host,
      port: server.port,
      method: req.method,
      path: f.facts.target,
      headers,
      body: req.body,
      signal: abort.signal,
    });
    clearTimeout(timer);
    pool.reportSuccess(server);
    pool.observe(server, res.status);
    const out = clientResponseHeaders(res.headers, route.responseHeaders);
    for (const [n, v] of pool.stickyCookieFor(server, f.facts)) out.append(n, v);
    if (requestId) out.set("x-request-id", requestId);
    const bodyless = req.method === "HEAD" || BODYLESS_STATUS.has(res.status) || !res.body;
    if (bodyless) {
      pool.release(server);
      void res.body?.cancel().catch(() => {});
      return { response: new Response(null, { status: res.status, headers: out }) };
    }
    return { response: new Response(releaseOnEnd(res.body!, () => pool.release(server)), { status: res.status, headers: out }) };
  } catch (e) {
    clearTimeout(timer);
    pool.release(server);
    pool.reportFailure(server);
    pool.observe(server, "no_response");
    return upstreamFailure(e, abort.signal.aborted);
  }
}

function dropRequestCookie(headers: Headers, name: string): void {
  const rest = withoutCookie(headers.get("cookie"), name);
  if (rest) headers.set("cookie", rest);
  else headers.delete("cookie");
}

function upstreamFailure(e: unknown, timedOut: boolean): Attempt {
  if (timedOut) return { failure: "timeout", status: 504, kind: "upstream_timeout", detail: "upstream timed out" };
  if (e instanceof UpstreamError && e.kind === "refused") {
    return { failure: "error", status: 502, kind: "upstream_refused", detail: "upstream refused the connection" };
  }
  return { failure: "error", status: 502, kind: "upstream_failed", detail: "upstream closed or reset the connection" };
}

// Streams the upstream body to the client and calls done exactly once: at the end, on error,
// or when the client goes away, so active-connection counts stay true for lc/wlc.
function releaseOnEnd(src: ReadableStream<Uint8Array>, done: () => void): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  let finished = false;
  const finish = () => { if (!finished) { finished = true; done(); } };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: end, value } = await reader.read();
        if (end) { finish(); controller.close(); } else controller.enqueue(value);
      } catch (e) {
        finish();
        controller.error(e);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
