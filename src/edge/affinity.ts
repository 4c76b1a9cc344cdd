// HTTP session affinity: cookie insert (HAProxy `cookie NAME insert indirect nocache`: a client is
// pinned to its server while that server is usable). Source persistence is the balancer's.
import type { StickyCookie } from "./options.ts";
import { idHash } from "../core/hash.ts";
import { formatHostPort } from "../config/address.ts";
import type { ServerConfig } from "../balancer/config.ts";
import type { HeaderLookup } from "../http1/head.ts";

const NO_FIELDS: [string, string][] = [];

/** The value a sticky cookie carries for a server: stable across restarts and nodes. */
export function stickyId(server: ServerConfig): string {
  return (idHash(formatHostPort(server.address)) >>> 0).toString(16).padStart(8, "0");
}

export function cookieValue(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** A Cookie header without the cookie `name`, or null when nothing else is left. */
export function withoutCookie(header: string | null, name: string): string | null {
  if (!header) return null;
  const rest = header.split(";").map((p) => p.trim()).filter((p) => p && !p.startsWith(`${name}=`));
  return rest.length ? rest.join("; ") : null;
}

export class StickyCookies {
  constructor(readonly cookie: StickyCookie) {}

  /** The server id the request's cookie names, or null. */
  requested(headers: HeaderLookup): string | null {
    return cookieValue(headers.get("cookie"), this.cookie.name);
  }

  /** Header fields for the response when the client is not (yet) pinned to this server. */
  insert(id: string, requested: string | null): [string, string][] {
    if (requested === id) return NO_FIELDS;
    const fields: [string, string][] = [["Set-Cookie", `${this.cookie.name}=${id}; Path=/; HttpOnly`]];
    if (this.cookie.nocache) fields.push(["Cache-Control", "private"]);
    return fields;
  }
}
