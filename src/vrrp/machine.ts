// The VRRP state machine of RFC 9568 §6.4 (and RFC 3768 §6.4 for v2) plus keepalived's Fault
// state, preempt_delay and split-brain re-announcement. Pure logic: the caller passes the time
// with every event and gets back what to do (effects); timers are deadlines it reads through
// nextDeadline() and fires with tick(). Nothing here touches sockets or the clock.

import { compareAddresses, formatIP } from "./ip.ts";

export type VrrpState = "INIT" | "BACKUP" | "MASTER" | "FAULT";

export interface MachineOptions {
  version: 2 | 3;
  /** Configured priority: 1..254, or 255 for the address owner. */
  priority: number;
  /** Our advertisement interval in centiseconds. */
  intervalCs: number;
  /** false is keepalived's `nopreempt`: a higher priority backup does not take over a live master. */
  preempt: boolean;
  /** keepalived's `preempt_delay`: how long a lower-priority master is tolerated before preempting it. */
  preemptDelayMs: number;
  /** Our primary address on the interface: breaks ties between equal priorities. */
  localAddress: Uint8Array;
}

/** What the machine needs from a received advert (already validated). */
export interface PeerAdvert {
  priority: number;
  intervalCs: number;
  source: Uint8Array;
}

export type Effect =
  | { kind: "transition"; from: VrrpState; to: VrrpState; reason: string }
  /** Send an advert with this priority now. */
  | { kind: "send"; priority: number }
  /** Tell the network again who holds the addresses (GARP / unsolicited NA). */
  | { kind: "announce"; reason: string };

export class VrrpMachine {
  #state: VrrpState = "INIT";
  #priority: number;
  /** The master's interval as learned from its adverts (v3); our own until then, and always in v2. */
  #masterIntervalCs: number;
  #masterDownAt: number | null = null;
  #advertAt: number | null = null;
  #preemptAt: number | null = null;
  #lastAnnounceAt = -Infinity;
  /** The master sent priority 0: the pending master-down is a handover, not a death. */
  #masterLeft = false;

  constructor(readonly options: MachineOptions) {
    this.#priority = options.priority;
    this.#masterIntervalCs = options.intervalCs;
  }

  get state(): VrrpState {
    return this.#state;
  }

  /** The priority in effect (configured, moved by tracking weights). */
  get priority(): number {
    return this.#priority;
  }

  get masterIntervalCs(): number {
    return this.#masterIntervalCs;
  }

  /** RFC 9568: ((256 - Priority) * Master_Adver_Interval) / 256; RFC 3768: (256 - Priority) / 256 s. */
  skewMs(): number {
    const intervalCs = this.options.version === 3 ? this.#masterIntervalCs : 100;
    return ((256 - this.#priority) * intervalCs * 10) / 256;
  }

  /** 3 × Master_Adver_Interval + Skew_Time. */
  masterDownMs(): number {
    const intervalCs = this.options.version === 3 ? this.#masterIntervalCs : this.options.intervalCs;
    return 3 * intervalCs * 10 + this.skewMs();
  }

  nextDeadline(): number | null {
    const deadlines = [this.#masterDownAt, this.#advertAt, this.#preemptAt].filter((d): d is number => d !== null);
    return deadlines.length === 0 ? null : Math.min(...deadlines);
  }

  start(now: number): Effect[] {
    if (this.#state !== "INIT") return [];
    return this.#enterInitialState(now, "startup");
  }

  /** Clean shutdown: a master sends priority 0 so a backup takes over after only its skew time. */
  stop(_now: number): Effect[] {
    if (this.#state === "INIT") return [];
    const effects: Effect[] = this.#state === "MASTER" ? [{ kind: "send", priority: 0 }] : [];
    return [...effects, ...this.#to("INIT", "shutdown")];
  }

  /** Something tracked failed: leave the election (a master gives up with priority 0). */
  fault(_now: number, reason: string): Effect[] {
    if (this.#state === "FAULT" || this.#state === "INIT") return [];
    const effects: Effect[] = this.#state === "MASTER" ? [{ kind: "send", priority: 0 }] : [];
    return [...effects, ...this.#to("FAULT", reason)];
  }

  /** Every tracked thing is good again: rejoin as after startup. */
  recover(now: number, reason: string): Effect[] {
    if (this.#state !== "FAULT") return [];
    return this.#enterInitialState(now, reason);
  }

  /** Tracking moved the priority. A master advertises the change at once so a backup can preempt. */
  setPriority(now: number, priority: number): Effect[] {
    if (priority === this.#priority) return [];
    this.#priority = priority;
    if (this.#state !== "MASTER") return [];
    this.#advertAt = now + this.options.intervalCs * 10;
    return [{ kind: "send", priority }];
  }

  /** Sync groups: follow another member into MASTER, BACKUP or FAULT. */
  force(now: number, state: "MASTER" | "BACKUP" | "FAULT", reason: string): Effect[] {
    if (this.#state === state || this.#state === "INIT") return [];
    if (state === "FAULT") return this.fault(now, reason);
    if (this.#state === "FAULT") return [];
    return state === "MASTER" ? this.#becomeMaster(now, reason) : this.#becomeBackup(now, reason);
  }

  receive(now: number, advert: PeerAdvert): Effect[] {
    if (this.#state === "BACKUP") return this.#receiveAsBackup(now, advert);
    if (this.#state === "MASTER") return this.#receiveAsMaster(now, advert);
    return [];
  }

  /** Fires every deadline that has passed. */
  tick(now: number): Effect[] {
    if (this.#state === "BACKUP") {
      if (this.#masterDownAt !== null && now >= this.#masterDownAt) {
        return this.#becomeMaster(now, this.#masterLeft ? "master gave up (priority 0 advert)" : "master down timer expired");
      }
      if (this.#preemptAt !== null && now >= this.#preemptAt) {
        return this.#becomeMaster(now, "preempt_delay over, preempting a lower-priority master");
      }
      return [];
    }
    if (this.#state === "MASTER" && this.#advertAt !== null && now >= this.#advertAt) {
      this.#advertAt = now + this.options.intervalCs * 10;
      return [{ kind: "send", priority: this.#priority }];
    }
    return [];
  }

  #receiveAsBackup(now: number, a: PeerAdvert): Effect[] {
    if (a.priority === 0) {
      // The master is leaving: take over after only our skew, so higher priorities still win.
      this.#masterDownAt = now + this.skewMs();
      this.#masterLeft = true;
      return [];
    }
    const lower = a.priority < this.#priority;
    if (lower && this.options.preempt) {
      if (this.options.preemptDelayMs <= 0) return []; // discard: the master down timer will make us master
      this.#preemptAt ??= now + this.options.preemptDelayMs;
    } else {
      this.#preemptAt = null;
    }
    if (this.options.version === 3) this.#masterIntervalCs = a.intervalCs;
    this.#masterDownAt = now + this.masterDownMs();
    this.#masterLeft = false;
    return [];
  }

  #receiveAsMaster(now: number, a: PeerAdvert): Effect[] {
    if (a.priority === 0) {
      // Another master is leaving: advertise at once so backups do not take over needlessly.
      this.#advertAt = now + this.options.intervalCs * 10;
      return [{ kind: "send", priority: this.#priority }];
    }
    const tie = a.priority === this.#priority;
    const theyWin = a.priority > this.#priority || (tie && compareAddresses(a.source, this.options.localAddress) > 0);
    if (theyWin) {
      if (this.options.version === 3) this.#masterIntervalCs = a.intervalCs;
      const why = tie ? `equal priority ${a.priority} from higher address` : `higher priority ${a.priority}`;
      // One last advert of ours (keepalived's vrrp_higher_prio_send_advert): after a split brain
      // the winner may not have heard us yet, and hearing a lower master makes it re-announce.
      return [{ kind: "send", priority: this.#priority }, ...this.#becomeBackup(now, `${why} from ${formatIP(a.source)}`)];
    }
    // Two masters: a split brain is healing. Assert ourselves, and re-announce the addresses
    // (at most once per master-down interval) because the other master's GARPs may have won.
    const effects: Effect[] = [{ kind: "send", priority: this.#priority }];
    this.#advertAt = now + this.options.intervalCs * 10;
    if (now - this.#lastAnnounceAt >= this.masterDownMs()) {
      this.#lastAnnounceAt = now;
      effects.push({ kind: "announce", reason: `lower-priority master ${formatIP(a.source)} (priority ${a.priority}) seen` });
    }
    return effects;
  }

  #enterInitialState(now: number, reason: string): Effect[] {
    if (this.#priority === 255) return this.#becomeMaster(now, `${reason}, address owner (priority 255)`);
    return this.#becomeBackup(now, reason);
  }

  #becomeMaster(now: number, reason: string): Effect[] {
    // RFC order: the advert goes out first, then the addresses are taken and announced.
    const send: Effect = { kind: "send", priority: this.#priority };
    const effects = this.#to("MASTER", reason);
    this.#lastAnnounceAt = now;
    this.#advertAt = now + this.options.intervalCs * 10;
    return [send, ...effects];
  }

  #becomeBackup(now: number, reason: string): Effect[] {
    const effects = this.#to("BACKUP", reason);
    if (this.options.version === 2 || this.#masterIntervalCs <= 0) this.#masterIntervalCs = this.options.intervalCs;
    this.#masterDownAt = now + this.masterDownMs();
    return effects;
  }

  #to(state: VrrpState, reason: string): Effect[] {
    const from = this.#state;
    this.#state = state;
    this.#masterDownAt = null;
    this.#advertAt = null;
    this.#preemptAt = null;
    this.#masterLeft = false;
    if (state === "INIT" || state === "FAULT") this.#masterIntervalCs = this.options.intervalCs;
    return [{ kind: "transition", from, to: state, reason }];
  }
}
