// The per-client limit tables of the serving generation (the edge's listeners and routes, the L4
// proxy's tcp listeners), one row per table: GET /api/limits and the fulcrum_limit_* metrics.
import type { LimitSet } from "../edge/limits/limiter.ts";
import type { LimitKey } from "../edge/limits/config.ts";
import type { Generation } from "./generation.ts";
import type { LimitTableStats } from "../core/limits.ts";

/** A table's counters (core/limits.ts), with what it limits. */
export interface LimitRow extends Omit<LimitTableStats, "kind"> {
  scope: "listener" | "route";
  name: string;
  limit: "rate_limit" | "conn_limit";
  key: string;
  /** rate_limit: requests per second and burst; conn_limit: max in flight. */
  rate?: number;
  burst?: number;
  max?: number;
}

function keyText(key: LimitKey): string {
  return key.kind === "client" ? "client" : `${key.kind}:${key.name}`;
}

function rowsOf(set: LimitSet): LimitRow[] {
  return set.tables().map(({ limit, stats }) => {
    const rate = set.config.rate, conn = set.config.conn;
    const spec = limit === "rate_limit" ? { key: keyText(rate!.key), rate: rate!.rate, burst: rate!.burst } : { key: keyText(conn!.key), max: conn!.max };
    const { size, bytes, entries, evictions, rejected, full, reclaimed } = stats;
    return { scope: set.scope, name: set.name, limit, ...spec, size, bytes, entries, evictions, rejected, full, reclaimed };
  });
}

export function limitRows(g: Generation): LimitRow[] {
  const sets = [...(g.edge?.clientLimits.all() ?? []), ...(g.l4?.clientLimits.values() ?? [])];
  return sets.flatMap(rowsOf);
}
