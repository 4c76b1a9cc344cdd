// One health source for VRRP's track_pool across reloads: VRRP instances taken over by the next
// generation keep watching pools through this, while the HealthService behind it changes.
import type { HealthService } from "../health/service.ts";
import type { HealthSource } from "../vrrp/track.ts";

type Listener = (event: { type: string; pool?: string }) => void;

export class HealthRelay implements HealthSource {
  private readonly listeners = new Set<Listener>();
  private unsubscribe: () => void = () => {};

  constructor(private source: HealthService) {
    this.follow(source);
  }

  /** The next generation's health takes over; every pool is announced once so watchers look
   * again (a verdict that did not change says nothing). */
  switchTo(next: HealthService): void {
    const pools = new Set([...this.source.snapshot(), ...next.snapshot()].map((p) => p.pool));
    this.follow(next);
    for (const pool of pools) this.emit({ type: "generation", pool });
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): ReturnType<HealthService["snapshot"]> {
    return this.source.snapshot();
  }

  private follow(source: HealthService): void {
    this.unsubscribe();
    this.source = source;
    this.unsubscribe = source.subscribe((e) => this.emit(e));
  }

  private emit(event: { type: string; pool?: string }): void {
    for (const l of this.listeners) l(event);
  }
}
