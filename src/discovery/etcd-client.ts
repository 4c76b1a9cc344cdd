// A small etcd v3 client over its JSON gateway (POST /v3/...) with `fetch`: range, put, delete,
// create-if-absent transactions, leases and streaming watches. The gRPC client for Node hangs on
// Bun, so Fulcrum speaks the gateway. Keys and values cross as base64; an etcd int64 (revision,
// lease ID) is a decimal string in JSON and stays a string here except revisions, which stay well
// below 2^53. Several endpoints: a request that cannot reach one tries the next; user and password
// get a token (POST /v3/auth/authenticate) sent as the Authorization header, renewed when refused.
import { runtime } from "../runtime/index.ts";

export interface EtcdClientOptions {
  /** Base URLs, e.g. http://127.0.0.1:2379. */
  endpoints: string[];
  /** PEM text of the CA that signed etcd's certificate (https endpoints), or null. */
  ca: string | null;
  username: string | null;
  password: string | null;
  /** Bound on one unary request (range, put, txn, lease calls). */
  requestTimeoutMs?: number;
}

export interface KeyValue {
  key: string;
  value: string;
  modRevision: number;
}

/** One message of a watch stream. */
export interface WatchMessage {
  revision: number;
  created: boolean;
  canceled: boolean;
  /** Set when the watch was canceled because its start revision was compacted away. */
  compactRevision: number;
  events: { type: "PUT" | "DELETE"; kv: KeyValue }[];
}

/** etcd could not be reached or answered with an error. */
export class EtcdError extends Error {
  constructor(message: string, readonly status = 0) {
    super(message);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string | undefined): string {
  if (!text) return "";
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return decoder.decode(bytes);
}

export const b64 = (s: string): string => toBase64(encoder.encode(s));

/** The range_end that makes a range cover every key starting with `prefix` (etcd's prefix rule). */
export function prefixEnd(prefix: string): string {
  const bytes = encoder.encode(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) return toBase64(Uint8Array.of(...bytes.subarray(0, i), bytes[i] + 1));
  }
  return toBase64(Uint8Array.of(0)); // every key
}

// deno-lint-ignore no-explicit-any
type Json = any;

function keyValue(kv: Json): KeyValue {
  return { key: fromBase64(kv.key), value: fromBase64(kv.value), modRevision: Number(kv.mod_revision ?? 0) };
}

export class EtcdClient {
  private readonly fetch: typeof fetch;
  private token: string | null = null;
  /** The endpoint that answered last; requests start there. */
  private at = 0;
  private readonly timeoutMs: number;

  constructor(private readonly options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new Error("etcd: no endpoints");
    this.fetch = options.ca ? runtime.fetchTrusting(options.ca) : fetch;
    this.timeoutMs = options.requestTimeoutMs ?? 2_000;
  }

  get endpoints(): readonly string[] {
    return this.options.endpoints;
  }

  /** Every key with `prefix` and the store's revision at the read. */
  async rangePrefix(prefix: string): Promise<{ revision: number; kvs: KeyValue[] }> {
    const r = await this.call("/v3/kv/range", { key: b64(prefix), range_end: prefixEnd(prefix) });
    return { revision: Number(r.header?.revision ?? 0), kvs: (r.kvs ?? []).map(keyValue) };
  }

  async get(key: string): Promise<KeyValue | null> {
    const r = await this.call("/v3/kv/range", { key: b64(key) });
    return r.kvs?.length ? keyValue(r.kvs[0]) : null;
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    const r = await this.call("/v3/kv/put", { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
    return Number(r.header?.revision ?? 0);
  }

  async delete(key: string): Promise<number> {
    const r = await this.call("/v3/kv/deleterange", { key: b64(key) });
    return Number(r.header?.revision ?? 0);
  }

  /** Creates `key` with `value` unless it exists (compare version == 0); returns the value the
   * store holds afterwards, so every caller ends up with the first writer's value. */
  async createIfAbsent(key: string, value: string): Promise<{ created: boolean; value: string }> {
    const k = b64(key);
    const r = await this.call("/v3/kv/txn", {
      compare: [{ key: k, result: "EQUAL", target: "VERSION", version: "0" }],
      success: [{ request_put: { key: k, value: b64(value) } }],
      failure: [{ request_range: { key: k } }],
    });
    if (r.succeeded) return { created: true, value };
    const kvs = r.responses?.[0]?.response_range?.kvs ?? [];
    if (kvs.length === 0) throw new EtcdError(`etcd: txn on ${key} neither created nor found it`);
    return { created: false, value: keyValue(kvs[0]).value };
  }

  /** A lease of `ttlS` seconds; its ID (an int64 as a decimal string). */
  async grantLease(ttlS: number): Promise<string> {
    const r = await this.call("/v3/lease/grant", { TTL: String(ttlS) });
    if (!r.ID) throw new EtcdError(`etcd: lease grant answered no ID${r.error ? `: ${r.error}` : ""}`);
    return String(r.ID);
  }

  /** Renews a lease once; returns its TTL now, 0 when the lease no longer exists. */
  async keepAlive(id: string): Promise<number> {
    const r = await this.call("/v3/lease/keepalive", { ID: id });
    return Number(r.result?.TTL ?? 0);
  }

  async revokeLease(id: string): Promise<void> {
    await this.call("/v3/lease/revoke", { ID: id });
  }

  /** A watch on every key with `prefix` from `startRevision`: yields each message of the stream
   * until it ends (the stream closed: a lost watch) or `signal` aborts. Throws EtcdError when no
   * endpoint takes it. */
  async *watchPrefix(prefix: string, startRevision: number, signal: AbortSignal): AsyncGenerator<WatchMessage> {
    const body = { create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(startRevision) } };
    const res = await this.send("/v3/watch", body, signal);
    if (!res.body) throw new EtcdError("etcd: watch answered without a body");
    let buffered = "";
    const text = new TextDecoder();
    for await (const chunk of res.body) {
      buffered += text.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) yield watchMessage(JSON.parse(line));
      }
    }
  }

  /** Any other unary gateway call (e.g. /v3/auth/enable): JSON in, JSON out, bounded by the
   * request timeout. */
  async call(path: string, body: unknown): Promise<Json> {
    const res = await this.send(path, body, AbortSignal.timeout(this.timeoutMs));
    return await res.json();
  }

  /** Sends to the endpoints in turn from the last good one; authenticates first when configured
   * and once more when the token is refused. */
  private async send(path: string, body: unknown, signal: AbortSignal, retriedAuth = false): Promise<Response> {
    const n = this.options.endpoints.length;
    let lastError = "";
    for (let i = 0; i < n; i++) {
      const k = (this.at + i) % n;
      const base = this.options.endpoints[k].replace(/\/+$/, "");
      try {
        if (this.options.username !== null && this.token === null) this.token = await this.authenticate(base, signal);
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (this.token) headers.authorization = this.token;
        const res = await this.fetch(`${base}${path}`, { method: "POST", headers, body: JSON.stringify(body), signal });
        if (res.ok) { this.at = k; return res; }
        const text = await res.text();
        if (this.options.username !== null && !retriedAuth && /auth token|token/i.test(text)) {
          this.token = null;
          return this.send(path, body, signal, true);
        }
        // An error answer from a reachable etcd (bad request, permission): no other endpoint helps.
        throw new EtcdError(`etcd ${base}${path}: HTTP ${res.status}: ${text.trim().slice(0, 200)}`, res.status);
      } catch (e) {
        if (e instanceof EtcdError) throw e;
        if (signal.aborted && (signal.reason as Error)?.name !== "TimeoutError") throw e;
        lastError = `${base}: ${(e as Error).message}`;
      }
    }
    throw new EtcdError(`etcd unreachable (${lastError})`);
  }

  private async authenticate(base: string, signal: AbortSignal): Promise<string> {
    const res = await this.fetch(`${base}/v3/auth/authenticate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: this.options.username, password: this.options.password ?? "" }),
      signal,
    });
    const r: Json = await res.json().catch(() => ({}));
    if (!res.ok || typeof r.token !== "string") {
      throw new EtcdError(`etcd ${base}: authentication as ${this.options.username} failed: ${r.message ?? r.error ?? `HTTP ${res.status}`}`, res.status);
    }
    return r.token;
  }
}

function watchMessage(m: Json): WatchMessage {
  if (m.error) throw new EtcdError(`etcd watch: ${m.error.message ?? JSON.stringify(m.error)}`);
  const r = m.result ?? {};
  return {
    revision: Number(r.header?.revision ?? 0),
    created: r.created === true,
    canceled: r.canceled === true,
    compactRevision: Number(r.compact_revision ?? 0),
    // A PUT is etcd's enum value 0, which JSON leaves out.
    events: (r.events ?? []).map((e: Json) => ({ type: e.type === "DELETE" ? "DELETE" : "PUT", kv: keyValue(e.kv) })),
  };
}
