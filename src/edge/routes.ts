// Route matching: the first route whose every condition holds wins (as HAProxy use_backend).
import type { RouteConfig } from "./config.ts";
import type { HeaderLookup } from "../http1/head.ts";

export interface RequestFacts {
  host: string; // lowercased, port removed
  path: string;
  method: string;
  headers: HeaderLookup;
}

function hostMatches(patterns: string[], host: string): boolean {
  for (const p of patterns) {
    if (p === host) return true;
    if (p.startsWith("*.") && host.endsWith(p.slice(1)) && host.length > p.length - 1) return true;
  }
  return false;
}

export function routeMatches(r: RouteConfig, f: RequestFacts): boolean {
  if (r.methods && !r.methods.includes(f.method)) return false;
  if (r.hosts && !hostMatches(r.hosts, f.host)) return false;
  if (r.path) {
    const p = r.path;
    if (p.kind === "regex" ? !p.re.test(f.path) : p.kind === "prefix" ? !f.path.startsWith(p.value) : f.path !== p.value) {
      return false;
    }
  }
  for (const hm of r.headers) {
    const v = f.headers.get(hm.name);
    if (v === null) return false;
    if (hm.re ? !hm.re.test(v) : v !== hm.exact) return false;
  }
  return true;
}

/** The routes a listener serves, in order, as one matcher. */
export function routeMatcher(routes: RouteConfig[], listener: string): (f: RequestFacts) => RouteConfig | null {
  const mine = routes.filter((r) => !r.listeners || r.listeners.includes(listener));
  return (f) => {
    for (const r of mine) if (routeMatches(r, f)) return r;
    return null;
  };
}
