// A worker process (`fulcrum` re-run with a hidden subcommand by its supervisor): it builds the
// generation's listeners (the edge and the L4 socket proxy) from the config it is sent, on ports
// shared with the other workers (SO_REUSEPORT: the kernel spreads new connections), and only
// moves traffic. It runs no health checks, VRRP, discovery or admin API: the supervisor sends the
// pools' state (pool-state.ts), and session counts are shared words (session-segment.ts). It stops
// when told to (draining what is in flight) or when its supervisor goes away (stdin closes).
import process from "node:process";
import { runtime } from "../../runtime/index.ts";
import { createDataPlane } from "../../core/wasm.ts";
import { Balancer } from "../../balancer/balancer.ts";
import { Edge } from "../../edge/edge.ts";
import { L4Proxy } from "../../l4/proxy.ts";
import { closeSinks, relayLines } from "../../log/sink.ts";
import { parseConfigText, type Config, type PoolConfig, validateConfig } from "../schema.ts";
import { encodeMessage, type FromWorker, MESSAGE_MARK, type OutcomeRow, readLines, type StartMessage, type ToWorker } from "./ipc.ts";
import { applyPoolsState, type PoolsState } from "./pool-state.ts";
import { collectCounters } from "./counters.ts";
import { openShared, type SharedViews } from "./shared-segments.ts";
import { SharedLock } from "./shared-lock.ts";
import { SHARED_CLOCK } from "./scheduler-segment.ts";
import { loadSampler } from "../../core/overload.ts";
import { LimitSegment, limitTables } from "./limit-segment.ts";
import { useLimitClockBase } from "../../core/limits.ts";
import { SharedCount } from "../../core/shared-count.ts";
import { TurnBatch } from "./turn-batch.ts";
import { LineBatch } from "./log-relay.ts";
import { SharedPassive } from "../../balancer/shared-passive.ts";

/** The hidden subcommand that runs a worker. */
export const WORKER_COMMAND = "__worker";

interface Serving {
  config: Config;
  /** Each of this worker's l4 listeners' index in the config's (udp ones are the first worker's). */
  l4Index: number[];
  balancer: Balancer<PoolConfig>;
  edge: Edge | null;
  l4: L4Proxy | null;
  shared: SharedViews;
  /** Outcomes on pools with outlier detection, for the supervisor's detector (one decision for
   * every worker). */
  outcomes: TurnBatch<OutcomeRow>;
  /** The pools whose outcomes are reported (subscribed once). */
  reporting: Set<string>;
  /** Access log lines, for the supervisor to write. */
  lines: LineBatch;
}

function send(message: FromWorker): void {
  process.stdout.write(encodeMessage(message, MESSAGE_MARK));
}

/** The config a start message carries, each listener's bind its own copy (`listen` sets the
 * port) and shared with the other workers; and each l4 listener's index in the file's list. */
function configOf(m: StartMessage): { config: Config; l4Index: number[] } {
  const parsed = m.raw !== null ? validateConfig(m.raw) : parseConfigText(m.text, m.file);
  if (!parsed.ok) throw new Error(`the configuration does not validate in the worker: ${"message" in parsed ? parsed.message : JSON.stringify(parsed.issues)}`);
  const c = parsed.config;
  c.listeners = c.listeners.map((l) => ({ ...l, reusePort: true, bind: { ...l.bind } }));
  // A UDP socket cannot be shared by the runtimes: the first worker alone serves udp listeners.
  const l4 = c.l4Listeners.map((l, i) => ({ l: { ...l, reusePort: l.protocol === "tcp", bind: { ...l.bind } }, i }))
    .filter(({ l }) => l.protocol === "tcp" || m.index === 0);
  c.l4Listeners = l4.map(({ l }) => l);
  return { config: c, l4Index: l4.map(({ i }) => i) };
}

/** Puts each listener on the port the supervisor gives (null: the config's). */
function setPorts(serving: Serving, ports: (number | null)[], l4Ports: (number | null)[]): void {
  serving.config.listeners.forEach((l, i) => { l.bind.port = ports[i] ?? l.bind.port; });
  serving.config.l4Listeners.forEach((l, i) => { l.bind.port = l4Ports[serving.l4Index[i]] ?? l.bind.port; });
}

async function start(m: StartMessage): Promise<Serving> {
  const { config, l4Index } = configOf(m);
  useLimitClockBase(m.clockBase);
  const dp = await createDataPlane({ seed: m.seed, clock: SHARED_CLOCK });
  const balancer = new Balancer<PoolConfig>(dp, config.pools);
  const outcomes = new TurnBatch<OutcomeRow>((rows) => send({ type: "outcomes", outcomes: rows }));
  const lines = new LineBatch((files) => send({ type: "log", files }));
  relayLines(lines.line);
  const serving: Serving = { config, l4Index, balancer, edge: null, l4: null, shared: openShared(m.shared), outcomes, reporting: new Set(), lines };
  follow(serving, m.pools);
  serving.edge = config.listeners.length > 0 ? new Edge(config, balancer) : null;
  serving.l4 = config.l4Listeners.length > 0 ? new L4Proxy(config.l4Listeners, balancer) : null;
  if (m.limits) LimitSegment.attach(limitTables(serving), m.limits);
  const count = (word: number) => word < 0 ? null : new SharedCount(serving.shared.counts.total, serving.shared.counts.own, word);
  if (serving.edge) serving.edge.sharedConnections = m.connectionWords.http.map(count);
  if (serving.l4) serving.l4.sharedConnections = l4Index.map((i) => count(m.connectionWords.l4[i]));
  return serving;
}

// For each l4 listener of the config, its index among this worker's (-1: not served here).
function allL4(s: Serving): number[] {
  const n = s.l4Index.length === 0 ? 0 : Math.max(...s.l4Index) + 1;
  return Array.from({ length: n }, (_, k) => s.l4Index.indexOf(k));
}

function follow(serving: Serving, pools: PoolsState): void {
  applyPoolsState(serving.balancer, pools);
  const { counts, schedulers: { words, table, estimates, passive }, persistence, queues } = serving.shared;
  for (const p of serving.balancer.all()) {
    p.sharePersistence(persistence);
    const cursor = pools[p.name]?.cursor ?? -1;
    p.setSharedCounts(counts.total, counts.own, {
      cursor, weights: words, table: table(pools[p.name]?.table ?? -1), estimates,
      lock: cursor >= 0 ? new SharedLock(words, cursor) : null,
    });
    const queue = pools[p.name]?.queue ?? -1;
    p.setSharedQueue(queue >= 0 ? queues.pool(queue, process.pid) : null);
    // max_fails in the shared words under the pool's lock (none without its own word: the
    // supervisor counts then).
    p.setSharedPassive(cursor >= 0 ? new SharedPassive(passive, cursor, new SharedLock(words, cursor)) : null);
    p.setFailureSink((s, outUntil) => send({ type: "failure", pool: p.name, host: s.host, port: s.port, outUntil }));
    if (p.config.health.outlier && !serving.reporting.has(p.name)) {
      serving.reporting.add(p.name);
      p.onOutcome((s, outcome) => serving.outcomes.push([p.name, s.host, s.port, outcome]));
    }
  }
}

async function stop(serving: Serving | null, drainMs: number): Promise<never> {
  if (serving) {
    await Promise.all([serving.edge?.retire(drainMs), serving.l4?.retire(drainMs)]);
    serving.outcomes.flush();
    serving.balancer.stop();
  }
  await closeSinks();
  serving?.lines.flush();
  // The last messages (log lines among them) reach the pipe before the process ends (bounded:
  // a supervisor that is gone reads nothing).
  await new Promise<void>((resolve) => {
    setTimeout(resolve, 1000);
    try { process.stdout.write("", () => resolve()); } catch { resolve(); }
  });
  runtime.exit(0);
}

/** Runs the worker until it is told to stop; returns only by exiting. */
export async function runWorker(): Promise<number> {
  let serving: Serving | null = null;
  let stopping = false;
  // The supervisor handles signals for the whole group; a terminal's Ctrl-C reaches workers too,
  // and the supervisor then stops them in order.
  runtime.onSignal("SIGINT", () => {});
  runtime.onSignal("SIGTERM", () => { if (!stopping) { stopping = true; void stop(serving, 0); } });
  runtime.onSignal("SIGHUP", () => {});
  runtime.onSignal("SIGUSR1", () => {}); // its access log lines are the supervisor's to write
  const queue: ToWorker[] = [];
  let busy: Promise<void> = Promise.resolve();
  const handle = async (m: ToWorker) => {
    switch (m.type) {
      case "start":
        try {
          serving = await start(m);
          send({ type: "built" });
        } catch (e) {
          send({ type: "failed", error: (e as Error).message });
          await stop(serving, 0);
        }
        break;
      case "listen": {
        if (!serving) break;
        const s: Serving = serving;
        try {
          setPorts(s, m.ports, m.l4Ports);
          await s.edge?.start();
          await s.l4?.start();
          // The l4 ports in the file's order (0 for a udp listener this worker does not serve).
          const l4Ports = allL4(s).map((i) => i < 0 ? 0 : s.l4!.ports[i]);
          send({ type: "ready", pid: process.pid, ports: s.edge?.ports ?? [], l4Ports });
        } catch (e) {
          send({ type: "failed", error: (e as Error).message });
          await stop(serving, 0);
        }
        break;
      }
      case "pools":
        if (serving) { follow(serving, m.pools); send({ type: "followed", seq: m.seq }); }
        break;
      case "counters":
        if (serving) send({ type: "counters", id: m.id, counters: collectCounters(serving), eventLoopLagMs: loadSampler.lagMs });
        break;
      case "releaseUdp":
        await serving?.l4?.releaseUdp();
        send({ type: "releasedUdp" });
        break;
      case "stop":
        stopping = true;
        await stop(serving, m.drainMs);
    }
  };
  await readLines(runtime.stdin(), (line) => {
    if (!line) return;
    let m: ToWorker;
    try {
      m = JSON.parse(line);
    } catch {
      console.error(`fulcrum worker ${process.pid}: a message from the supervisor is not JSON; ignored`);
      return;
    }
    queue.push(m);
    // In order: a pools update waits for the start it follows.
    busy = busy.then(() => handle(queue.shift()!)).catch((e) => console.error(`fulcrum worker ${process.pid}: ${(e as Error).stack ?? e}`));
  });
  // stdin closed: the supervisor is gone. Nothing would relay health or reloads any more.
  await busy;
  if (!stopping) console.error(`fulcrum worker ${process.pid}: the supervisor is gone; stopping`);
  return stop(serving, 0);
}
