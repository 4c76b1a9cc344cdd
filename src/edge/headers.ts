// Request and response header rewriting for the proxy: hop-by-hop removal (RFC 9110 §7.6.1),
// the X-Forwarded-* family, Via, and the operator's set/add/remove rules.
import type { HeaderRewrite } from "./config.ts";

export const HOP_BY_HOP = [
  "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
  "proxy-authenticate", "proxy-authorization",
];

export const VIA = "1.1 fulcrum";

/** Removes hop-by-hop headers and any header the Connection header names. */
export function stripHopByHop(headers: Headers): void {
  const named = headers.get("connection");
  if (named) for (const n of named.split(",")) { const t = n.trim(); if (t) headers.delete(t); }
  for (const h of HOP_BY_HOP) headers.delete(h);
}

/** A client's X-Request-ID worth passing on: printable, no spaces, not absurdly long. */
export function saneRequestId(value: string | null): string | null {
  return value !== null && /^[\x21-\x7e]{1,200}$/.test(value) ? value : null;
}

export function applyRewrite(headers: Headers, rule: HeaderRewrite): void {
  for (const name of rule.remove) headers.delete(name);
  for (const [name, value] of rule.set) headers.set(name, value);
  for (const [name, value] of rule.add) headers.append(name, value);
}

export interface ForwardContext {
  clientAddress: string;
  proto: "http" | "https";
}

/** The headers sent upstream for a client request. */
export function upstreamRequestHeaders(incoming: Headers, ctx: ForwardContext, rule: HeaderRewrite): Headers {
  const h = new Headers(incoming);
  stripHopByHop(h);
  const xff = h.get("x-forwarded-for");
  h.set("x-forwarded-for", xff ? `${xff}, ${ctx.clientAddress}` : ctx.clientAddress);
  h.set("x-forwarded-proto", ctx.proto);
  const host = incoming.get("host");
  if (host) h.set("x-forwarded-host", host);
  h.set("x-real-ip", ctx.clientAddress);
  const via = h.get("via");
  h.set("via", via ? `${via}, ${VIA}` : VIA);
  applyRewrite(h, rule);
  return h;
}

/** The headers returned to the client for an upstream response. */
export function clientResponseHeaders(upstream: Headers, rule: HeaderRewrite): Headers {
  const h = new Headers(upstream);
  stripHopByHop(h);
  applyRewrite(h, rule);
  return h;
}
