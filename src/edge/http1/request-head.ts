// The request head: request line, header fields and what they mean for forwarding.
import { fieldValue, type HeaderField, HeadError, parseHeaderLines, readFraming, splitHeadLines, tokens } from "./head.ts";

export interface RequestHead {
  method: string;
  /** Origin-form target (path and query); an absolute-form target is reduced to it. */
  target: string;
  path: string;
  minor: 0 | 1;
  fields: HeaderField[];
  /** Host without port, lowercased. */
  host: string;
  /** The Host value as sent (with port), for X-Forwarded-Host. */
  hostHeader: string;
  contentLength: number;
  chunked: boolean;
  keepAlive: boolean;
  /** The protocol asked for in Upgrade with Connection: upgrade, else null. */
  upgrade: string | null;
}

export interface RequestLimits {
  maxHeaderCount: number;
}

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP\/1\.([01])$/;
const ABSOLUTE = /^https?:\/\/([^/?#]+)([^#]*)$/i;

export function parseRequestHead(head: string, limits: RequestLimits): RequestHead {
  const lines = splitHeadLines(head);
  const m = REQUEST_LINE.exec(lines[0]);
  if (!m) throw new HeadError(400, lines[0].startsWith("PRI * HTTP/2") ? "HTTP/2 preface on an HTTP/1.1 port" : "malformed request line");
  const [, method, rawTarget, minorText] = m;
  const minor = minorText === "1" ? 1 : 0;
  const fields = parseHeaderLines(lines, 1, limits.maxHeaderCount);
  const { contentLength, chunked } = readFraming(fields);
  if (chunked && minor === 0) throw new HeadError(400, "Transfer-Encoding in an HTTP/1.0 request");

  let target = rawTarget, authority: string | null = null;
  if (target[0] !== "/") {
    const abs = ABSOLUTE.exec(target);
    if (abs) { authority = abs[1]; target = abs[2] || "/"; if (target[0] === "?") target = "/" + target; }
    else if (!(target === "*" && method === "OPTIONS")) throw new HeadError(400, "request target is not a path");
  }
  if (target.includes("#")) throw new HeadError(400, "fragment in the request target");

  const hosts = fields.filter((f) => f.lower === "host");
  if (hosts.length > 1) throw new HeadError(400, "more than one Host header");
  if (hosts.length === 0 && minor === 1 && authority === null) throw new HeadError(400, "HTTP/1.1 request without Host");
  const hostHeader = authority ?? hosts[0]?.value ?? "";
  if (!/^[A-Za-z0-9._~!$&'()*+,;=:%[\]-]*$/.test(hostHeader)) throw new HeadError(400, "invalid Host header");

  const conn = tokens(fields, "connection");
  const keepAlive = minor === 1 ? !conn.includes("close") : conn.includes("keep-alive");
  const upgradeValue = conn.includes("upgrade") ? fieldValue(fields, "upgrade") : null;
  const q = target.indexOf("?");
  return {
    method,
    target,
    path: q < 0 ? target : target.slice(0, q),
    minor,
    fields,
    host: hostOnly(hostHeader),
    hostHeader,
    contentLength,
    chunked,
    keepAlive,
    upgrade: upgradeValue ? upgradeValue.trim().toLowerCase() : null,
  };
}

function hostOnly(h: string): string {
  const v = h.toLowerCase();
  if (v.startsWith("[")) { const end = v.indexOf("]"); return end > 0 ? v.slice(0, end + 1) : v; }
  const colon = v.indexOf(":");
  return colon >= 0 ? v.slice(0, colon) : v;
}
