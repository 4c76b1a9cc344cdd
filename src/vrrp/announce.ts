// When to tell the LAN that this node holds the virtual addresses, as keepalived's
// garp_master_delay / garp_master_repeat / garp_master_refresh: a burst on becoming master, a
// second burst after the delay (switches that missed the first), and periodic refreshes.
import type { GarpSettings } from "./config.ts";

/** Sends one burst of `repeat` packets per address. */
export type Burst = (repeat: number) => void;

export class Announcer {
  #delayTimer: ReturnType<typeof setTimeout> | null = null;
  #refreshTimer: ReturnType<typeof setInterval> | null = null;

  constructor(readonly settings: GarpSettings, readonly burst: Burst) {}

  /** On becoming master. */
  start(): void {
    this.stop();
    this.burst(this.settings.masterRepeat);
    if (this.settings.masterDelayMs > 0) {
      this.#delayTimer = setTimeout(() => {
        this.#delayTimer = null;
        this.burst(this.settings.masterRepeat);
      }, this.settings.masterDelayMs);
    }
    if (this.settings.refreshMs > 0) {
      this.#refreshTimer = setInterval(() => this.burst(this.settings.refreshRepeat), this.settings.refreshMs);
    }
  }

  /** Again now, e.g. after a split brain healed and the other master's announcements may have won. */
  again(): void {
    this.burst(this.settings.masterRepeat);
  }

  stop(): void {
    if (this.#delayTimer !== null) clearTimeout(this.#delayTimer);
    if (this.#refreshTimer !== null) clearInterval(this.#refreshTimer);
    this.#delayTimer = this.#refreshTimer = null;
  }
}
