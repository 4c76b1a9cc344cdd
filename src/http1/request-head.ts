// The request head: request line, header fields and what they mean for forwarding.
import { latin1 } from "./bytes.ts";
import { HeadError, ParsedHead, scanFields } from "./head.ts";
import { K_HOST, K_UPGRADE, TCHAR } from "./head-scan.ts";

export interface RequestLimits {
  maxHeaderCount: number;
}

const ABSOLUTE = /^https?:\/\/([^/?#]+)([^#]*)$/i;
const HOST_VALUE = /^[A-Za-z0-9._~!$&'()*+,;=:%[\]-]*$/;
const HTTP_1_ = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e]; // "HTTP/1."

export class RequestHead extends ParsedHead {
  method = "";
  /** Origin-form target (path and query); an absolute-form target is reduced to it. */
  target = "";
  path = "";
  minor: 0 | 1 = 1;
  /** Where method SP target ends in buf (for copying the request line as received). */
  targetEnd = 0;
  /** The target was absolute-form: the request line is rewritten, not copied. */
  absoluteForm = false;
  /** Host without port, lowercased. */
  host = "";
  /** The Host value as sent (with port), for X-Forwarded-Host. */
  hostHeader = "";
  /** Routing reads headers from the head itself (RequestFacts). */
  get headers(): this { return this; }
  keepAlive = true;
  /** The protocol asked for in Upgrade with Connection: upgrade, else null. */
  upgrade: string | null = null;
}

/** Parses a head; `buf` holds exactly the head, through the final CRLF CRLF. `index` (from
 * indexFor(maxHeaderCount)) is the caller's to reuse once this head is done with. */
export function parseRequestHead(buf: Uint8Array, index: Int32Array): RequestHead {
  // Request line: method SP target SP HTTP/1.x CRLF, each part strictly formed.
  let i = 0;
  while (TCHAR[buf[i]] === 1) i++;
  const methodEnd = i;
  if (methodEnd === 0 || buf[i] !== 0x20) throw malformed(buf);
  const targetStart = ++i;
  while (buf[i] >= 0x21 && buf[i] <= 0x7e) i++;
  const targetEnd = i;
  if (targetEnd === targetStart || buf[i] !== 0x20) throw malformed(buf);
  i++;
  for (const b of HTTP_1_) if (buf[i++] !== b) throw malformed(buf);
  const minorByte = buf[i++];
  if ((minorByte !== 0x30 && minorByte !== 0x31) || buf[i] !== 0x0d || buf[i + 1] !== 0x0a) throw malformed(buf);

  const head = new RequestHead(buf, scanFields(buf, i + 2, buf.length, index, 431), buf.length);
  head.method = latin1(buf, 0, methodEnd);
  head.minor = minorByte === 0x31 ? 1 : 0;
  head.targetEnd = targetEnd;
  head.framing();
  if (head.chunked && head.minor === 0) throw new HeadError(400, "Transfer-Encoding in an HTTP/1.0 request");

  let target = latin1(buf, targetStart, targetEnd), authority: string | null = null;
  if (target.charCodeAt(0) !== 0x2f) {
    const abs = ABSOLUTE.exec(target);
    if (abs) {
      authority = abs[1];
      target = abs[2] || "/";
      if (target[0] === "?") target = "/" + target;
      head.absoluteForm = true;
    } else if (!(target === "*" && head.method === "OPTIONS")) throw new HeadError(400, "request target is not a path");
  }
  if (target.includes("#")) throw new HeadError(400, "fragment in the request target");
  head.target = target;
  const q = target.indexOf("?");
  head.path = q < 0 ? target : target.slice(0, q);

  const hosts = head.countOf(K_HOST);
  if (hosts > 1) throw new HeadError(400, "more than one Host header");
  if (hosts === 0 && head.minor === 1 && authority === null) throw new HeadError(400, "HTTP/1.1 request without Host");
  const hostHeader = authority ?? head.joined(K_HOST) ?? "";
  if (!HOST_VALUE.test(hostHeader)) throw new HeadError(400, "invalid Host header");
  head.hostHeader = hostHeader;
  head.host = hostOf(hostHeader);

  const conn = head.connectionTokens();
  head.keepAlive = head.minor === 1 ? !conn.includes("close") : conn.includes("keep-alive");
  if (conn.includes("upgrade")) {
    const up = head.joined(K_UPGRADE);
    head.upgrade = up ? up.trim().toLowerCase() : null;
  }
  return head;
}

function malformed(buf: Uint8Array): HeadError {
  const start = latin1(buf, 0, Math.min(buf.length, 14));
  return new HeadError(400, start.startsWith("PRI * HTTP/2") ? "HTTP/2 preface on an HTTP/1.1 port" : "malformed request line");
}

/** Host header without port, lowercased; IPv6 literals keep their brackets. */
export function hostOf(hostHeader: string | null): string {
  if (!hostHeader) return "";
  const h = hostHeader.toLowerCase();
  if (h.startsWith("[")) { const end = h.indexOf("]"); return end > 0 ? h.slice(0, end + 1) : h; }
  const colon = h.indexOf(":");
  return colon >= 0 ? h.slice(0, colon) : h;
}
