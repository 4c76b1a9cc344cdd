// Health as events, for every part that acts on it: pools (through PoolHealth), the log, and later
// VRRP tracking and the admin API. Delivery is synchronous and in order; a subscriber that throws
// is reported and does not stop the others.
import type { CheckType } from "./config.ts";

interface Base {
  /** ms since the epoch. */
  at: number;
}

export type HealthEvent = Base & (
  /** A shared check changed its verdict (once per address and check, whatever uses it). */
  | { type: "check"; key: string; address: string; check: CheckType; up: boolean; detail: string; streak: number; needed: number }
  /** A pool's server changed its health verdict (all of its checks up, or one down). */
  | { type: "server"; pool: string; server: string; up: boolean; detail: string }
  /** A pool's server got a new effective weight from a check (agent, dynamic script) or slow start's end. */
  | { type: "weight"; pool: string; server: string; weight: number; detail: string }
  /** Outlier detection ejected a server or let it back. */
  | { type: "outlier"; pool: string; server: string; ejected: boolean; ejections: number; durationMs: number; detail: string }
  /** The pool entered or left panic mode (balancing over every server). */
  | { type: "panic"; pool: string; active: boolean; up: number; total: number }
  /** The pool fell below its quorum or met it again. */
  | { type: "quorum"; pool: string; met: boolean; up: number; quorum: number; sorryServer: string | null }
);

export type HealthListener = (event: HealthEvent) => void;

export class HealthEvents {
  private readonly listeners = new Set<HealthListener>();

  /** Returns the function that unsubscribes. */
  subscribe(listener: HealthListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: HealthEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (e) {
        console.error(`fulcrum: health event subscriber failed: ${(e as Error).message}`);
      }
    }
  }
}
