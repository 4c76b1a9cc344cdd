// A pool's servers from etcd: keys `<prefix>pools/<pool>/servers/<host:port>`, each value empty
// (every default) or JSON like {"weight":2,"state":"drain"}. A full read, then a watch from the
// next revision; a compacted start revision or a lost watch means a full read again. While etcd
// cannot be reached the source reports nothing (the pool keeps its last known servers), says so
// once, and retries with a bounded exponential backoff; when etcd answers again it resyncs.
import { Checker, choice, integer, isMapping } from "../config/checker.ts";
import { type HostPort, hostPort } from "../config/address.ts";
import { SERVER_DEFAULTS } from "../balancer/config.ts";
import { type EtcdClient, EtcdError, type KeyValue } from "./etcd-client.ts";
import type { DiscoveredServer, ServerSource, SourceUpdate } from "./source.ts";

export interface Backoff {
  minMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { minMs: 100, maxMs: 5_000 };
/** A watch must be created within this, or the endpoint counts as unreachable. */
const WATCH_CREATE_TIMEOUT_MS = 3_000;
/** While a watch is open, a small read this often proves etcd still answers: a connection
 * that died without a reset (a partition, a host gone) would otherwise look like a quiet watch. */
const LIVENESS_INTERVAL_MS = 5_000;

/** What a source has done, for logs and metrics. */
export interface SourceStats {
  reads: number;
  events: number;
  /** Keys whose name or value could not be read: logged and ignored. */
  rejected: number;
  /** Requests to etcd that failed (each retry counts). */
  failures: number;
}

export class EtcdPoolSource implements ServerSource {
  readonly stats: SourceStats = { reads: 0, events: 0, rejected: 0, failures: 0 };
  readonly keyPrefix: string;
  private readonly abort = new AbortController();
  private running: Promise<void> | null = null;
  private haveRead = false;
  private readonly readWaiters: (() => void)[] = [];
  /** Set while etcd is unreachable, so the outage is logged once and its end once. */
  private outageSince = 0;

  constructor(
    private readonly client: EtcdClient,
    prefix: string,
    readonly pool: string,
    private readonly log: (line: string) => void = (l) => console.error(l),
    private readonly backoff: Backoff = DEFAULT_BACKOFF,
  ) {
    this.keyPrefix = `${prefix}pools/${pool}/servers/`;
  }

  start(onUpdate: (update: SourceUpdate) => void): void {
    if (this.running) throw new Error(`discovery for pool ${this.pool} started twice`);
    this.running = this.loop(onUpdate);
  }

  firstRead(timeoutMs: number): Promise<boolean> {
    if (this.haveRead) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.readWaiters.push(() => { clearTimeout(timer); resolve(true); });
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async loop(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    const signal = this.abort.signal;
    let delay = this.backoff.minMs;
    while (!signal.aborted) {
      let revision: number;
      try {
        const read = await this.client.rangePrefix(this.keyPrefix);
        // Stopped while the read was out (its pool removed, say): it must not reach the pool.
        if (signal.aborted) return;
        revision = read.revision;
        this.stats.reads++;
        const servers = read.kvs.map((kv) => this.server(kv)).filter((s): s is DiscoveredServer => s !== null);
        onUpdate({ kind: "full", servers });
        if (this.outageSince) {
          this.log(`fulcrum: discovery: etcd answers again after ${Date.now() - this.outageSince} ms: pool ${this.pool} resynced (${servers.length} server(s))`);
          this.outageSince = 0;
        }
        this.markRead();
        delay = this.backoff.minMs;
      } catch (e) {
        if (signal.aborted) return;
        this.failed(e);
        await sleep(jitter(delay), signal);
        delay = Math.min(delay * 2, this.backoff.maxMs);
        continue;
      }
      try {
        await this.watch(revision + 1, onUpdate, signal);
        // A compacted start revision: read again at once.
      } catch (e) {
        if (signal.aborted) return;
        this.failed(e);
        await sleep(jitter(delay), signal);
        delay = Math.min(delay * 2, this.backoff.maxMs);
      }
    }
  }

  /** Follows the watch until it is canceled (compaction: returns) or lost (throws). */
  private async watch(from: number, onUpdate: (update: SourceUpdate) => void, signal: AbortSignal): Promise<void> {
    const stream = new AbortController();
    const stopStream = () => stream.abort();
    signal.addEventListener("abort", stopStream);
    // No "created" in time: the endpoint is not really answering.
    const createTimer = setTimeout(() => stream.abort(new Error("watch not created in time")), WATCH_CREATE_TIMEOUT_MS);
    const liveness = setInterval(() => {
      this.client.get(`${this.keyPrefix}`).catch((e) => stream.abort(new Error(`etcd stopped answering: ${(e as Error).message}`)));
    }, LIVENESS_INTERVAL_MS);
    try {
      for await (const m of this.client.watchPrefix(this.keyPrefix, from, stream.signal)) {
        if (signal.aborted) return;
        if (m.created) clearTimeout(createTimer);
        if (m.canceled) {
          if (m.compactRevision > 0) {
            this.log(`fulcrum: discovery: pool ${this.pool}: revision ${from} was compacted (now ${m.compactRevision}): reading again`);
            return;
          }
          throw new Error("etcd canceled the watch");
        }
        if (m.events.length === 0) continue;
        this.stats.events += m.events.length;
        const upserts: DiscoveredServer[] = [];
        const removed: HostPort[] = [];
        for (const e of m.events) {
          if (e.type === "DELETE") {
            const address = this.address(e.kv.key, false);
            if (address) removed.push(address);
          } else {
            const s = this.server(e.kv);
            if (s) upserts.push(s);
            else {
              // A value that cannot be read takes its server out rather than keep a stale state.
              const address = this.address(e.kv.key, false);
              if (address) removed.push(address);
            }
          }
        }
        onUpdate({ kind: "changes", upserts, removed });
      }
      if (!signal.aborted) throw new Error("the watch stream ended");
    } catch (e) {
      if (signal.aborted || e instanceof EtcdError) throw e;
      const why = stream.signal.aborted ? (stream.signal.reason as Error).message : (e as Error).message.split(". ")[0];
      throw new Error(`etcd watch lost (${why})`);
    } finally {
      clearTimeout(createTimer);
      clearInterval(liveness);
      signal.removeEventListener("abort", stopStream);
    }
  }

  private failed(e: unknown): void {
    this.stats.failures++;
    if (this.outageSince) return;
    this.outageSince = Date.now();
    const kept = this.haveRead ? "keeps its last known servers" : "serves its configured servers until the first read";
    this.log(`fulcrum: discovery: ${(e as Error).message}: pool ${this.pool} ${kept}; retrying (backoff ${this.backoff.minMs} ms to ${this.backoff.maxMs} ms)`);
  }

  private markRead(): void {
    this.haveRead = true;
    for (const w of this.readWaiters.splice(0)) w();
  }

  /** The server a key names, or null (logged and counted) when its name or value is not valid. */
  private server(kv: KeyValue): DiscoveredServer | null {
    const address = this.address(kv.key, true);
    if (!address) return null;
    if (kv.value.trim() === "") return { address, weight: SERVER_DEFAULTS.weight, state: "up" };
    let value: unknown;
    try {
      value = JSON.parse(kv.value);
    } catch {
      return this.reject(kv.key, `expected empty or a JSON object like {"weight":2,"state":"drain"}, got ${JSON.stringify(kv.value.slice(0, 80))}`);
    }
    const c = new Checker();
    const m = c.mapping(value, [], `a JSON object like {"weight":2,"state":"drain"}`);
    if (m && isMapping(m)) {
      c.checkKeys(m, [], ["weight", "state"]);
      const weight = c.optional(m, [], "weight", integer(0, 256), SERVER_DEFAULTS.weight);
      const state = c.optional(m, [], "state", choice(["up", "drain", "maint"] as const), "up");
      if (c.issues.length === 0) return { address, weight, state };
    }
    const issue = c.issues[0];
    return this.reject(kv.key, `${issue.path.length ? `${issue.path.join(".")}: ` : ""}${issue.message}`);
  }

  private address(key: string, countRejection: boolean): HostPort | null {
    const c = new Checker();
    const address = hostPort(true)(c, key.slice(this.keyPrefix.length), []);
    if (address) return address;
    if (countRejection) this.reject(key, c.issues[0].message);
    return null;
  }

  private reject(key: string, why: string): null {
    this.stats.rejected++;
    this.log(`fulcrum: discovery: pool ${this.pool}: ignoring etcd key ${key}: ${why}`);
    return null;
  }
}

function jitter(ms: number): number {
  // ±20%, so nodes that lost etcd together do not all come back in the same millisecond.
  return ms * (0.8 + Math.random() * 0.4);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => { clearTimeout(t); signal.removeEventListener("abort", done); resolve(); };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
