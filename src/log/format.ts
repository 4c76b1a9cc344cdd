// Access log lines, one per HTTP request or L4 session: nginx's `combined` followed by the
// balancer's fields, or one JSON object. Lines are pure ASCII (everything else is escaped), so
// the sink can count bytes as characters. Pure: the caller passes the clock.
import type { AccessLogFormat } from "./config.ts";
import { formatHostPort, type HostPort } from "../config/address.ts";

/** What the edge hands over when a request ends. Times are ms; -1: did not happen. */
export interface HttpRecord {
  /** The client: the socket's peer, or the PROXY header's source (accept_proxy). */
  clientAddress: string;
  /** Null when the request head could not be read (the request logs as "-"). */
  method: string | null;
  target: string;
  /** "HTTP/1.1", "HTTP/1.0" or "HTTP/2.0". */
  protocol: string;
  /** Request headers (Referer, User-Agent, Authorization are read only when a line is made). */
  headers: { get(name: string): string | null } | null;
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
class LocalTime {
  private second = -1;
  private text = "";

  at(now: number): string {
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      const d = new Date(second * 1000);
      const off = -d.getTimezoneOffset();
      const zone = `${off < 0 ? "-" : "+"}${pad2(Math.floor(Math.abs(off) / 60))}${pad2(Math.abs(off) % 60)}`;
      this.text = `${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${zone}`;
    }
    return this.text;
  }
}

/** ISO 8601 with ms, as JSON lines carry it. */
class IsoTime {
  private second = -1;
  private prefix = "";

  at(now: number): string {
    const second = Math.floor(now / 1000);
    if (second !== this.second) { this.second = second; this.prefix = new Date(second * 1000).toISOString().slice(0, 20); }
    const ms = now - second * 1000;
    return `${this.prefix}${ms < 10 ? "00" : ms < 100 ? "0" : ""}${ms}Z`;
  }
}

/** Seconds with ms resolution ("0.003"), as nginx's $request_time; "-" for -1. */
export function seconds(ms: number): string {
  if (ms < 0) return "-";
  const whole = Math.floor(ms / 1000), frac = Math.round(ms - whole * 1000);
  return `${whole}.${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}`;
}

// What a field keeps as it is, in both formats: printable ASCII but `"` and `\`. The rest is
// escaped (combined: \xXX as nginx does; JSON: \uXXXX), so lines stay ASCII.
const UNSAFE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

function hex(c: number, width: number): string {
  return c.toString(16).padStart(width, "0");
}

/** A combined field: "-" for nothing, else escaped as nginx does (\xXX; \uXXXX past latin1). */
export function combinedField(s: string | null): string {
  if (s === null || s === "") return "-";
  if (!UNSAFE.test(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) out += s[i];
    else out += c <= 0xff ? `\\x${hex(c, 2).toUpperCase()}` : `\\u${hex(c, 4)}`;
  }
  return out;
}

/** A name field of combined (listener, route, pool), which a space would split. */
function nameField(s: string | null): string {
  return combinedField(s).replaceAll(" ", "\\x20");
}

/** A JSON string (or null), ASCII only. */
export function jsonString(s: string | null): string {
  if (s === null) return "null";
  if (!UNSAFE.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) out += s[i];
    else if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else out += `\\u${hex(c, 4)}`;
  }
  return out + '"';
}

const jsonSeconds = (ms: number) => (ms < 0 ? "null" : seconds(ms));

/** The user of a Basic Authorization header (nginx $remote_user), else null. */
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
  private readonly local = new LocalTime();
  private readonly iso = new IsoTime();
  private readonly listenerField: string;
  private readonly listenerJson: string;

  constructor(readonly format: AccessLogFormat, listener: string) {
    this.listenerField = nameField(listener);
    this.listenerJson = jsonString(listener);
  }

  /** The line for a request that ended at `now`, newline included. */
  http(r: HttpRecord, now: number): string {
    const h = r.headers;
    const referer = h ? h.get("referer") : null;
    const agent = h ? h.get("user-agent") : null;
    const auth = h ? h.get("authorization") : null;
    const user = auth === null ? null : basicUser(auth);
    const requestMs = now - r.startedAt;
    const upstream = r.upstream === null ? null : formatHostPort(r.upstream);
    if (this.format === "json") {
      return `{"time":"${this.iso.at(now)}","remote_addr":${jsonString(r.clientAddress)},"remote_user":${jsonString(user)},` +
        `"request":${r.method === null ? "null" : jsonString(`${r.method} ${r.target} ${r.protocol}`)},"method":${jsonString(r.method)},` +
        `"uri":${r.method === null ? "null" : jsonString(r.target)},` +
        `"protocol":"${r.protocol}","status":${r.status},"body_bytes_sent":${r.bodyBytes},"referer":${jsonString(referer)},` +
        `"user_agent":${jsonString(agent)},"upstream_addr":${jsonString(upstream)},"upstream_status":${r.upstreamStatus || "null"},` +
        `"upstream_connect_time":${jsonSeconds(r.connectMs)},"upstream_header_time":${jsonSeconds(r.headerMs)},` +
        `"request_time":${seconds(requestMs)},"retries":${r.retries},"listener":${this.listenerJson},` +
        `"route":${jsonString(r.route)},"pool":${jsonString(r.pool)}}\n`;
    }
    return `${combinedField(r.clientAddress)} - ${combinedField(user)} [${this.local.at(now)}] ` +
      `"${r.method === null ? "-" : `${combinedField(r.method)} ${combinedField(r.target)} ${r.protocol}`}" ${r.status} ${r.bodyBytes} ` +
      `"${combinedField(referer)}" "${combinedField(agent)}" ${combinedField(upstream)} ${r.upstreamStatus || "-"} ` +
      `${seconds(r.connectMs)} ${seconds(r.headerMs)} ${seconds(requestMs)} ${r.retries} ${this.listenerField} ` +
      `${nameField(r.route)} ${nameField(r.pool)}\n`;
  }

  /** The line for an L4 session that ended at `now`: the same columns (the request is the
   * protocol; no referer, agent, upstream status or header time). */
  l4(r: L4Record, now: number): string {
    const sessionMs = now - r.startedAt;
    const upstream = r.upstream === null ? null : formatHostPort(r.upstream);
    if (this.format === "json") {
      return `{"time":"${this.iso.at(now)}","remote_addr":${jsonString(r.clientAddress)},"protocol":"${r.protocol}",` +
        `"status":${r.status},"bytes_sent":${r.bytesSent},"bytes_received":${r.bytesReceived},` +
        `"upstream_addr":${jsonString(upstream)},"upstream_connect_time":${jsonSeconds(r.connectMs)},` +
        `"session_time":${seconds(sessionMs)},"retries":${r.retries},"listener":${this.listenerJson},` +
        `"route":${jsonString(r.route)},"pool":${jsonString(r.pool)}}\n`;
    }
    return `${combinedField(r.clientAddress)} - - [${this.local.at(now)}] "${r.protocol}" ${r.status} ${r.bytesSent} "-" "-" ` +
      `${combinedField(upstream)} - ${seconds(r.connectMs)} - ${seconds(sessionMs)} ${r.retries} ${this.listenerField} ` +
      `${nameField(r.route)} ${nameField(r.pool)}\n`;
  }
}
