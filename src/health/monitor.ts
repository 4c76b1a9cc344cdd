// One check of one address, run on its own schedule: the timing half of the scheduler. A Monitor
// runs its probe, feeds results to the CheckState and tells its subscribers about transitions and
// weight requests. Checks of one monitor never overlap; the next starts `nextDelay` after the
// previous one started (or as soon as it ends, when it ran longer), so a dead server is found
// within interval × fall + timeout.
import type { CheckConfig } from "./config.ts";
import { fail, formatTimeout, type CheckResult, type CheckTarget, type Probe } from "./result.ts";
import { CheckState, type Transition } from "./state.ts";

export interface MonitorChange {
  transition: Transition | null;
  weightChanged: boolean;
}

export type MonitorListener = (monitor: Monitor, change: MonitorChange) => void;

// How long a probe may take to settle after its timeout fired before the monitor gives up on it
// (a probe should settle at once; this only bounds a misbehaving one).
const SETTLE_GRACE_MS = 200;

export class Monitor {
  readonly state: CheckState;
  /** Checks completed. */
  checks = 0;
  /** When the last check finished (ms since the epoch), 0 before the first. */
  lastCheckAt = 0;
  /** How long the last check took, in ms. */
  lastDurationMs = 0;
  private readonly listeners = new Set<MonitorListener>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;

  /** `key` names the shared state: (address, check definition). */
  constructor(readonly key: string, readonly address: string, readonly check: CheckConfig,
    readonly target: CheckTarget, private readonly probe: Probe) {
    this.state = new CheckState(check);
  }

  get up(): boolean {
    return this.state.up;
  }

  subscribe(listener: MonitorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts checking; the first check runs after `firstDelayMs` (the spread). */
  start(firstDelayMs: number): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setTimeout(() => this.run(), firstDelayMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Runs one check now and returns its result (also fed to the state machine). */
  async runOnce(): Promise<CheckResult> {
    const started = performance.now();
    const result = await this.probeWithTimeout();
    this.lastDurationMs = performance.now() - started;
    this.take(result);
    return result;
  }

  private async run(): Promise<void> {
    this.timer = null;
    const started = performance.now();
    const result = await this.probeWithTimeout();
    if (this.stopped) return;
    this.lastDurationMs = performance.now() - started;
    this.take(result);
    if (this.stopped) return; // a subscriber may have stopped it
    const wait = Math.max(0, started + this.state.nextDelay() - performance.now());
    this.timer = setTimeout(() => this.run(), wait);
  }

  private take(result: CheckResult): void {
    this.checks++;
    this.lastCheckAt = Date.now();
    const before = this.state.weight;
    const transition = this.state.record(result);
    const weightChanged = !sameWeight(before, this.state.weight);
    if (!transition && !weightChanged) return;
    for (const listener of this.listeners) {
      try {
        listener(this, { transition, weightChanged });
      } catch (e) {
        console.error(`fulcrum: health subscriber failed: ${(e as Error).message}`);
      }
    }
  }

  private probeWithTimeout(): Promise<CheckResult> {
    const timeoutMs = this.check.timeoutMs;
    const reason = `after ${formatTimeout(timeoutMs)}`;
    const abort = new AbortController();
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      const settle = (r: CheckResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        clearTimeout(grace);
        resolve(r);
      };
      let grace: ReturnType<typeof setTimeout> | undefined;
      const timeout = setTimeout(() => {
        abort.abort(reason);
        grace = setTimeout(() => settle(fail(`timed out ${reason}`)), SETTLE_GRACE_MS);
      }, timeoutMs);
      this.probe(abort.signal).then(settle, (e) => settle(fail(`check failed: ${(e as Error)?.message ?? e}`)));
    });
  }
}

function sameWeight(a: CheckState["weight"], b: CheckState["weight"]): boolean {
  if (a === b) return true;
  if (typeof a === "string" || typeof b === "string") return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
