// Everything in the `vrrp:` section running together: scripts (shared by the instances that
// track them), instances, and sync groups that make their members fail over together.
import type { SyncGroupConfig, VrrpConfig } from "./config.ts";
import { type Log, VrrpInstance } from "./instance.ts";
import type { VrrpState } from "./machine.ts";
import { notify } from "./notify.ts";
import { type HealthSource, ScriptTracker } from "./track.ts";

export class VrrpService {
  readonly instances: VrrpInstance[];
  readonly #scripts = new Map<string, ScriptTracker>();
  #started: VrrpInstance[] = [];

  constructor(readonly config: VrrpConfig, readonly log: Log = (line) => console.log(line), health: HealthSource | null = null) {
    for (const s of config.scripts) this.#scripts.set(s.name, new ScriptTracker(s, log));
    this.instances = config.instances.map((c) => new VrrpInstance(c, log, this.#scripts, health));
    for (const group of config.syncGroups) this.#linkGroup(group);
  }

  /** Starts every instance; on a failure stops those already started and throws. */
  async start(): Promise<void> {
    const used = new Set(this.config.instances.flatMap((i) => i.trackScripts.map((t) => t.name)));
    for (const [name, tracker] of this.#scripts) if (used.has(name)) tracker.start();
    try {
      for (const instance of this.instances) {
        await instance.start();
        this.#started.push(instance);
      }
    } catch (e) {
      await this.stop();
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
