// TLS passthrough routing: the first route whose names match the ClientHello's server name.
import type { SniRoute } from "./config.ts";

/** Whether `name` matches `pattern`: equal, or for "*.example.com" any name under example.com. */
export function sniMatches(pattern: string, name: string): boolean {
  if (!pattern.startsWith("*.")) return pattern === name;
  return name.length > pattern.length - 1 && name.endsWith(pattern.slice(1));
}

/** The route for a server name (null: the hello had none); a route without names takes any. */
export function routeForSni(routes: readonly SniRoute[], name: string | null): SniRoute | null {
  for (const r of routes) {
    if (r.sni === null) return r;
    if (name !== null && r.sni.some((p) => sniMatches(p, name))) return r;
  }
  return null;
}

/** The route taking connections that sent no readable ClientHello: the one without names. */
export function defaultSniRoute(routes: readonly SniRoute[]): SniRoute | null {
  return routes.find((r) => r.sni === null) ?? null;
}
