// What an instance tracks besides adverts: interface links (through rtnetlink notifications)
// and scripts (run on an interval, with rise/fall as keepalived's vrrp_script). Each reports
// up/down changes; the instance turns them into FAULT or priority weights.
import { interfaceIndex } from "../ffi/libc.ts";
import { getLink, IFF_RUNNING, IFF_UP, type Link, linkOfMessage, RouteSocket, RTMGRP_LINK } from "../ffi/netlink.ts";
import type { VrrpScriptConfig } from "./config.ts";
import { addPoll, removePoll } from "./poller.ts";
import { RiseFall } from "../core/rise-fall.ts";
import { runScript } from "../core/script.ts";
import { type TimerEntry, timers } from "../core/timer.ts";

export type UpDown = (up: boolean) => void;

/** Link changes are read this often: a lost link is noticed within it. */
const LINK_POLL_MS = 50;

/** A link is usable when it is administratively up and has carrier (IFF_RUNNING). */
export function linkIsUp(link: Link | null): boolean {
  return link !== null && (link.flags & IFF_UP) !== 0 && (link.flags & IFF_RUNNING) !== 0;
}

/** Link state of named interfaces, kept current from RTMGRP_LINK notifications. One per process. */
class LinkWatcher {
  readonly #watchers = new Map<string, Set<UpDown>>();
  readonly #state = new Map<string, boolean>();
  #socket: RouteSocket | null = null;
  readonly #poll = () => this.#read();

  watch(name: string, onChange: UpDown): boolean {
    if (this.#socket === null) {
      this.#socket = new RouteSocket(RTMGRP_LINK);
      addPoll(this.#poll, LINK_POLL_MS);
    }
    let set = this.#watchers.get(name);
    if (set === undefined) {
      set = new Set();
      this.#watchers.set(name, set);
      const index = interfaceIndex(name);
      this.#state.set(name, index !== null && linkIsUp(getLink(index)));
    }
    set.add(onChange);
    return this.#state.get(name)!;
  }

  unwatch(name: string, onChange: UpDown): void {
    const set = this.#watchers.get(name);
    set?.delete(onChange);
    if (set?.size === 0) {
      this.#watchers.delete(name);
      this.#state.delete(name);
    }
    if (this.#watchers.size === 0 && this.#socket !== null) {
      removePoll(this.#poll);
      this.#socket.close();
      this.#socket = null;
    }
  }

  #read(): void {
    for (const message of this.#socket?.pending() ?? []) {
      const link = linkOfMessage(message);
      if (link === null || !this.#watchers.has(link.name)) continue;
      // RTM_DELLINK carries the link as it was; a deleted link is down.
      const up = message.type === 17 ? false : linkIsUp(link);
      if (this.#state.get(link.name) === up) continue;
      this.#state.set(link.name, up);
      for (const onChange of this.#watchers.get(link.name) ?? []) onChange(up);
    }
  }
}

export const links = new LinkWatcher();

/** Runs a vrrp_script on its interval; reports up after `rise` successes and down after `fall`
 * failures (the first result gives the first verdict). */
export class ScriptTracker {
  readonly #count: RiseFall;
  #next: TimerEntry | null = null;
  #running = false;
  #stopped = false;
  readonly #listeners = new Set<UpDown>();

  constructor(readonly config: VrrpScriptConfig, readonly log: (line: string) => void) {
    this.#count = new RiseFall(config.rise, config.fall);
  }

  /** null until the first verdict. */
  get up(): boolean | null {
    return this.#count.verdict;
  }

  subscribe(onChange: UpDown): void {
    this.#listeners.add(onChange);
  }

  start(): void {
    this.#stopped = false;
    void this.#runOnce();
  }

  stop(): void {
    this.#stopped = true;
    timers.cancel(this.#next);
    this.#next = null;
  }

  async #runOnce(): Promise<void> {
    if (this.#stopped || this.#running) return;
    this.#running = true;
    const ok = await scriptPasses(this.config.script, this.config.timeoutMs);
    this.#running = false;
    if (this.#stopped) return;
    const change = this.#count.record(ok);
    if (change !== null) {
      this.log(`vrrp: script ${this.config.name} is ${change.to ? "up" : "down"}`);
      for (const onChange of this.#listeners) onChange(change.to);
    }
    this.#next = timers.at(timers.now() + this.config.intervalMs, () => void this.#runOnce());
  }
}

/** Exit 0 within the timeout is success; a timeout kills the script (and what it started). */
async function scriptPasses(script: string, timeoutMs: number): Promise<boolean> {
  const { code, killed } = await runScript(["/bin/sh", "-c", script], { timeoutMs, outputLimit: 0 });
  return code === 0 && !killed;
}

/** What pool tracking needs of the health part (src/health/service.ts's HealthService). */
export interface HealthSource {
  subscribe(listener: (event: { type: string; pool?: string }) => void): () => void;
  snapshot(): { pool: string; up: number; quorumMet: boolean }[];
}

/** A pool is up while at least one of its servers is healthy and its quorum (if any) is met.
 * A pool without health checks is always up: nothing ever says otherwise. */
export function poolIsUp(health: HealthSource, pool: string): boolean {
  const p = health.snapshot().find((s) => s.pool === pool);
  return p === undefined || (p.up > 0 && p.quorumMet);
}

/** Calls `onChange` whenever the pool's up/down verdict changes; returns the unsubscribe function. */
export function watchPool(health: HealthSource, pool: string, onChange: UpDown): { up: boolean; stop: () => void } {
  let up = poolIsUp(health, pool);
  const stop = health.subscribe((event) => {
    if (event.pool !== pool) return;
    const now = poolIsUp(health, pool);
    if (now === up) return;
    up = now;
    onChange(up);
  });
  return { up, stop };
}
