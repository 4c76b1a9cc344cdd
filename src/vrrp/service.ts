// Everything in the `vrrp:` section running together: scripts (shared by the instances that
// track them), instances, and sync groups that make their members fail over together.
import type { SyncGroupConfig, VrrpConfig } from "./config.ts";
import { type Log, VrrpInstance } from "./instance.ts";
import type { VrrpState } from "./machine.ts";
import { notify } from "./notify.ts";
import { type HealthSource, ScriptTracker } from "./track.ts";

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export class VrrpService {
  readonly instances: VrrpInstance[];
  readonly #scripts = new Map<string, ScriptTracker>();
  #started: VrrpInstance[] = [];
  /** Instances and scripts taken over, running, from the service a reload replaces. */
  readonly #adopted = new Set<VrrpInstance | ScriptTracker>();
  #from: VrrpService | null = null;

  /** `previous`: the service of the generation a reload replaces. An instance whose settings
   * (and tracked scripts, and sync group) did not change is taken over as it runs: no new
   * election, no flap. The rest start anew; the old ones stop when `previous` does. */
  constructor(readonly config: VrrpConfig, readonly log: Log = (line) => console.log(line), health: HealthSource | null = null,
    previous: VrrpService | null = null) {
    for (const s of config.scripts) {
      const old = previous ? previous.#scripts.get(s.name) : undefined;
      if (old && same(old.config, s)) { this.#scripts.set(s.name, old); this.#adopted.add(old); }
      else this.#scripts.set(s.name, new ScriptTracker(s, log));
    }
    const keep = previous ? this.#unchanged(previous) : new Map<string, VrrpInstance>();
    this.instances = config.instances.map((c) => {
      const old = keep.get(c.name);
      if (old) { this.#adopted.add(old); return old; }
      return new VrrpInstance(c, log, this.#scripts, health);
    });
    if (previous) for (const a of this.#adopted) previous.#release(a);
    this.#from = previous;
    // A group whose members were all taken over keeps its links; the others are linked anew.
    for (const group of config.syncGroups) if (!group.instances.every((n) => keep.has(n))) this.#linkGroup(group);
  }

  /** The previous service's instances this config leaves as they are. */
  #unchanged(previous: VrrpService): Map<string, VrrpInstance> {
    const keep = new Map<string, VrrpInstance>();
    for (const c of this.config.instances) {
      const old = previous.instances.find((i) => i.name === c.name);
      if (!old || !previous.#started.includes(old) || !same(old.config, c)) continue;
      if (!c.trackScripts.every((t) => this.#adopted.has(this.#scripts.get(t.name)!))) continue;
      keep.set(c.name, old);
    }
    // Sync-group members move together or not at all (their links join them).
    for (const group of this.config.syncGroups) {
      const before = previous.config.syncGroups.find((g) => g.name === group.name);
      if (!before || !same(before, group) || !group.instances.every((n) => keep.has(n))) for (const n of group.instances) keep.delete(n);
    }
    for (const group of previous.config.syncGroups) {
      if (!this.config.syncGroups.some((g) => g.name === group.name)) for (const n of group.instances) keep.delete(n);
    }
    return keep;
  }

  /** Hands an instance or script over to the next service: this one will not stop it. */
  #release(item: VrrpInstance | ScriptTracker): void {
    this.#started = this.#started.filter((i) => i !== item);
    for (const [name, t] of this.#scripts) if (t === item) this.#scripts.delete(name);
  }

  /** A reload that failed: what was taken over goes back to the service it came from (still
   * running, untouched); what this one started stops. */
  async abandon(): Promise<void> {
    const from = this.#from;
    const mine = this.#started.filter((i) => !this.#adopted.has(i));
    this.#started = [];
    await Promise.all(mine.map((i) => i.stop()));
    for (const [name, t] of this.#scripts) if (!this.#adopted.has(t)) { t.stop(); this.#scripts.delete(name); }
    if (!from) return;
    for (const a of this.#adopted) {
      if (a instanceof VrrpInstance) from.#started.push(a);
      else from.#scripts.set(a.config.name, a);
    }
    this.#adopted.clear();
  }

  /** Names of the instances taken over from the previous service. */
  get adopted(): string[] {
    return this.instances.filter((i) => this.#adopted.has(i)).map((i) => i.name);
  }

  /** Starts every instance (those taken over run already); on a failure stops those already
   * started and throws. */
  async start(): Promise<void> {
    const used = new Set(this.config.instances.flatMap((i) => i.trackScripts.map((t) => t.name)));
    for (const [name, tracker] of this.#scripts) if (used.has(name) && !this.#adopted.has(tracker)) tracker.start();
    try {
      for (const instance of this.instances) {
        if (!this.#adopted.has(instance)) await instance.start();
        this.#started.push(instance);
      }
    } catch (e) {
      if (this.#from) await this.abandon(); // a reload: what was taken over goes back, running
      else await this.stop();
      throw e;
    }
  }

  /** Gives up every virtual address (priority-0 adverts from masters) and closes everything. */
  async stop(): Promise<void> {
    for (const tracker of this.#scripts.values()) tracker.stop();
    const started = this.#started.splice(0);
    await Promise.all(started.map((i) => i.stop()));
  }

  #linkGroup(group: SyncGroupConfig): void {
    const members = group.instances.map((name) => this.instances.find((i) => i.name === name)!).filter(Boolean);
    let groupState: VrrpState = "INIT";
    for (const member of members) {
      member.onState((to, reason) => {
        if (to === "INIT") return;
        if (to !== groupState) {
          groupState = to;
          this.log(`vrrp: sync group ${group.name} is ${to} (${member.name}: ${reason})`);
          void notify(group.notify, "GROUP", group.name, to, member.priority, this.log);
        }
        if (to !== "MASTER" && to !== "BACKUP") return;
        for (const other of members) {
          if (other !== member && other.state !== to) other.follow(to, `sync group ${group.name}: ${member.name} is ${to}`);
        }
      });
      member.onOwnFault((reason) => {
        for (const other of members) {
          if (other !== member) other.setGroupFault(member.name, reason === null ? null : `sync group ${group.name}: ${member.name} ${reason}`);
        }
      });
    }
  }
}
