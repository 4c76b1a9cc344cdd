// The admin API's HTTP plumbing: a small router over method and path segments, JSON answers and
// errors, bearer-token checks and bounded request bodies. No framework: the API has a dozen routes.
import type { PeerInfo } from "../runtime/types.ts";

/** An answer with a status; thrown by handlers for errors, returned for success. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

export interface ApiRequest {
  method: string;
  /** Path segments, decoded: /api/pools/web -> ["api", "pools", "web"]. */
  segments: string[];
  params: Record<string, string>;
  request: Request;
  peer: PeerInfo;
}

export type Handler = (req: ApiRequest) => Promise<Response> | Response;

interface Route {
  method: "GET" | "POST";
  pattern: string[];
  /** Writes need the token and are logged. */
  write: boolean;
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  get(path: string, handler: Handler): void {
    this.routes.push({ method: "GET", pattern: split(path), write: false, handler });
  }

  post(path: string, handler: Handler): void {
    this.routes.push({ method: "POST", pattern: split(path), write: true, handler });
  }

  /** The route for a path: the one whose method matches, else any with that path (a 405), else null. */
  find(method: string, segments: string[]): { route: Route; params: Record<string, string>; methodOk: boolean } | null {
    let other: { route: Route; params: Record<string, string> } | null = null;
    for (const route of this.routes) {
      const params = match(route.pattern, segments);
      if (!params) continue;
      const methodOk = route.method === method || (route.method === "GET" && method === "HEAD");
      if (methodOk) return { route, params, methodOk };
      other ??= { route, params };
    }
    return other ? { ...other, methodOk: false } : null;
  }

  /** Methods some route allows at this path (the Allow header of a 405). */
  allowed(segments: string[]): string[] {
    return [...new Set(this.routes.filter((r) => match(r.pattern, segments)).map((r) => r.method))];
  }
}

function split(path: string): string[] {
  return path.split("/").filter(Boolean);
}

function match(pattern: string[], segments: string[]): Record<string, string> | null {
  if (pattern.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p.startsWith(":")) params[p.slice(1)] = segments[i];
    else if (p !== segments[i]) return null;
  }
  return params;
}

/** Decoded path segments; null when a segment is not valid percent-encoding. */
export function pathSegments(pathname: string): string[] | null {
  try {
    return split(pathname).map(decodeURIComponent);
  } catch {
    return null;
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body, jsonReplacer, 2) + "\n", {
    status, headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
  });
}

export function text(body: string | Uint8Array<ArrayBuffer>, status = 200, contentType = "text/plain; charset=utf-8"): Response {
  return new Response(body, { status, headers: { "content-type": contentType, "cache-control": "no-store" } });
}

export function errorResponse(e: ApiError): Response {
  const headers: Record<string, string> = e.status === 401 ? { "www-authenticate": 'Bearer realm="fulcrum"' } : {};
  return json({ error: e.message, ...e.extra }, e.status, headers);
}

/** Config values as JSON: regular expressions as their source, sets and maps as lists and objects. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof RegExp) return value.source;
  if (value instanceof Set) return [...value];
  if (value instanceof Map) return Object.fromEntries(value);
  return value;
}

/** Compares a presented token with the expected one in time that does not depend on where they differ. */
export function sameToken(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given), b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

/** The bearer token of a request, "" when it has none. */
export function bearerToken(req: Request): string | null {
  const auth = req.headers.get("authorization");
  if (auth === null) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  return m ? m[1] : "";
}

/** Reads a JSON object body of at most `limit` bytes; an empty body reads as {}. */
export async function readJsonBody(req: Request, limit: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) throw new ApiError(413, `request body larger than ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw new ApiError(413, `request body larger than ${limit} bytes`);
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { bytes.set(c, at); at += c.length; }
  const source = new TextDecoder().decode(bytes).trim();
  if (source === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (e) {
    throw new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(400, "request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}
