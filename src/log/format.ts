// Access log lines, one per HTTP request or L4 session: nginx's `combined` followed by the
// balancer's fields, or one JSON object. A line is written as bytes straight into a reused buffer:
// header values are copied from the byte ranges the head-scan index already holds, numbers digit
// by digit, the time stamp once per second; no string is made per field or per line. Lines are
// ASCII (everything else escaped), one per line. Pure: the caller passes the clock.
import type { AccessLogFormat } from "./config.ts";
import type { HostPort } from "../config/address.ts";
import { FIELD_WORDS } from "../http1/head-scan.ts";
import { latin1, latin1Bytes } from "../http1/bytes.ts";

/** A request head's fields as byte ranges (src/http1's ParsedHead is one): `index` is the
 * head-scan index over `buf` (src/http1/head-scan.ts). */
export interface HeadFields {
  readonly buf: Uint8Array;
  readonly index: Int32Array;
}

/** What the edge hands over when a request ends. Times are ms; -1: did not happen. */
export interface HttpRecord {
  /** The client: the socket's peer, or the PROXY header's source (accept_proxy). */
  clientAddress: string;
  /** Null when the request head could not be read (the request logs as "-"). */
  method: string | null;
  target: string;
  /** "HTTP/1.1", "HTTP/1.0" or "HTTP/2.0". */
  protocol: string;
  /** The request's fields (Referer, User-Agent and Authorization are read from them). */
  headers: HeadFields | null;
  status: number;
  /** Response body bytes sent to the client (nginx $body_bytes_sent). */
  bodyBytes: number;
  /** The last server tried, or null when none was. */
  upstream: HostPort | null;
  /** That server's response status; 0: none. */
  upstreamStatus: number;
  connectMs: number;
  /** From the request's arrival to the server's response head. */
  headerMs: number;
  /** When the request arrived (Date.now()). */
  startedAt: number;
  retries: number;
  route: string | null;
  pool: string | null;
}

/** What the L4 proxy hands over when a session ends. */
export interface L4Record {
  clientAddress: string;
  protocol: "TCP" | "UDP";
  /** nginx stream's $status: 200 ok, 400 client error, 502 upstream failed, 503 no server. */
  status: number;
  /** Bytes sent to the client, and received from it. */
  bytesSent: number;
  bytesReceived: number;
  upstream: HostPort | null;
  connectMs: number;
  startedAt: number;
  retries: number;
  /** The SNI route's server name, if the listener routes by SNI. */
  route: string | null;
  pool: string | null;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad2 = (n: number) => (n < 10 ? "0" : "") + n;

/** nginx's $time_local ("02/Dec/2026:00:19:23 +0000"), made once per second. */
export function localTime(second: number): string {
  const d = new Date(second * 1000);
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? "-" : "+"}${pad2(Math.floor(Math.abs(off) / 60))}${pad2(Math.abs(off) % 60)}`;
  return `${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${zone}`;
}

const HEX = "0123456789abcdef";
const NONE: Uint8Array = new Uint8Array(0);
const DASH = 0x2d, QUOTE = 0x22, SPACE = 0x20, BACKSLASH = 0x5c;
/** How a field is escaped (a bit of SAFE): combined (nginx: \xXX), a name column of combined (a
 * space would split it), or inside a JSON string (\uXXXX, \" and \\). */
type Esc = 1 | 2 | 4;
const COMBINED: Esc = 1, NAME: Esc = 2, JSON_STRING: Esc = 4;
/** Per byte, the escapings that keep it as it is: printable ASCII but `"` and `\`, and for names
 * no space either. */
const SAFE = new Uint8Array(256);
for (let c = 0x20; c < 0x7f; c++) if (c !== QUOTE && c !== BACKSLASH) SAFE[c] = COMBINED | JSON_STRING | (c === SPACE ? 0 : NAME);

/** One line being written, in bytes. */
class LineBytes {
  buf = new Uint8Array(512);
  pos = 0;

  /** Room for n more bytes. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
  }

  byte(c: number): void {
    this.room(1);
    this.buf[this.pos++] = c;
  }

  /** ASCII known to need no escaping (constants, the time stamp). */
  ascii(s: string): void {
    const n = s.length;
    this.room(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A non-negative integer. */
  int(n: number): void {
    this.room(20);
    const b = this.buf;
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    let x = n;
    while (x >= 10) {
      const q = Math.floor(x / 10);
      b[--p] = 0x30 + x - q * 10;
      x = q;
    }
    b[--p] = 0x30 + x;
  }

  /** Seconds with ms resolution ("0.003"), as nginx's $request_time; `none` for -1. */
  seconds(ms: number, none: string): void {
    if (ms < 0) { this.ascii(none); return; }
    ms = Math.round(ms);
    const whole = Math.floor(ms / 1000), frac = ms - whole * 1000;
    this.int(whole);
    this.room(4);
    const b = this.buf, p = this.pos;
    b[p] = 0x2e;
    b[p + 1] = 0x30 + Math.floor(frac / 100);
    b[p + 2] = 0x30 + Math.floor(frac / 10) % 10;
    b[p + 3] = 0x30 + frac % 10;
    this.pos = p + 4;
  }

  /** A string, escaped. */
  text(s: string, esc: Esc): void {
    const n = s.length;
    this.room(n * 6);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 256 && (SAFE[c] & esc) !== 0) b[p++] = c;
      else p = escape(b, p, c, esc);
    }
    this.pos = p;
  }

  /** Bytes buf[from, to), escaped (latin1: each byte a character). */
  range(src: Uint8Array, from: number, to: number, esc: Esc): void {
    this.room((to - from) * 6);
    const b = this.buf;
    let p = this.pos;
    for (let i = from; i < to; i++) {
      const c = src[i];
      if ((SAFE[c] & esc) !== 0) b[p++] = c;
      else p = escape(b, p, c, esc);
    }
    this.pos = p;
  }

  /** A combined column: "-" for nothing. */
  column(s: string | null, esc: Esc = COMBINED): void {
    if (s === null || s === "") this.byte(DASH);
    else this.text(s, esc);
  }

  /** A JSON string, or null. */
  json(s: string | null): void {
    if (s === null) { this.ascii("null"); return; }
    this.byte(QUOTE);
    this.text(s, JSON_STRING);
    this.byte(QUOTE);
  }

  /** A copy of what was written since `start` (to write again with copy()). */
  since(start: number): Uint8Array {
    return this.buf.slice(start, this.pos);
  }

  /** Bytes written before, as they are. */
  copy(src: Uint8Array): void {
    const n = src.length;
    this.room(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = src[i];
    this.pos = p;
  }

  /** "host:port" ("[v6]:port"). */
  hostPort(hp: HostPort): void {
    const v6 = hp.host.indexOf(":") >= 0;
    if (v6) this.byte(0x5b);
    this.text(hp.host, NAME);
    if (v6) this.byte(0x5d);
    this.byte(0x3a);
    this.int(hp.port);
  }
}

/** Writes the escape of c at b[p]; returns the position after it. */
function escape(b: Uint8Array, p: number, c: number, esc: Esc): number {
  b[p++] = BACKSLASH;
  if (esc === JSON_STRING && (c === QUOTE || c === BACKSLASH)) { b[p++] = c; return p; }
  if (esc !== JSON_STRING && c <= 0xff) {
    b[p++] = 0x78; // \xXX, as nginx
    b[p++] = upperHex(c >> 4);
    b[p++] = upperHex(c & 15);
    return p;
  }
  b[p++] = 0x75; // \uXXXX
  b[p++] = HEX.charCodeAt((c >> 12) & 15);
  b[p++] = HEX.charCodeAt((c >> 8) & 15);
  b[p++] = HEX.charCodeAt((c >> 4) & 15);
  b[p++] = HEX.charCodeAt(c & 15);
  return p;
}

function upperHex(d: number): number {
  return d < 10 ? 0x30 + d : 0x41 + d - 10;
}

/** Whether buf[at, at + name.length) is `name` (lowercase ASCII) in any case. */
function nameIs(buf: Uint8Array, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if ((buf[at + i] | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** The user of a Basic Authorization value (nginx $remote_user), else null. */
export function basicUser(authorization: string | null): string | null {
  if (authorization === null || !/^basic /i.test(authorization)) return null;
  try {
    const decoded = atob(authorization.slice(6).trim());
    const colon = decoded.indexOf(":");
    return colon > 0 ? decoded.slice(0, colon) : null;
  } catch {
    return null;
  }
}

/** Makes lines for one listener in one format. */
export class LineFormatter {
  /** The line last written: line.buf[0, line.pos). */
  readonly line = new LineBytes();
  private second = -1;
  private stamp: Uint8Array = NONE;
  private readonly listener: string;
  // What the last line wrote for values that repeat from line to line, and their bytes: written
  // again as they are instead of escaped again. The upstream (requests go to few servers), the
  // client (a connection's requests), the route and pool (with the listener, the line's end).
  private upstream: HostPort | null = null;
  private upstreamBytes: Uint8Array = NONE;
  private client: string | null = null;
  private clientBytes: Uint8Array = NONE;
  private tailRoute: string | null | undefined = undefined;
  private tailPool: string | null = null;
  private tailBytes: Uint8Array = NONE;

  constructor(readonly format: AccessLogFormat, listener: string) {
    this.listener = listener;
  }

  /** The time stamp for `now`: nginx's local time (combined) or ISO 8601 without the ms (JSON). */
  private stampAt(now: number): Uint8Array {
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      this.stamp = latin1Bytes(this.format === "json" ? new Date(second * 1000).toISOString().slice(0, 20) : localTime(second));
    }
    return this.stamp;
  }

  /** The client address column (or JSON value). */
  private clientField(address: string, json: boolean): void {
    const o = this.line;
    if (address === this.client) { o.copy(this.clientBytes); return; }
    const start = o.pos;
    if (json) o.json(address); else o.column(address);
    this.client = address;
    this.clientBytes = o.since(start);
  }

  /** The line's end: listener, route and pool columns and the newline, or the JSON fields. */
  private tail(route: string | null, pool: string | null, json: boolean): void {
    const o = this.line;
    if (route === this.tailRoute && pool === this.tailPool) { o.copy(this.tailBytes); return; }
    const start = o.pos;
    if (json) {
      o.ascii(',"listener":'); o.json(this.listener);
      o.ascii(',"route":'); o.json(route);
      o.ascii(',"pool":'); o.json(pool);
      o.ascii("}\n");
    } else {
      o.byte(SPACE); o.column(this.listener, NAME);
      o.byte(SPACE); o.column(route, NAME);
      o.byte(SPACE); o.column(pool, NAME);
      o.byte(0x0a);
    }
    this.tailRoute = route;
    this.tailPool = pool;
    this.tailBytes = o.since(start);
  }

  /** Writes the line for a request that ended at `now` (newline included) into `line`. */
  writeHttp(r: HttpRecord, now: number): void {
    const o = this.line;
    o.pos = 0;
    // Referer, User-Agent, Authorization: found by name in the index, copied from their bytes.
    let referer = -1, agent = -1, auth = -1;
    const h = r.headers;
    if (h !== null) {
      const buf = h.buf, index = h.index;
      for (let k = 0, n = index[1]; k < n; k++) {
        const at = 2 + k * FIELD_WORDS, start = index[at], len = index[at + 1] - start;
        if (len === 7 && referer < 0 && nameIs(buf, start, "referer")) referer = at;
        else if (len === 10 && agent < 0 && nameIs(buf, start, "user-agent")) agent = at;
        else if (len === 13 && auth < 0 && nameIs(buf, start, "authorization")) auth = at;
      }
    }
    const user = auth < 0 ? null : basicUser(latin1(h!.buf, h!.index[auth + 2], h!.index[auth + 3]));
    const requestMs = now - r.startedAt;
    if (this.format === "json") {
      this.jsonStart(now, r.clientAddress);
      o.ascii(',"remote_user":'); o.json(user);
      o.ascii(',"request":');
      if (r.method === null) o.ascii("null");
      else { o.byte(QUOTE); o.text(r.method, JSON_STRING); o.byte(SPACE); o.text(r.target, JSON_STRING); o.byte(SPACE); o.ascii(r.protocol); o.byte(QUOTE); }
      o.ascii(',"method":'); o.json(r.method);
      o.ascii(',"uri":'); o.json(r.method === null ? null : r.target);
      o.ascii(',"protocol":"'); o.ascii(r.protocol);
      o.ascii('","status":'); o.int(r.status);
      o.ascii(',"body_bytes_sent":'); o.int(r.bodyBytes);
      o.ascii(',"referer":'); this.jsonField(h, referer);
      o.ascii(',"user_agent":'); this.jsonField(h, agent);
      o.ascii(',"upstream_addr":');
      if (r.upstream === null) o.ascii("null"); else { o.byte(QUOTE); this.upstreamField(r.upstream); o.byte(QUOTE); }
      o.ascii(',"upstream_status":'); if (r.upstreamStatus > 0) o.int(r.upstreamStatus); else o.ascii("null");
      o.ascii(',"upstream_connect_time":'); o.seconds(r.connectMs, "null");
      o.ascii(',"upstream_header_time":'); o.seconds(r.headerMs, "null");
      o.ascii(',"request_time":'); o.seconds(requestMs, "null");
      o.ascii(',"retries":'); o.int(r.retries);
      this.tail(r.route, r.pool, true);
      return;
    }
    this.clientField(r.clientAddress, false);
    o.ascii(" - "); o.column(user);
    o.ascii(" ["); o.copy(this.stampAt(now));
    o.ascii('] "');
    if (r.method === null) o.byte(DASH);
    else { o.text(r.method, COMBINED); o.byte(SPACE); o.text(r.target, COMBINED); o.byte(SPACE); o.ascii(r.protocol); }
    o.ascii('" '); o.int(r.status);
    o.byte(SPACE); o.int(r.bodyBytes);
    o.ascii(' "'); this.combinedField(h, referer);
    o.ascii('" "'); this.combinedField(h, agent);
    o.ascii('" ');
    if (r.upstream === null) o.byte(DASH); else this.upstreamField(r.upstream);
    o.byte(SPACE); if (r.upstreamStatus > 0) o.int(r.upstreamStatus); else o.byte(DASH);
    o.byte(SPACE); o.seconds(r.connectMs, "-");
    o.byte(SPACE); o.seconds(r.headerMs, "-");
    o.byte(SPACE); o.seconds(requestMs, "-");
    o.byte(SPACE); o.int(r.retries);
    this.tail(r.route, r.pool, false);
  }

  /** A json line's opening: its time (ISO 8601 with milliseconds) and the client's address. */
  private jsonStart(now: number, client: string): void {
    const o = this.line;
    o.ascii('{"time":"');
    o.copy(this.stampAt(now));
    const ms = now % 1000;
    o.byte(0x30 + Math.floor(ms / 100)); o.byte(0x30 + Math.floor(ms / 10) % 10); o.byte(0x30 + ms % 10);
    o.ascii('Z","remote_addr":'); this.clientField(client, true);
  }

  /** Writes the line for an L4 session that ended at `now`: the same columns as an HTTP line (the
   * request is the protocol; no referer, agent, upstream status or header time). */
  writeL4(r: L4Record, now: number): void {
    const o = this.line;
    o.pos = 0;
    const sessionMs = now - r.startedAt;
    if (this.format === "json") {
      this.jsonStart(now, r.clientAddress);
      o.ascii(',"protocol":"'); o.ascii(r.protocol);
      o.ascii('","status":'); o.int(r.status);
      o.ascii(',"bytes_sent":'); o.int(r.bytesSent);
      o.ascii(',"bytes_received":'); o.int(r.bytesReceived);
      o.ascii(',"upstream_addr":');
      if (r.upstream === null) o.ascii("null"); else { o.byte(QUOTE); this.upstreamField(r.upstream); o.byte(QUOTE); }
      o.ascii(',"upstream_connect_time":'); o.seconds(r.connectMs, "null");
      o.ascii(',"session_time":'); o.seconds(sessionMs, "null");
      o.ascii(',"retries":'); o.int(r.retries);
      this.tail(r.route, r.pool, true);
      return;
    }
    this.clientField(r.clientAddress, false);
    o.ascii(" - - ["); o.copy(this.stampAt(now));
    o.ascii('] "'); o.ascii(r.protocol);
    o.ascii('" '); o.int(r.status);
    o.byte(SPACE); o.int(r.bytesSent);
    o.ascii(' "-" "-" ');
    if (r.upstream === null) o.byte(DASH); else this.upstreamField(r.upstream);
    o.ascii(" - "); o.seconds(r.connectMs, "-");
    o.ascii(" - "); o.seconds(sessionMs, "-");
    o.byte(SPACE); o.int(r.retries);
    this.tail(r.route, r.pool, false);
  }

  /** The server's "host:port", made once while the same server comes again. */
  private upstreamField(hp: HostPort): void {
    const o = this.line;
    if (hp !== this.upstream) {
      const start = o.pos;
      o.hostPort(hp);
      this.upstream = hp;
      this.upstreamBytes = o.buf.slice(start, o.pos);
      return;
    }
    o.copy(this.upstreamBytes);
  }

  /** A header's value inside combined's quotes ("-" when absent or empty). */
  private combinedField(h: HeadFields | null, at: number): void {
    const from = at < 0 ? 0 : h!.index[at + 2], to = at < 0 ? 0 : h!.index[at + 3];
    if (to <= from) this.line.byte(DASH);
    else this.line.range(h!.buf, from, to, COMBINED);
  }

  private jsonField(h: HeadFields | null, at: number): void {
    if (at < 0) { this.line.ascii("null"); return; }
    this.line.byte(QUOTE);
    this.line.range(h!.buf, h!.index[at + 2], h!.index[at + 3], JSON_STRING);
    this.line.byte(QUOTE);
  }

  /** The line for a request, as a string (tests, tools). */
  http(r: HttpRecord, now: number): string {
    this.writeHttp(r, now);
    return latin1(this.line.buf, 0, this.line.pos);
  }

  l4(r: L4Record, now: number): string {
    this.writeL4(r, now);
    return latin1(this.line.buf, 0, this.line.pos);
  }
}
