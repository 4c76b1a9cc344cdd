// The one interface of discovery: a source of servers for a pool. A source reports the whole set
// (its first read, and every resync after etcd came back or a watch was lost) or the changes since
// (a watch's events); `apply.ts` turns either into the live pool's membership. A source that
// cannot reach its store reports nothing: the pool keeps the servers it has.
import type { HostPort } from "../config/address.ts";

/** An operator's state for a server: `drain` takes no new sessions, `maint` is out. */
export type DiscoveredState = "up" | "drain" | "maint";

export interface DiscoveredServer {
  address: HostPort;
  weight: number;
  state: DiscoveredState;
}

export type SourceUpdate =
  | { kind: "full"; servers: DiscoveredServer[] }
  | { kind: "changes"; upserts: DiscoveredServer[]; removed: HostPort[] };

export interface ServerSource {
  /** Begins reading; `onUpdate` is called for every set or change from then until stop(). */
  start(onUpdate: (update: SourceUpdate) => void): void;
  /** Resolves once the first full set was reported, or false after `timeoutMs` without one. */
  firstRead(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}
