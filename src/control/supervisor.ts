// The supervisor owns the process: it alone handles signals and the order in which generations
// start, take over from each other and stop. SIGINT and SIGTERM stop cleanly (VRRP gives up its
// addresses, requests in flight finish within drain_timeout, exit 0); SIGHUP reloads the config
// file; a config that does not validate keeps the running generation, with every error logged.
// SIGUSR1 (and SIGHUP) reopen the access log files (logrotate moved them).
import process from "node:process";
import { unlink } from "node:fs/promises";
import { runtime } from "../runtime/index.ts";
import { Generation } from "./generation.ts";
import { HealthRelay } from "./health-relay.ts";
import { loadConfigFile } from "./config-file.ts";
import type { Config } from "./schema.ts";
import { notifySystemd } from "./systemd.ts";
import { ControlState } from "./admin-state.ts";
import { AdminService } from "./admin.ts";
import { closeSinks, reopenSinks } from "../log/sink.ts";
import { adminLine, type AdminReload, prepareAdminReload } from "./admin-reload.ts";
import { PhaseTiming } from "./phase-timing.ts";
import { workerCount } from "./workers/config.ts";
import { type ConfigSource, WorkerSet } from "./workers/worker-set.ts";
import { SharedSegments } from "./workers/shared-segments.ts";
import { enableMigrateReq } from "./workers/migrate-req.ts";

export interface SuperviseOptions {
  /** The config file, re-read on reload; null when the config came from flags (`fulcrum proxy`). */
  file: string | null;
  /** Written with the process id once serving, removed at exit (`fulcrum run --pid-file`). */
  pidFile?: string;
  /** Runs once the generation serves (the demo prints its spread here); `adminUrl` is the admin
   * listener's (the dashboard's) URL, null without an admin section. */
  ready?: (generation: Generation, adminUrl: string | null) => Promise<void> | void;
  /** Runs after the generation stopped (the demo stops its backends). */
  stopped?: () => Promise<void> | void;
  /** Stop right after `ready` instead of waiting for a signal (`fulcrum demo --once`). */
  once?: boolean;
  /** The config's text (workers parse it as this process did) or, without a file, the raw value
   * the flags made (`fulcrum proxy`). */
  text?: string;
  raw?: unknown;
  /** Workers from $FULCRUM_WORKERS, over the config's `workers:` (reloads too). */
  workers?: number;
}

/** What a reload came to, for the log, the admin API and metrics. */
export type ReloadResult =
  | { ok: true; generation: number; ms: number; vrrpKept: string[] }
  | { ok: false; generation: number; errors: string[] };

export class Supervisor {
  private reloading: Promise<ReloadResult> | null = null;
  private again = false;
  private readonly retiring = new Set<Promise<void>>();
  private relay: HealthRelay | null = null;
  /** What the admin API and metrics report: the generation now, its checksum, how reloads went. */
  readonly control: ControlState;
  /** The admin API, when the config has an admin section; a reload applies changes to it. */
  admin: AdminService | null = null;

  /** With workers: what the supervisor and its workers share through memory. */
  private shared: SharedSegments | null = null;
  private gatherTimer: ReturnType<typeof setInterval> | null = null;
  private workersOverride: number | null = null;

  private constructor(private current: Generation, private readonly file: string | null) {
    this.control = new ControlState(current, file);
    this.control.reload = () => this.reload();
    this.control.workers = () => this.current.workers instanceof WorkerSet ? this.current.workers.rows() : null;
    this.control.refresh = () => this.current.workers instanceof WorkerSet ? this.current.workers.gatherCounters() : Promise.resolve();
  }


  /** With more than one worker, the generation's listeners are served by a WorkerSet. */
  private attachWorkers(generation: Generation, source: ConfigSource, previous: Generation | null): void {
    const count = this.workersOverride ?? workerCount(generation.config.workers);
    const before = previous ? (previous.workers ? (previous.workers as WorkerSet).count : 1) : null;
    if (before !== null && (before > 1) !== (count > 1)) {
      throw new Error(`workers: changing between 1 and ${Math.max(before, count)} needs a restart (one process's listeners cannot share their ports with workers)`);
    }
    if (count <= 1) return;
    if (!this.shared) {
      this.shared = new SharedSegments(count);
      const migrate = enableMigrateReq();
      if (migrate) console.log(`fulcrum: ${migrate}`);
      // The counters the dashboard's charts sample each second come from the workers.
      this.gatherTimer = setInterval(() => { void this.control.refresh?.(); }, 1000);
      // The workers' loops are the ones that serve (and shed).
      this.control.eventLoopLagMs = () => (this.current.workers as WorkerSet).eventLoopLagMs();
    }
    generation.workers = new WorkerSet(generation, count, source, this.shared, (previous?.workers as WorkerSet | null) ?? null);
  }

  get generation(): Generation {
    return this.current;
  }

  /** Builds and starts the first generation; throws when it cannot start. */
  static async start(config: Config, file: string | null, source: Omit<SuperviseOptions, "file"> = {}): Promise<Supervisor> {
    const first = await Generation.build(config);
    const s = new Supervisor(first, file);
    s.workersOverride = source.workers ?? null;
    s.relay = new HealthRelay(first.health);
    try {
      s.attachWorkers(first, { file: file ?? "<flags>", text: source.text ?? "", raw: source.raw ?? null }, null);
      await first.start(undefined, s.relay);
    } catch (e) {
      s.releaseShared();
      throw e;
    }
    return s;
  }

  private releaseShared(): void {
    if (this.gatherTimer) clearInterval(this.gatherTimer);
    this.shared?.remove();
  }

  /** Re-reads the config file and swaps in a generation built from it. One at a time: a
   * reload asked for while one runs happens once more after it. */
  reload(): Promise<ReloadResult> {
    if (this.reloading) { this.again = true; return this.reloading; }
    this.reloading = this.reloadOnce().finally(() => {
      this.reloading = null;
      if (this.again) { this.again = false; void this.reload(); }
    });
    return this.reloading;
  }

  private async reloadOnce(): Promise<ReloadResult> {
    const began = performance.now(), timing = new PhaseTiming();
    const old = this.current;
    const fail = (errors: string[]): ReloadResult => {
      this.control.reloadFailed(errors);
      console.error(`fulcrum: reload failed; generation ${old.id} goes on serving`);
      void notifySystemd("READY=1");
      return { ok: false, generation: old.id, errors };
    };
    if (!this.file) {
      console.log("fulcrum: SIGHUP: nothing to reload (the configuration came from the command line)");
      return { ok: false, generation: old.id, errors: ["no config file: the configuration came from the command line"] };
    }
    void notifySystemd(`RELOADING=1\nMONOTONIC_USEC=${Math.round(performance.timeOrigin * 1000 + performance.now() * 1000)}`);
    console.log(`fulcrum: reloading ${this.file}`);
    const loaded = await loadConfigFile(this.file);
    if (!loaded.ok) return fail(loaded.errors);
    timing.mark("read and validate");
    let next: Generation, admin: AdminReload | null = null;
    try {
      admin = await prepareAdminReload(this.admin, loaded.config.admin, this.control);
      timing.mark("admin");
      next = await Generation.build(loaded.config, old.id + 1, old, timing);
      this.attachWorkers(next, { file: this.file, text: loaded.text, raw: null }, old);
      timing.mark("health and edge");
      await next.start(old, this.relay ?? undefined);
      timing.mark("start (checks, listeners, vrrp)");
    } catch (e) {
      await admin?.abort();
      console.error(`fulcrum: reload: cannot start the new configuration: ${(e as Error).message}`);
      return fail([(e as Error).message]);
    }
    this.relay?.switchTo(next.health);
    this.current = next;
    this.admin = admin.commit();
    const ms = performance.now() - began;
    const vrrpKept = next.vrrp?.adopted ?? [];
    for (const line of next.listeningLines()) console.log(line);
    console.log(`fulcrum: reload timing: ${timing}; CPU ${timing.cpuMs().toFixed(1)} ms`);
    console.log(`fulcrum: generation ${next.id} serving (reload took ${ms.toFixed(0)} ms${vrrpKept.length ? `; VRRP instances kept as they run: ${vrrpKept.join(", ")}` : ""}); generation ${old.id} finishes what it has in flight`);
    const retired = old.stop(old.config.drainTimeoutMs).catch((e) => console.error(`fulcrum: retiring generation ${old.id}: ${(e as Error).message}`));
    this.retiring.add(retired);
    void retired.then(() => { this.retiring.delete(retired); });
    await this.control.swapped(next, loaded.text);
    void notifySystemd("READY=1");
    return { ok: true, generation: next.id, ms, vrrpKept };
  }

  /** SIGUSR1 (and SIGHUP): the access log files are opened again (with workers too: their
   * lines are written here). */
  reopenLogs(): void {
    reopenSinks();
  }

  /** Stops everything: VRRP first (priority 0), then listeners drain within drain_timeout. */
  async stop(): Promise<void> {
    void notifySystemd("STOPPING=1");
    await this.reloading?.catch(() => {});
    await this.current.stop(this.current.config.drainTimeoutMs);
    await Promise.all(this.retiring);
    this.releaseShared();
  }
}

/** Starts a generation for `config` and serves until SIGINT or SIGTERM; SIGHUP reloads.
 * Returns the exit code: 0 after a clean stop, 1 when it could not start. */
export async function supervise(config: Config, options: SuperviseOptions): Promise<number> {
  let supervisor: Supervisor;
  try {
    supervisor = await Supervisor.start(config, options.file, options);
    supervisor.admin = await startAdmin(config, supervisor);
  } catch (e) {
    console.error(`fulcrum: cannot start: ${(e as Error).message}`);
    await options.stopped?.();
    return 1;
  }
  // Handlers first, then the lines that tell a watcher the process is ready for signals.
  const stopSignal = options.once ? Promise.resolve() : new Promise<void>((resolve) => {
    runtime.onSignal("SIGINT", () => resolve());
    runtime.onSignal("SIGTERM", () => resolve());
    // A reload reopens the access logs too, as nginx's does: on Deno, SIGUSR1 also starts the
    // runtime's inspector on 127.0.0.1:9229 (Deno >= 2.9.2), so logrotate may send SIGHUP instead.
    runtime.onSignal("SIGHUP", () => { supervisor.reopenLogs(); void supervisor.reload(); });
    runtime.onSignal("SIGUSR1", () => supervisor.reopenLogs());
  });
  if (options.pidFile) await runtime.writeTextFile(options.pidFile, `${process.pid}\n`);
  for (const line of supervisor.generation.listeningLines()) console.log(line);
  supervisor.control.phase = "live";
  void notifySystemd("READY=1");
  await options.ready?.(supervisor.generation, supervisor.admin?.url ?? null);
  await stopSignal;
  supervisor.control.phase = "draining";
  await supervisor.admin?.stop();
  await supervisor.stop();
  await closeSinks(); // what the stopped listeners logged last is written
  if (options.pidFile) await unlink(options.pidFile).catch(() => {});
  await options.stopped?.();
  return 0;
}

/** The admin service when the config has an admin section; printed before the listening lines, so
 * a watcher that waits for those can use it. If it cannot start, everything is stopped. A reload
 * applies an edited `admin:` section (admin-reload.ts). */
async function startAdmin(config: Config, supervisor: Supervisor): Promise<AdminService | null> {
  if (!config.admin) return null;
  try {
    await supervisor.control.checksumFile((path) => runtime.readTextFile(path));
    const admin = await AdminService.start(config.admin, supervisor.control);
    console.log(adminLine(admin));
    return admin;
  } catch (e) {
    await supervisor.stop();
    throw e;
  }
}
