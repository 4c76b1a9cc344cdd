// The forwarding step of the fetch path: pick, send upstream, stream the answer back, and turn
// failures into the statuses operators expect (503 no server, 502 refused/failed, 504 timeout).
// The socket fast path (L7 issue) replaces this step, not routes, pools or schedulers.
import { runtime, UpstreamError } from "../runtime/index.ts";
import type { RouteConfig } from "../config/schema.ts";
import type { Pool, Server, KeyFacts } from "./pools.ts";
import type { EdgeStats, ErrorKind } from "./stats.ts";
import { clientResponseHeaders, upstreamRequestHeaders } from "./headers.ts";

const STATUS_TEXT: Record<number, string> = { 404: "Not Found", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" };

export function errorResponse(status: number, kind: ErrorKind, detail: string): Response {
  return new Response(`${status} ${STATUS_TEXT[status]}: ${detail}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-fulcrum-error": kind },
  });
}

export interface ForwardRequest {
  req: Request;
  facts: KeyFacts;
  route: RouteConfig;
  pool: Pool;
  proto: "http" | "https";
}

const BODYLESS_STATUS = new Set([101, 204, 205, 304]);

export async function forward(f: ForwardRequest, stats: EdgeStats): Promise<Response> {
  const { req, pool, route } = f;
  const server = pool.pick(f.facts);
  if (!server) {
    stats.errors.no_server++;
    return errorResponse(503, "no_server", `no server available in pool ${pool.name}`);
  }
  const abort = new AbortController();
  const { connectTimeoutMs, readTimeoutMs } = pool.config;
  // fetch() cannot tell connecting from waiting, so until the response head arrives the two
  // timeouts add up; the socket path keeps them apart.
  const timer = setTimeout(() => abort.abort(), connectTimeoutMs + readTimeoutMs);
  try {
    const res = await runtime.upstream({
      host: server.host,
      port: server.port,
      method: req.method,
      path: f.facts.target,
      headers: upstreamRequestHeaders(req.headers, { clientAddress: f.facts.clientAddress, proto: f.proto }, route.requestHeaders),
      body: req.body,
      signal: abort.signal,
    });
    clearTimeout(timer);
    pool.reportSuccess(server);
    const headers = clientResponseHeaders(res.headers, route.responseHeaders);
    const bodyless = req.method === "HEAD" || BODYLESS_STATUS.has(res.status) || !res.body;
    if (bodyless) {
      pool.release(server);
      void res.body?.cancel().catch(() => {});
      return new Response(null, { status: res.status, headers });
    }
    return new Response(releaseOnEnd(res.body!, () => pool.release(server)), { status: res.status, headers });
  } catch (e) {
    clearTimeout(timer);
    pool.release(server);
    pool.reportFailure(server);
    return upstreamFailure(e, abort.signal.aborted, server, f, stats);
  }
}

function upstreamFailure(e: unknown, timedOut: boolean, server: Server, f: ForwardRequest, stats: EdgeStats): Response {
  const [status, kind, detail]: [number, ErrorKind, string] = timedOut
    ? [504, "upstream_timeout", "upstream timed out"]
    : e instanceof UpstreamError && e.kind === "refused"
    ? [502, "upstream_refused", "upstream refused the connection"]
    : [502, "upstream_failed", "upstream closed or reset the connection"];
  stats.errors[kind]++;
  console.error(`fulcrum: ${server.label} ${status} ${detail} (${f.req.method} ${f.facts.target})`);
  return errorResponse(status, kind, detail);
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
