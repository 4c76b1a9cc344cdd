// The supervisor's side of one generation's workers: it starts them (the first binds the ports,
// the others share them), sends them the pools' state after every change, gathers their counters
// for the admin API and /metrics, restarts one that exits unexpectedly (with back-off, logged)
// while the others go on serving, and stops them (draining) when the generation retires.
import process from "node:process";
import { type Child, runtime } from "../../runtime/index.ts";
import type { Generation } from "../generation.ts";
import { encodeMessage, type FromWorker, MESSAGE_MARK, type OutcomeRow, readLines, type StartMessage, type ToWorker } from "./ipc.ts";
import { poolsState } from "./pool-state.ts";
import { addCounters, counterTargets, type CounterTree, withoutGauges, zeroCounters } from "./counters.ts";
import { WORKER_COMMAND } from "./worker.ts";
import { SharedLock } from "./shared-lock.ts";
import type { SharedPlaces, SharedSegments } from "./shared-segments.ts";
import { LimitSegment, limitTables } from "./limit-segment.ts";
import { limitClock, limitClockBase } from "../../core/limits.ts";
import { type LogChunk, LogFiles } from "./log-relay.ts";
import { FollowWait } from "./follow-wait.ts";
import { SharedPassive } from "../../balancer/shared-passive.ts";

/** Where the config came from: the file's text, or the raw value `fulcrum proxy` made. */
export interface ConfigSource {
  file: string;
  text: string;
  raw: unknown | null;
}

export interface WorkerRow {
  index: number;
  pid: number;
  state: "starting" | "serving" | "restarting" | "stopping";
  restarts: number;
  startedAt: number;
  /** HTTP requests it served (its listeners' counters at the last gathering). */
  requests: number;
  /** How late its overload sampler ran at the last gathering, ms (0: no guard). */
  eventLoopLagMs: number;
}

/** How long the supervisor waits for a worker's counters before it answers without them. */
const COUNTERS_TIMEOUT_MS = 1000;
/** Back-off between restarts of a worker that keeps exiting: doubles up to the last. */
const RESTART_MIN_MS = 100, RESTART_MAX_MS = 10_000;
/** A worker that ran this long before it exited is restarted after the shortest back-off again. */
const STEADY_MS = 30_000;
/** How long a worker may take to listen after it was started. */
const START_TIMEOUT_MS = 20_000;

type Ready = FromWorker & { type: "ready" };

/** What a worker reports about its traffic, for the supervisor to act on. */
interface WorkerReports {
  /** A session on this server failed (max_fails). */
  failure(m: FromWorker & { type: "failure" }): void;
  /** Sessions' outcomes, in order (outlier detection). */
  outcomes(rows: OutcomeRow[]): void;
  /** Access log lines. */
  log(chunks: LogChunk[]): void;
  /** It applied a pools' state. */
  followed(): void;
}

/** How long a line waits for workers to follow a change before it is written anyway. */
const FOLLOW_TIMEOUT_MS = 1000;

class WorkerProcess {
  readonly child: Child;
  state: WorkerRow["state"] = "starting";
  /** The last pools' state it applied (its start message's, then each "followed"). */
  followed: number;
  readonly startedAt = Date.now();
  lastCounters: CounterTree | null = null;
  eventLoopLagMs = 0;
  private readonly waits = new Map<number, (t: CounterTree) => void>();
  private udpReleased: (() => void) | null = null;
  /** Built what it serves (listening not yet). */
  readonly built: Promise<void>;
  private readyWait: { ok: (m: Ready) => void; fail: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private failBuilt!: (e: Error) => void;
  /** Ends once everything it wrote on its stdout was read (after it exited). */
  readonly output: Promise<void>;

  constructor(readonly index: number, start: StartMessage, seq: number, reports: WorkerReports) {
    this.followed = seq;
    const child = this.child = runtime.spawn(runtime.selfCommand([WORKER_COMMAND]), { stdin: true, inheritStderr: true });
    let builtOk!: () => void;
    this.built = new Promise((ok, fail) => { builtOk = ok; this.failBuilt = fail; });
    const timer = setTimeout(() => this.fail(new Error(`worker ${index} was not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    void child.exited.then((code) => { clearTimeout(timer); this.fail(new Error(`worker ${index} exited with code ${code} before it listened`)); });
    this.output = readLines(child.stdout, (line) => {
      if (!line.startsWith(MESSAGE_MARK)) { console.log(line); return; }
      let m: FromWorker;
      try { m = JSON.parse(line.slice(MESSAGE_MARK.length)); } catch { return; }
      if (m.type === "built") builtOk();
      else if (m.type === "ready") { clearTimeout(timer); this.state = "serving"; this.readyWait?.ok(m); this.readyWait = null; }
      else if (m.type === "failed") this.fail(new Error(m.error));
      else if (m.type === "failure") reports.failure(m);
      else if (m.type === "outcomes") reports.outcomes(m.outcomes);
      else if (m.type === "log") reports.log(m.files);
      else if (m.type === "followed") { this.followed = m.seq; reports.followed(); }
      else if (m.type === "releasedUdp") { this.udpReleased?.(); this.udpReleased = null; }
      else if (m.type === "counters") { this.lastCounters = m.counters; this.eventLoopLagMs = m.eventLoopLagMs; this.waits.get(m.id)?.(m.counters); this.waits.delete(m.id); }
    }).catch(() => {});
    this.send(start);
  }

  // A start that went wrong fails whichever wait is on (once started, an exit is exited()'s).
  private fail(e: Error): void {
    if (this.state !== "starting") return;
    this.failure ??= e;
    this.failBuilt(e);
    this.readyWait?.fail(e);
    this.readyWait = null;
  }

  /** Opens its listeners on `ports` (null: the config's); resolves the ports bound. */
  listen(ports: (number | null)[], l4Ports: (number | null)[]): Promise<Ready> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((ok, fail) => {
      this.readyWait = { ok, fail };
      this.send({ type: "listen", ports, l4Ports });
    });
  }

  /** Asks it to close its udp listeners; resolves once it did (or within `timeoutMs`). */
  releaseUdp(timeoutMs: number): Promise<void> {
    if (this.state !== "serving") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.udpReleased = () => { clearTimeout(timer); resolve(); };
      this.send({ type: "releaseUdp" });
    });
  }

  get pid(): number { return this.child.pid; }

  send(m: ToWorker): void {
    this.child.stdin?.write(encodeMessage(m));
  }

  counters(id: number, timeoutMs: number): Promise<CounterTree | null> {
    if (this.state !== "serving") return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waits.delete(id); resolve(null); }, timeoutMs);
      this.waits.set(id, (t) => { clearTimeout(timer); resolve(t); });
      this.send({ type: "counters", id });
    });
  }
}

export class WorkerSet {
  private readonly workers: WorkerProcess[] = [];
  private readonly restarts: number[] = [];
  private readonly backoff: number[] = [];
  private stopping = false;
  private starting = true;
  private ports: (number | null)[] = [];
  private l4Ports: (number | null)[] = [];
  /** The last counters of workers that exited (restarted ones): counters stay monotonic. */
  private readonly departed: CounterTree = {};
  private nextId = 1;
  private pushQueued = false;
  /** Changes of the pools' state sent to the workers so far. */
  private pushed = 0;
  /** What waits for the serving workers to follow a change. */
  private readonly follows = new FollowWait(() => {
    const serving = this.workers.filter((w) => w?.state === "serving");
    return serving.length === 0 ? Infinity : Math.min(...serving.map((w) => w.followed));
  }, FOLLOW_TIMEOUT_MS);
  private readonly unwatch: (() => void)[] = [];
  /** The generation's limit tables, shared by its workers (null: it has none). */
  private limits: LimitSegment | null = null;
  /** The access log files its workers' lines are written to (open from start to stop). */
  private logs: LogFiles | null = null;

  constructor(
    private readonly generation: Generation,
    readonly count: number,
    private readonly source: ConfigSource,
    private readonly shared: SharedSegments,
    /** The previous generation's workers (a reload): listeners on the same address keep its ports. */
    private readonly previous: WorkerSet | null,
  ) {
    const config = generation.config;
    this.ports = config.listeners.map((l) => {
      const i = previous?.generation.config.listeners.findIndex((o) => o.bind.host === l.bind.host && o.bind.port === l.bind.port) ?? -1;
      return i >= 0 ? previous!.ports[i] : l.bind.port === 0 ? null : l.bind.port;
    });
    this.l4Ports = config.l4Listeners.map((l) => {
      const i = previous?.generation.config.l4Listeners.findIndex((o) => o.protocol === l.protocol && o.bind.host === l.bind.host && o.bind.port === l.bind.port) ?? -1;
      return i >= 0 ? previous!.l4Ports[i] : l.bind.port === 0 ? null : l.bind.port;
    });
  }

  /** Starts the workers: the first one binds (a port the config leaves to the kernel is chosen
   * there), then the others share its ports. Throws when one cannot listen (all are stopped). */
  async start(): Promise<void> {
    const pools = this.generation.balancer;
    const { listeners, l4Listeners } = this.generation.config;
    this.logs = new LogFiles([...listeners, ...l4Listeners].map((l) => l.accessLog));
    for (const p of pools.all()) this.watch(p);
    this.unwatch.push(pools.onPools(({ type, pool }) => { if (type === "added") this.watch(pool); this.schedulePush(); }));
    try {
      this.limits = LimitSegment.share(limitTables(this.generation), `limits-${this.generation.id}`);
      // All build at once; then they listen within moments of each other (the first alone
      // first, when a port is the kernel's to choose), so during a reload the old and new
      // workers both accept only for that moment.
      const spawned = Array.from({ length: this.count }, (_, i) => this.spawn(i));
      await Promise.all(spawned.map((w) => w.built));
      // UDP ports cannot be shared: the previous first worker lets go of them first (a moment
      // without a udp listener, which a reload of one process does not have).
      if (this.previous && this.generation.config.l4Listeners.some((l) => l.protocol === "udp")) {
        await this.previous.workers[0]?.releaseUdp(5000);
      }
      // An unchanged rate_limit goes on from the serving workers' table (as a reload of one
      // process carries it, Edge.start): copied as late as possible, just before these accept.
      const before = this.previous?.generation.edge;
      if (before) this.generation.edge?.clientLimits.carryFrom(before.clientLimits);
      const first = await spawned[0].listen(this.ports, this.l4Ports);
      this.ports = this.ports.map((p, k) => p ?? first.ports[k]);
      this.l4Ports = this.l4Ports.map((p, k) => p ?? first.l4Ports[k]);
      await Promise.all(spawned.slice(1).map((w) => w.listen(this.ports, this.l4Ports)));
    } catch (e) {
      await this.stop(0);
      throw e;
    }
    this.starting = false;
    const { words, estimates, passive } = this.shared.schedulers.views;
    for (const p of pools.all()) {
      // No picks here: the scheduler's shared state only for what /metrics reads of it (least_time's estimates).
      const cursor = this.shared.index.cursorOf(p.name);
      p.setSharedCounts(this.shared.sessions.total, null, {
        cursor: -1, weights: null, table: null, estimates, lock: new SharedLock(words, cursor),
      });
      if (cursor >= 0) p.adoptPassive(new SharedPassive(passive, cursor, new SharedLock(words, cursor)));
      const queue = this.shared.index.queueOf(p.name); // its length is the queue's over all workers
      p.setSharedQueue(queue >= 0 ? this.shared.queues.pool(queue, process.pid) : null);
    }
    this.generation.edge?.mirror(this.ports as number[]);
    this.generation.l4?.mirror(this.l4Ports as number[]);
  }

  private watch(pool: { onChange(w: () => void): () => void }): void {
    this.unwatch.push(pool.onChange(() => this.schedulePush()));
  }

  // Changes come in bursts (a reload's, a slow start's steps): one state message per turn, sent
  // at the end of the turn that made them, before this process writes anything else (a log
  // line saying DOWN reaches a reader after the workers were told).
  private schedulePush(): void {
    if (this.pushQueued || this.stopping) return;
    this.pushQueued = true;
    queueMicrotask(() => {
      this.pushQueued = false;
      if (this.stopping) return;
      const pools = poolsState(this.generation.balancer, this.shared.index), seq = ++this.pushed;
      for (const w of this.workers) if (w.state === "serving" || w.state === "starting") w.send({ type: "pools", pools, seq });
    });
  }

  afterFollowed(then: () => void): void {
    if (this.stopping) { then(); return; }
    // A change made this turn is sent at its end: wait for that one.
    this.follows.add(this.pushed + (this.pushQueued ? 1 : 0), then);
  }

  private startMessage(index: number, shared: SharedPlaces): StartMessage {
    return {
      type: "start", index, generation: this.generation.id, file: this.source.file, text: this.source.text, raw: this.source.raw,
      seed: this.generation.balancer.dp.seed,
      shared, limits: this.limits?.place ?? null, clockBase: limitClockBase(),
      connectionWords: {
        http: this.generation.config.listeners.map((l) => this.shared.index.listenerOf(l.name)),
        l4: this.generation.config.l4Listeners.map((l) => l.protocol === "tcp" ? this.shared.index.listenerOf(l.name) : -1),
      },
      pools: poolsState(this.generation.balancer, this.shared.index),
    };
  }

  private spawn(index: number): WorkerProcess {
    const places = this.shared.allocate();
    const balancer = this.generation.balancer;
    const w = new WorkerProcess(index, this.startMessage(index, places), this.pushed, {
      failure: ({ pool, host, port, outUntil }) => {
        const p = balancer.get(pool), s = p?.find(host, port);
        if (!p || !s) return;
        // Out already in every worker's picks (the shared words); here for the log and the API.
        if (outUntil !== null) p.passiveOut(s, (outUntil - limitClock()) | 0);
        else p.reportFailure(s); // max_fails over every worker; "passive" is sent back
      },
      outcomes: (rows) => {
        // Outlier detection over every worker's outcomes; "outlier" is sent back.
        for (const [pool, host, port, outcome] of rows) {
          const p = balancer.get(pool), s = p?.find(host, port);
          if (p && s) p.observe(s, outcome);
        }
      },
      log: (chunks) => this.logs?.write(chunks),
      followed: () => this.follows.check(),
    });
    // However it ends, what it still counted leaves the totals, and its waits the queues (with
    // the slots granted to them).
    void w.child.exited.then(() => {
      this.shared.sessions.release(places.sessions.slot);
      this.shared.queues.releaseOf(w.pid, (word) => Atomics.sub(this.shared.sessions.total, word, 1));
    });
    this.workers[index] = w;
    this.restarts[index] ??= 0;
    console.log(`fulcrum: worker ${index} (pid ${w.pid}) of generation ${this.generation.id} started`);
    void w.child.exited.then((code) => this.exited(w, code));
    return w;
  }

  private exited(w: WorkerProcess, code: number): void {
    if (w.lastCounters) addCounters(this.departed, withoutGauges(w.lastCounters), true);
    // While the set starts, a worker that exits fails the start itself (start() stops the rest).
    if (this.stopping || this.starting || this.workers[w.index] !== w) return;
    const lived = Date.now() - w.startedAt;
    const delay = this.backoff[w.index] = lived > STEADY_MS ? RESTART_MIN_MS : Math.min(RESTART_MAX_MS, (this.backoff[w.index] ?? RESTART_MIN_MS / 2) * 2);
    w.state = "restarting";
    this.follows.check(); // what waited for it waits no more
    console.error(`fulcrum: worker ${w.index} (pid ${w.pid}) of generation ${this.generation.id} exited unexpectedly (code ${code}); restarting it in ${delay} ms, the other workers go on serving`);
    setTimeout(() => {
      if (this.stopping) return;
      this.restarts[w.index]++;
      const next = this.spawn(w.index);
      next.built.then(() => next.listen(this.ports, this.l4Ports)).then(
        () => console.log(`fulcrum: worker ${w.index} restarted (pid ${next.pid})`),
        (e) => console.error(`fulcrum: worker ${w.index} could not restart: ${(e as Error).message}`),
      );
    }, delay);
  }

  /** The workers as /api/workers lists them. */
  rows(): WorkerRow[] {
    return this.workers.map((w) => ({
      index: w.index, pid: w.pid, state: w.state, restarts: this.restarts[w.index] ?? 0, startedAt: w.startedAt,
      requests: sumRequests(w.lastCounters), eventLoopLagMs: w.eventLoopLagMs,
    }));
  }

  /** The worst event loop lag of the workers at the last gathering, ms. */
  eventLoopLagMs(): number {
    return this.workers.reduce((worst, w) => Math.max(worst, w.eventLoopLagMs), 0);
  }

  /** Asks every worker for its counters (each within a bounded wait) and writes their sum, with
   * the last counters of workers that exited, into the generation's listeners, routes, servers
   * and pools, which the admin API and /metrics read. */
  async gatherCounters(): Promise<void> {
    const id = this.nextId++;
    const trees = await Promise.all(this.workers.map((w) => w.counters(id, COUNTERS_TIMEOUT_MS)));
    const sum: CounterTree = {};
    addCounters(sum, this.departed, true);
    // A worker that did not answer in time counts with what it last said.
    this.workers.forEach((w, i) => { const t = trees[i] ?? w.lastCounters; if (t) addCounters(sum, t, true); });
    const targets = counterTargets(this.generation);
    zeroCounters(targets, sum);
    addCounters(targets, sum);
  }

  /** Stops every worker: each drains what it has in flight (at most `drainMs`), then exits; one
   * that does not exit within drainMs + 5 s is killed. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    this.follows.check(true);
    for (const u of this.unwatch.splice(0)) u();
    await Promise.all(this.workers.map(async (w) => {
      if (!w) return;
      w.state = "stopping";
      w.send({ type: "stop", drainMs });
      w.child.stdin?.close();
      const timer = setTimeout(() => w.child.kill("SIGKILL"), drainMs + 5000);
      await w.child.exited;
      clearTimeout(timer);
      await w.output; // its last log lines
    }));
    this.limits?.close();
    await this.logs?.release();
    this.logs = null;
  }
}

function sumRequests(t: CounterTree | null): number {
  let n = 0;
  for (const l of Object.values((t?.listeners ?? {}) as CounterTree)) n += ((l as CounterTree).requests as number) ?? 0;
  return n;
}
