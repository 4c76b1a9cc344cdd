// The heads the socket path writes: the request head sent upstream and the response head sent
// to the client. Hop-by-hop fields (RFC 9110 §7.6.1) and those named in Connection go,
// X-Forwarded-*/X-Real-IP/Via are recomputed, then the operator's remove, set, add.
// Fields that pass through are copied as byte ranges of the received head.
import type { HeaderRewrite } from "../config.ts";
import { formatHostPort, type HostPort } from "../../config/address.ts";
import { withoutCookie } from "../affinity.ts";
import { errorBody, STATUS_TEXT } from "../errors.ts";
import type { ErrorKind } from "../stats.ts";
import { HeadBuilder, latin1Bytes, type Scratch } from "../../http1/bytes.ts";
import type { ParsedHead } from "../../http1/head.ts";
import {
  K_CONNECTION, K_CONTENT_LENGTH, K_COOKIE, K_KEEP_ALIVE, K_PROXY_AUTHENTICATE, K_PROXY_AUTHORIZATION,
  K_PROXY_CONNECTION, K_TE, K_TRAILER, K_TRANSFER_ENCODING, K_UPGRADE, K_VIA, K_X_FORWARDED_FOR,
  K_HOST, K_X_FORWARDED_HOST, K_X_FORWARDED_PROTO, K_X_REAL_IP, K_X_REQUEST_ID, KNOWN,
} from "../../http1/head-scan.ts";
import type { RequestHead } from "../../http1/request-head.ts";
import type { ResponseHead } from "../../http1/response-head.ts";

/** What this proxy adds to Via (RFC 9110 §7.6.3). */
const VIA = "1.1 fulcrum";

// Fields never copied, by well-known id: hop-by-hop ones (RFC 9110 §7.6.1).
const HOP = new Uint8Array(KNOWN.length + 1);
for (const id of [K_CONNECTION, K_KEEP_ALIVE, K_PROXY_CONNECTION, K_TE, K_TRAILER, K_TRANSFER_ENCODING, K_UPGRADE, K_PROXY_AUTHENTICATE, K_PROXY_AUTHORIZATION]) HOP[id] = 1;
// ...and on requests also the ones Fulcrum recomputes, and framing it writes itself.
const REQUEST_DROP = HOP.slice();
for (const id of [K_X_FORWARDED_FOR, K_X_FORWARDED_PROTO, K_X_FORWARDED_HOST, K_X_REAL_IP, K_VIA, K_CONTENT_LENGTH]) REQUEST_DROP[id] = 1;

// Constant lines, encoded once.
const HTTP11_CRLF = latin1Bytes(" HTTP/1.1\r\n");
const HTTP11_SP = latin1Bytes("HTTP/1.1 ");
const CRLF = latin1Bytes("\r\n");
const XFP_HTTP = latin1Bytes("X-Forwarded-Proto: http\r\n");
const XFP_HTTPS = latin1Bytes("X-Forwarded-Proto: https\r\n");
const VIA_LINE = latin1Bytes(`Via: ${VIA}\r\n`);

const SKIP_NONE: number[] = [], SKIP_ID = [K_X_REQUEST_ID], SKIP_COOKIE = [K_COOKIE];
const SKIP_COOKIE_AND_ID = [K_COOKIE, K_X_REQUEST_ID];

const hasRules = (r: HeaderRewrite) => r.remove.length > 0 || r.set.length > 0 || r.add.length > 0;

/** Copies the fields of `head` that `drop` and the rule let through. Lines are contiguous in
 * the received head, so each run of kept lines is copied as one byte range. */
function copyFields(b: HeadBuilder, head: ParsedHead, drop: Uint8Array, named: string[], rule: HeaderRewrite, skipIds: number[]): void {
  const ruled = hasRules(rule) ? new Set([...rule.remove, ...rule.set.map(([n]) => n)]) : null;
  const byName = named.length > 0 || ruled !== null;
  let run = -1; // start of the current run of kept lines
  for (let k = 0; k < head.count; k++) {
    const id = head.id(k);
    let kept = drop[id] !== 1 && !(skipIds.length > 0 && skipIds.includes(id));
    if (kept && byName) {
      const lower = head.lowerName(k);
      kept = !named.includes(lower) && !ruled?.has(lower);
    }
    if (kept) { if (run < 0) run = head.nameStart(k); }
    else if (run >= 0) { b.range(head.buf, run, head.nameStart(k)); run = -1; }
  }
  // The last run ends where the blank line's CRLF starts.
  if (run >= 0) b.range(head.buf, run, head.end - 2);
  for (const [n, v] of rule.set) b.field(n, v);
  for (const [n, v] of rule.add) b.field(n, v);
}

/** What the upstream head takes from the client connection (ClientConn provides it). */
/** "X-Forwarded-Host: <host>\r\n", encoded again only when a connection sees another host. */
export class ForwardedHostLine {
  private line: Uint8Array | null = null;
  private host = "";

  for(host: string): Uint8Array {
    if (this.line === null || this.host !== host) {
      this.line = latin1Bytes(`X-Forwarded-Host: ${host}\r\n`);
      this.host = host;
    }
    return this.line;
  }
}

export interface UpstreamHeadContext {
  address: string;
  /** "X-Real-IP: <client>\r\n", encoded once per connection. */
  realIpLine: Uint8Array;
  /** "X-Forwarded-For: <client>\r\n" for requests that bring none, encoded once per connection. */
  xffLine: Uint8Array;
  proto: "http" | "https";
  /** "X-Forwarded-Host: <host>\r\n", cached by the connection for the host it last saw. */
  forwardedHostLine(host: string): Uint8Array;
}

/** Builds the upstream request head into `out`; returns its length. `server`: where it goes,
 * for a request that brings no Host (HTTP/1.0). */
export function upstreamRequestHead(
  req: RequestHead, ctx: UpstreamHeadContext, requestId: string | null, dropCookie: string | null, rule: HeaderRewrite, out: Scratch,
  server: HostPort | null = null,
): number {
  const b = HeadBuilder.start();
  if (req.absoluteForm) b.text(`${req.method} ${req.target}`);
  else b.range(req.buf, 0, req.targetEnd);
  b.bytes(HTTP11_CRLF);
  const skip = dropCookie ? (requestId ? SKIP_COOKIE_AND_ID : SKIP_COOKIE) : requestId ? SKIP_ID : SKIP_NONE;
  copyFields(b, req, REQUEST_DROP, req.connectionNamed(), rule, skip);
  const xff = req.joined(K_X_FORWARDED_FOR), via = req.joined(K_VIA);
  if (xff) b.field("X-Forwarded-For", `${xff}, ${ctx.address}`);
  else b.bytes(ctx.xffLine);
  b.bytes(ctx.proto === "https" ? XFP_HTTPS : XFP_HTTP);
  if (req.hostHeader) b.bytes(ctx.forwardedHostLine(req.hostHeader));
  b.bytes(ctx.realIpLine);
  if (via) b.field("Via", `${via}, ${VIA}`);
  else b.bytes(VIA_LINE);
  if (dropCookie) {
    const rest = withoutCookie(req.joined(K_COOKIE), dropCookie);
    if (rest) b.field("Cookie", rest);
  }
  if (requestId) b.field("X-Request-ID", requestId);
  // Framing from what was parsed: the body is forwarded byte for byte as received.
  if (req.chunked) b.text("Transfer-Encoding: chunked\r\n");
  else if (req.contentLength >= 0) b.field("Content-Length", String(req.contentLength));
  if (req.upgrade) b.field("Connection", "upgrade").field("Upgrade", req.upgrade);
  // The upstream speaks HTTP/1.1, which needs a Host. Without one from the client: the target's
  // authority (absolute-form), else (HTTP/1.0) the server's own address as host:port, which is
  // what nginx sends by default ($proxy_host of proxy_pass http://host:port).
  if (req.countOf(K_HOST) === 0) {
    if (req.absoluteForm) b.field("Host", req.hostHeader);
    else if (server) b.field("Host", formatHostPort(server));
  }
  return b.buildInto(out);
}

/** Builds the response head for the client into `out`, followed by tail[tailStart, tailEnd)
 * (first body bytes) so both leave in one write; returns the length. `extra`: fields added after
 * the operator's rules (Set-Cookie for stickiness, X-Request-ID); `close`: tell the client the
 * connection closes after this response. */
export function clientResponseHead(
  res: ResponseHead, rule: HeaderRewrite, extra: [string, string][], close: boolean, out: Scratch,
  tail?: Uint8Array, tailStart = 0, tailEnd = 0,
): number {
  const b = HeadBuilder.start();
  b.bytes(HTTP11_SP).range(res.buf, 9, res.statusLineEnd).bytes(CRLF);
  const requestId = extra.length > 0 && extra.some(([n]) => n === "X-Request-ID");
  copyFields(b, res, HOP, res.connectionNamed(), rule, requestId ? SKIP_ID : SKIP_NONE);
  for (const [n, v] of extra) b.field(n, v);
  if (res.body === "chunked") b.text("Transfer-Encoding: chunked\r\n");
  if (res.status === 101) {
    b.field("Connection", "upgrade");
    const up = res.joined(K_UPGRADE);
    if (up) b.field("Upgrade", up);
  } else if (close) b.text("Connection: close\r\n");
  return b.buildInto(out, tail, tailStart, tailEnd);
}

/** A complete error response, worded by errors.ts. */
export function errorResponseBytes(status: number, kind: ErrorKind, detail: string, close: boolean, extra: [string, string][] = []): Uint8Array {
  const body = errorBody(status, detail);
  let s = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ""}\r\ncontent-type: text/plain; charset=utf-8\r\nx-fulcrum-error: ${kind}\r\n`;
  for (const [n, v] of extra) s += `${n}: ${v}\r\n`;
  s += `content-length: ${body.length}\r\n${close ? "connection: close\r\n" : ""}\r\n${body}`;
  return latin1Bytes(s);
}
