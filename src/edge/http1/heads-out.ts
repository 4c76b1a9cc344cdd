// The heads the socket path writes: the request head sent upstream and the response head sent
// to the client. Same rules as the fetch path (headers.ts): hop-by-hop fields and those named in
// Connection go, X-Forwarded-*/X-Real-IP/Via are recomputed, then the operator's remove, set, add.
import type { HeaderRewrite } from "../../config/schema.ts";
import { HOP_BY_HOP, VIA } from "../headers.ts";
import { errorBody, STATUS_TEXT } from "../errors.ts";
import type { ErrorKind } from "../stats.ts";
import { type HeaderField, latin1Bytes, tokens } from "./head.ts";
import type { RequestHead } from "./request-head.ts";
import type { ResponseHead } from "./response-head.ts";

const HOP = new Set(HOP_BY_HOP);
const FORWARDED = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "via"]);

type Field = [name: string, lower: string, value: string];

function kept(fields: HeaderField[], drop: (lower: string) => boolean): Field[] {
  const named = tokens(fields, "connection");
  const out: Field[] = [];
  for (const f of fields) {
    if (HOP.has(f.lower) || drop(f.lower) || (named.length > 0 && named.includes(f.lower))) continue;
    out.push([f.name, f.lower, f.value]);
  }
  return out;
}

function rewrite(fields: Field[], rule: HeaderRewrite): Field[] {
  if (rule.remove.length === 0 && rule.set.length === 0 && rule.add.length === 0) return fields;
  const gone = new Set([...rule.remove, ...rule.set.map(([n]) => n)]);
  const out = fields.filter((f) => !gone.has(f[1]));
  for (const [n, v] of rule.set) out.push([n, n, v]);
  for (const [n, v] of rule.add) out.push([n, n, v]);
  return out;
}

function serialize(startLine: string, fields: Field[]): string {
  let s = startLine + "\r\n";
  for (const f of fields) s += f[0] + ": " + f[2] + "\r\n";
  return s + "\r\n";
}

function joined(fields: HeaderField[], lower: string): string {
  let v = "";
  for (const f of fields) if (f.lower === lower) v = v ? `${v}, ${f.value}` : f.value;
  return v;
}

export interface UpstreamHeadContext {
  clientAddress: string;
  proto: "http" | "https";
  /** Extra fields to add after the operator's rules (X-Request-ID). */
  extra: [string, string][];
  /** Request cookies to drop (a sticky cookie with `indirect`). */
  dropCookie: string | null;
}

export function upstreamRequestHead(req: RequestHead, ctx: UpstreamHeadContext, rule: HeaderRewrite): Uint8Array {
  const fields = kept(req.fields, (l) => FORWARDED.has(l) || l === "content-length");
  const xff = joined(req.fields, "x-forwarded-for"), via = joined(req.fields, "via");
  fields.push(["X-Forwarded-For", "x-forwarded-for", xff ? `${xff}, ${ctx.clientAddress}` : ctx.clientAddress]);
  fields.push(["X-Forwarded-Proto", "x-forwarded-proto", ctx.proto]);
  if (req.hostHeader) fields.push(["X-Forwarded-Host", "x-forwarded-host", req.hostHeader]);
  fields.push(["X-Real-IP", "x-real-ip", ctx.clientAddress]);
  fields.push(["Via", "via", via ? `${via}, ${VIA}` : VIA]);
  if (ctx.dropCookie) dropCookie(fields, ctx.dropCookie);
  const out = rewrite(fields, rule);
  for (const [n, v] of ctx.extra) out.push([n, n.toLowerCase(), v]);
  // Framing last, from what was parsed: the body is forwarded byte for byte as received.
  if (req.chunked) out.push(["Transfer-Encoding", "transfer-encoding", "chunked"]);
  else if (req.contentLength >= 0) out.push(["Content-Length", "content-length", String(req.contentLength)]);
  if (req.upgrade) {
    out.push(["Connection", "connection", "upgrade"]);
    out.push(["Upgrade", "upgrade", req.upgrade]);
  }
  // Host is a regular field: it passes through as the client sent it.
  if (!req.fields.some((f) => f.lower === "host") && req.hostHeader) out.push(["Host", "host", req.hostHeader]);
  return latin1Bytes(serialize(`${req.method} ${req.target} HTTP/1.1`, out));
}

function dropCookie(fields: Field[], name: string): void {
  for (let i = fields.length - 1; i >= 0; i--) {
    if (fields[i][1] !== "cookie") continue;
    const rest = fields[i][2].split(";").map((p) => p.trim()).filter((p) => p && !p.startsWith(`${name}=`));
    if (rest.length === 0) fields.splice(i, 1);
    else fields[i] = [fields[i][0], "cookie", rest.join("; ")];
  }
}

export interface ClientHeadContext {
  /** Fields added after the operator's rules (Set-Cookie for stickiness, X-Request-ID). */
  extra: [string, string][];
  /** Tell the client the connection closes after this response. */
  close: boolean;
}

export function clientResponseHead(res: ResponseHead, rule: HeaderRewrite, ctx: ClientHeadContext): Uint8Array {
  const switching = res.status === 101;
  const fields = rewrite(kept(res.fields, () => false), rule);
  for (const [n, v] of ctx.extra) fields.push([n, n.toLowerCase(), v]);
  if (res.body === "chunked") fields.push(["Transfer-Encoding", "transfer-encoding", "chunked"]);
  if (switching) {
    fields.push(["Connection", "connection", "upgrade"]);
    const up = res.fields.find((f) => f.lower === "upgrade");
    if (up) fields.push(["Upgrade", "upgrade", up.value]);
  } else if (ctx.close) fields.push(["Connection", "connection", "close"]);
  return latin1Bytes(serialize(`HTTP/1.1 ${res.status} ${res.reason || STATUS_TEXT[res.status] || ""}`.trimEnd(), fields));
}

/** A complete error response, as errors.ts words it for the fetch path. */
export function errorResponseBytes(status: number, kind: ErrorKind, detail: string, close: boolean, extra: [string, string][] = []): Uint8Array {
  const body = errorBody(status, detail);
  let s = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ""}\r\ncontent-type: text/plain; charset=utf-8\r\nx-fulcrum-error: ${kind}\r\n`;
  for (const [n, v] of extra) s += `${n}: ${v}\r\n`;
  s += `content-length: ${body.length}\r\n${close ? "connection: close\r\n" : ""}\r\n${body}`;
  return latin1Bytes(s);
}
