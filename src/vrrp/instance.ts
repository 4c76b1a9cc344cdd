// One VRRP instance (keepalived's vrrp_instance): the state machine wired to the wire (channel),
// the virtual addresses (rtnetlink), announcements (GARP / NA), tracking and notify hooks.
import { GratuitousArpSender, NeighbourAdvertSender } from "../ffi/arp.ts";
import { createMacvlan, deleteLink, getLink } from "../ffi/netlink.ts";
import { interfaceIndex } from "../ffi/libc.ts";
import { runtime } from "../runtime/index.ts";
import {
  addVirtualAddresses, describeAddresses, type InterfaceFacts, interfaceFacts, presentAddresses, removeVirtualAddresses,
} from "./addresses.ts";
import { Announcer } from "./announce.ts";
import { AdvertSender, type AdvertListener, ReceiveChannel } from "./channel.ts";
import type { VrrpInstanceConfig } from "./config.ts";
import { formatIP } from "./ip.ts";
import { type Effect, VrrpMachine, type VrrpState } from "./machine.ts";
import { notify, type NotifyState } from "./notify.ts";
import {
  type Advert, AUTH_NONE, AUTH_PASS, checkAdvert, type ChecksumMode, type DropReason, type Expectation, passwordBytes,
} from "./packet.ts";
import { type HealthSource, links, type ScriptTracker, watchPool } from "./track.ts";

export type Log = (line: string) => void;
export type StateListener = (to: VrrpState, reason: string) => void;

/** Drop log lines per reason are at most this frequent; the counters count every drop. */
const DROP_LOG_INTERVAL_MS = 1000;
/** How early a backup's timer fires before a takeover deadline (then it waits the rest out). */
const TAKEOVER_LEAD_MS = 2;

const now = () => performance.now();

export class VrrpInstance implements AdvertListener {
  /** Rejected adverts by reason, since start. */
  readonly drops = new Map<DropReason, number>();
  /** Valid adverts received, since start. */
  received = 0;
  sent = 0;
  /** State changes since start (metrics). */
  transitions = 0;

  #machine: VrrpMachine;
  readonly #expectation: Expectation;
  readonly #stateListeners = new Set<StateListener>();
  readonly #faultListeners = new Set<(reason: string | null) => void>();
  /** Reasons for FAULT from this instance's own tracking, by what failed. */
  readonly #ownFaults = new Map<string, string>();
  /** FAULT imposed by a sync group member. */
  readonly #groupFaults = new Map<string, string>();
  readonly #weights = new Map<string, number>();
  #lastOwnFault: string | null = null;
  readonly #restoreSysctls: (() => Promise<void>)[] = [];
  readonly #lastDropLog = new Map<DropReason, number>();
  readonly #unwatch: (() => void)[] = [];
  #facts: InterfaceFacts | null = null;
  #vipIfindex = 0;
  #vipMac: Uint8Array = new Uint8Array(6);
  #source: Uint8Array = new Uint8Array(4);
  #sender: AdvertSender | null = null;
  #channel: ReceiveChannel | null = null;
  #announcer: Announcer;
  #announceSender: GratuitousArpSender | NeighbourAdvertSender | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastSendError = -Infinity;
  #hooks: Promise<void>[] = [];

  constructor(
    readonly config: VrrpInstanceConfig,
    readonly log: Log,
    readonly scripts: Map<string, ScriptTracker> = new Map(),
    readonly health: HealthSource | null = null,
  ) {
    const authType = config.authPass === null ? AUTH_NONE : AUTH_PASS;
    this.#expectation = {
      version: config.version,
      intervalCs: config.intervalCs,
      authType,
      authData: config.authPass === null ? new Uint8Array(8) : passwordBytes(config.authPass),
      addresses: config.addresses.map((a) => a.address),
    };
    this.#machine = this.#newMachine(new Uint8Array(config.family === 4 ? 4 : 16)); // replaced in start()
    this.#announcer = new Announcer(config.garp, (repeat) => this.#announce(repeat));
  }

  get name(): string {
    return this.config.name;
  }

  get state(): VrrpState {
    return this.#machine.state;
  }

  get priority(): number {
    return this.#machine.priority;
  }

  // AdvertListener
  get vrid(): number {
    return this.config.vrid;
  }
  get checksumMode(): ChecksumMode {
    return this.config.checksumMode;
  }
  get localSource(): Uint8Array {
    return this.#source;
  }
  get multicast(): boolean {
    return this.config.unicastPeers.length === 0;
  }

  #newMachine(localAddress: Uint8Array): VrrpMachine {
    const c = this.config;
    return new VrrpMachine({
      version: c.version, priority: c.priority, intervalCs: c.intervalCs, preempt: c.preempt, preemptDelayMs: c.preemptDelayMs,
      localAddress,
    });
  }

  onState(listener: StateListener): void {
    this.#stateListeners.add(listener);
  }

  /** Called with a reason when this instance's own tracking puts it in FAULT, and null when it clears. */
  onOwnFault(listener: (reason: string | null) => void): void {
    this.#faultListeners.add(listener);
  }

  /** Opens sockets, sets up tracking and joins the election as a backup (or master, as owner). */
  async start(): Promise<void> {
    const c = this.config;
    let facts: InterfaceFacts;
    try {
      facts = interfaceFacts(c.interface, c.addresses);
    } catch (e) {
      throw new Error(`${c.name}: ${(e as Error).message}`);
    }
    this.#facts = facts;
    const source = c.unicastSource ?? (c.family === 4 ? facts.primaryIPv4 : facts.linkLocalIPv6);
    if (source === null) {
      throw new Error(`${c.name}: interface ${c.interface} has no ${c.family === 4 ? "IPv4" : "IPv6 link-local"} address to send adverts from`);
    }
    this.#source = source;
    this.#machine = this.#newMachine(source);
    this.#vipIfindex = facts.ifindex;
    this.#vipMac = facts.mac;
    if (c.vmac !== null) await this.#createVmac(c.vmac, facts);

    this.#sender = new AdvertSender({
      ifname: c.interface, ifindex: facts.ifindex, family: c.family, source, peers: c.unicastPeers, checksumMode: c.checksumMode,
    });
    this.#announceSender = c.family === 4
      ? new GratuitousArpSender(this.#vipIfindex, this.#vipMac)
      : new NeighbourAdvertSender(c.vmac ?? c.interface, this.#vipIfindex, this.#vipMac, c.vmac === null ? facts.linkLocalIPv6 : null);
    this.#channel = ReceiveChannel.for(c.interface, facts.ifindex, c.family);
    this.#channel.attach(this);

    // A node that crashed as master left its addresses behind; a backup must not hold them.
    const stale = presentAddresses(this.#vipIfindex, c.addresses);
    if (stale.length > 0) {
      this.log(`vrrp: ${c.name} removing virtual addresses left from an earlier run: ${describeAddresses(stale)}`);
      this.#logProblems(removeVirtualAddresses(this.#vipIfindex, stale));
    }

    this.#sender.prepare(this.#advert(c.priority));
    this.#startTracking();
    this.#apply(this.#machine.start(now()));
    this.#updateTracking();
  }

  /** Leaves the election: a master sends priority 0 and removes its addresses. */
  async stop(): Promise<void> {
    this.#apply(this.#machine.stop(now()));
    this.#clearTimer();
    this.#announcer.stop();
    for (const unwatch of this.#unwatch.splice(0)) unwatch();
    this.#channel?.detach(this);
    this.#sender?.close();
    this.#announceSender?.close();
    this.#channel = null;
    this.#sender = null;
    this.#announceSender = null;
    if (this.config.vmac !== null && this.#vipIfindex !== this.#facts?.ifindex) {
      try {
        deleteLink(this.#vipIfindex);
      } catch (e) {
        this.log(`vrrp: ${this.name} cannot remove ${this.config.vmac}: ${(e as Error).message}`);
      }
      for (const restore of this.#restoreSysctls.splice(0)) await restore();
    }
    const dropped = [...this.drops].map(([r, n]) => `${r}=${n}`).join(" ") || "none";
    this.log(`vrrp: ${this.name} stopped; adverts sent ${this.sent}, received ${this.received}, dropped: ${dropped}`);
    await Promise.all(this.#hooks);
  }

  /** Sync groups: follow a member into MASTER or BACKUP. */
  follow(state: "MASTER" | "BACKUP", reason: string): void {
    this.#apply(this.#machine.force(now(), state, reason));
  }

  /** Sync groups: FAULT while a member is faulted (`reason`), cleared with null. */
  setGroupFault(member: string, reason: string | null): void {
    if (reason === null) this.#groupFaults.delete(member);
    else this.#groupFaults.set(member, reason);
    this.#updateTracking();
  }

  /** The drop counters as a plain object, e.g. { ttl: 1, checksum: 2 }. */
  dropCounts(): Record<string, number> {
    return Object.fromEntries(this.drops);
  }

  // ------------------------------------------------------------------------------- receiving

  get intervalCs(): number {
    return this.config.intervalCs;
  }

  receive(advert: Advert, source: Uint8Array, at = now()): void {
    const checked = checkAdvert(advert, this.#expectation);
    if (!checked.ok) {
      this.drop(checked.reason, checked.detail, source);
      return;
    }
    this.received++;
    this.#apply(this.#machine.receive(at, { priority: advert.priority, intervalCs: advert.intervalCs, source }));
  }

  drop(reason: DropReason, detail: string, source: Uint8Array | null): void {
    const count = (this.drops.get(reason) ?? 0) + 1;
    this.drops.set(reason, count);
    const t = now();
    if (t - (this.#lastDropLog.get(reason) ?? -Infinity) < DROP_LOG_INTERVAL_MS) return;
    this.#lastDropLog.set(reason, t);
    const from = source === null ? "" : ` from ${formatIP(source)}`;
    const totals = [...this.drops].map(([r, n]) => `${r}=${n}`).join(" ");
    this.log(`vrrp: ${this.name} dropped advert${from}: ${reason} (${detail}); dropped so far: ${totals}`);
  }

  // --------------------------------------------------------------------------------- effects

  #apply(effects: Effect[]): void {
    for (const effect of effects) {
      if (effect.kind === "send") this.#send(effect.priority);
      else if (effect.kind === "announce") {
        this.log(`vrrp: ${this.name} announcing ${describeAddresses(this.config.addresses)} again (${effect.reason})`);
        this.#announcer.again();
      } else this.#transition(effect.from, effect.to, effect.reason);
    }
    this.#schedule();
  }

  #advert(priority: number): Advert {
    const c = this.config;
    return {
      version: c.version, vrid: c.vrid, priority, intervalCs: c.intervalCs, addresses: this.#expectation.addresses,
      authType: this.#expectation.authType, authData: this.#expectation.authData,
    };
  }

  #send(priority: number): void {
    if (this.#sender === null) return;
    const errors = this.#sender.send(this.#advert(priority));
    this.sent++;
    if (errors.length > 0 && now() - this.#lastSendError > DROP_LOG_INTERVAL_MS) {
      this.#lastSendError = now();
      this.log(`vrrp: ${this.name} cannot send advert: ${errors.join("; ")}`);
    }
  }

  #transition(from: VrrpState, to: VrrpState, reason: string): void {
    this.log(`vrrp: ${this.name} ${from} -> ${to} (${reason})`);
    this.transitions++;
    if (from === "MASTER") {
      this.#announcer.stop();
      this.#logProblems(removeVirtualAddresses(this.#vipIfindex, this.config.addresses));
    }
    if (to === "MASTER") {
      this.#logProblems(addVirtualAddresses(this.#vipIfindex, this.config.addresses));
      this.#announcer.start();
    }
    const state: NotifyState = to === "INIT" ? "STOP" : to;
    const hook = notify(this.config.notify, "INSTANCE", this.name, state, this.#machine.priority, this.log);
    this.#hooks.push(hook);
    void hook.then(() => { this.#hooks = this.#hooks.filter((h) => h !== hook); });
    for (const listener of this.#stateListeners) listener(to, reason);
  }

  #announce(repeat: number): void {
    try {
      this.#announceSender?.send(this.#expectation.addresses, repeat);
    } catch (e) {
      this.log(`vrrp: ${this.name} cannot announce addresses: ${(e as Error).message}`);
    }
  }

  #schedule(): void {
    this.#clearTimer();
    const deadline = this.#machine.nextDeadline();
    if (deadline === null) return;
    // A backup's deadline is a takeover, where every millisecond counts: timers fire a little
    // late, so wake early and wait out the rest. It only runs when the master really went quiet.
    const lead = this.#machine.state === "BACKUP" ? TAKEOVER_LEAD_MS : 0;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const woke = now();
      while (lead > 0 && now() < deadline && now() - woke < 2 * TAKEOVER_LEAD_MS) { /* bounded wait */ }
      this.#apply(this.#machine.tick(now()));
    }, Math.max(0, deadline - now() - lead));
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #logProblems(problems: string[]): void {
    for (const p of problems) this.log(`vrrp: ${this.name} ${p}`);
  }

  // -------------------------------------------------------------------------------- tracking

  #startTracking(): void {
    const c = this.config;
    // The instance's own interface is always tracked: without it there is nothing to hold addresses on.
    const tracked = [{ name: c.interface, weight: 0 }, ...c.trackInterfaces.filter((t) => t.name !== c.interface)];
    for (const t of tracked) {
      const onChange = (up: boolean) => this.#setTracked(`interface ${t.name}`, up, t.weight);
      this.#setTracked(`interface ${t.name}`, links.watch(t.name, onChange), t.weight, false);
      this.#unwatch.push(() => links.unwatch(t.name, onChange));
    }
    for (const t of c.trackScripts) {
      const tracker = this.scripts.get(t.name);
      if (tracker === undefined) continue;
      const onChange = (up: boolean) => this.#setTracked(`script ${t.name}`, up, t.weight);
      tracker.subscribe(onChange);
      // Until its first run a script counts as neither up nor down.
      if (tracker.up !== null) this.#setTracked(`script ${t.name}`, tracker.up, t.weight, false);
    }
    for (const t of c.trackPools) {
      if (this.health === null) {
        this.log(`vrrp: ${c.name} cannot track pool ${t.name}: no health checking runs in this process`);
        continue;
      }
      const watch = watchPool(this.health, t.name, (up) => this.#setTracked(`pool ${t.name}`, up, t.weight));
      this.#setTracked(`pool ${t.name}`, watch.up, t.weight, false);
      this.#unwatch.push(watch.stop);
    }
  }

  #setTracked(what: string, up: boolean, weight: number, update = true): void {
    if (weight === 0) {
      if (up) this.#ownFaults.delete(what);
      else this.#ownFaults.set(what, `${what} down`);
    } else {
      // keepalived: a positive weight counts while up, a negative one while down.
      const applies = weight > 0 ? up : !up;
      if (applies) this.#weights.set(what, weight);
      else this.#weights.delete(what);
    }
    if (update) this.#updateTracking(`${what} ${up ? "up" : "down"}`);
  }

  #updateTracking(cause?: string): void {
    if (this.#machine.state === "INIT") return;
    const t = now();
    const base = this.config.priority;
    const sum = [...this.#weights.values()].reduce((a, b) => a + b, 0);
    // The address owner keeps 255; others stay within 1..254 whatever the weights.
    const priority = base === 255 ? 255 : Math.min(254, Math.max(1, base + sum));
    if (priority !== this.#machine.priority) {
      this.log(`vrrp: ${this.name} priority ${this.#machine.priority} -> ${priority}${cause ? ` (${cause})` : ""}`);
      this.#apply(this.#machine.setPriority(t, priority));
    }
    const own = [...this.#ownFaults.values()];
    const all = [...own, ...this.#groupFaults.values()];
    const ownReason = own.length > 0 ? own.join(", ") : null;
    if (all.length > 0) this.#apply(this.#machine.fault(t, all.join(", ")));
    else this.#apply(this.#machine.recover(t, cause ?? "tracking ok"));
    if (ownReason !== this.#lastOwnFault) {
      this.#lastOwnFault = ownReason;
      for (const listener of this.#faultListeners) listener(ownReason);
    }
  }

  // ------------------------------------------------------------------------------ virtual MAC

  /** keepalived's use_vmac: a macvlan with MAC 00:00:5e:00:01:VRID (02 for IPv6) carries the addresses. */
  async #createVmac(name: string, facts: InterfaceFacts): Promise<void> {
    const mac = Uint8Array.of(0, 0, 0x5e, 0, this.config.family === 4 ? 1 : 2, this.config.vrid);
    const leftover = interfaceIndex(name);
    if (leftover !== null) deleteLink(leftover);
    createMacvlan(facts.ifindex, name, mac);
    const index = interfaceIndex(name);
    if (index === null || getLink(index) === null) throw new Error(`${this.name}: ${name} was not created`);
    this.#vipIfindex = index;
    this.#vipMac = mac;
    // Clients must only ever learn the virtual MAC for a virtual address: the parent answers ARP
    // only for its own addresses (arp_ignore 1), and its ARP requests never name a virtual
    // address as their sender (arp_announce 2), which would make neighbours relearn its MAC.
    if (this.config.family === 4) {
      this.#restoreSysctls.push(await setSysctl(`net/ipv4/conf/${facts.name}/arp_ignore`, "1"));
      this.#restoreSysctls.push(await setSysctl(`net/ipv4/conf/${facts.name}/arp_announce`, "2"));
      await setSysctl(`net/ipv4/conf/${name}/arp_ignore`, "1");
    }
    this.log(`vrrp: ${this.name} virtual MAC ${Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":")} on ${name}`);
  }
}

/** Sets a sysctl (of this network namespace); returns what puts the old value back. */
async function setSysctl(name: string, value: string): Promise<() => Promise<void>> {
  const path = `/proc/sys/${name}`;
  const old = (await runtime.readTextFile(path)).trim();
  await runtime.writeTextFile(path, value);
  return () => runtime.writeTextFile(path, old).catch(() => {}); // the interface may be gone
}
