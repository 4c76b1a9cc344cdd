// The channel between the supervisor and a worker: newline-delimited JSON over the worker's
// standard input (supervisor to worker) and standard output (worker to supervisor). A worker's
// messages start with a record separator, so its own log lines on the same stdout pass through.
import type { PoolsState } from "./pool-state.ts";
import type { CounterTree } from "./counters.ts";
import type { SharedPlaces } from "./shared-segments.ts";
import type { LimitSegmentPlace } from "./limit-segment.ts";
import type { Outcome } from "../../balancer/pool.ts";
import type { LogChunk } from "./log-relay.ts";

/** One session's outcome on a server of a pool with outlier detection: pool, host, port, outcome. */
export type OutcomeRow = [pool: string, host: string, port: number, outcome: Outcome];

/** Marks a worker's message on its stdout; any other line there is a log line. */
export const MESSAGE_MARK = "\x1e";

/** What a worker needs to build what it serves: the config text (parsed and checked as the
 * supervisor did), the hash seed, where the shared memory is, and the pools' state. It listens
 * only when told (`listen`), so a new set of workers starts accepting within moments of each other. */
export interface StartMessage {
  type: "start";
  index: number;
  /** The supervisor's generation this worker serves. */
  generation: number;
  file: string;
  text: string;
  /** The raw config, when it came from flags (`fulcrum proxy`): used instead of `text`. */
  raw: unknown | null;
  /** The data plane's hash seed: keyed picks (mh, sh, ketama ...) agree with the supervisor's. */
  seed: number;
  /** The segments it shares with the supervisor and the other workers (shared-segments.ts). */
  shared: SharedPlaces;
  /** Where the generation's rate_limit and conn_limit tables are shared (limit-segment.ts), null
   * without any; and the supervisor's limit clock base (one time base for the shared tables). */
  limits: LimitSegmentPlace | null;
  clockBase: number;
  /** Each listener's word in the shared counts for its open connections (max_connections), in
   * the file's order: http listeners, then l4 ones (-1: counted in each worker alone, udp). */
  connectionWords: { http: number[]; l4: number[] };
  pools: PoolsState;
}

export type ToWorker =
  | StartMessage
  /** Per http listener, and per l4 listener, in config order: the port to bind (the first
   * worker's, when the file says 0), null: the config's. */
  | { type: "listen"; ports: (number | null)[]; l4Ports: (number | null)[] }
  /** The pools' state as of change `seq` (counted by the supervisor), to answer "followed". */
  | { type: "pools"; pools: PoolsState; seq: number }
  | { type: "counters"; id: number }
  /** Close the udp listeners now: the next generation's first worker binds their ports. */
  | { type: "releaseUdp" }
  | { type: "stop"; drainMs: number };

export type FromWorker =
  | { type: "built" }
  | { type: "ready"; pid: number; ports: number[]; l4Ports: number[] }
  | { type: "failed"; error: string }
  /** With its overload sampler's event loop lag now (0 while none of its listeners has a guard):
   * a gauge, so the worst worker's is reported, not a sum. */
  | { type: "counters"; id: number; counters: CounterTree; eventLoopLagMs: number }
  | { type: "releasedUdp" }
  /** It applied the pools' state of change `seq`. */
  | { type: "followed"; seq: number }
  /** A session on this server failed. `outUntil` null: the supervisor counts it toward max_fails
   * (the server has no shared words); else the worker's count reached max_fails and the server
   * is out until then (the shared clock), for the supervisor's log, state and relay. */
  | { type: "failure"; pool: string; host: string; port: number; outUntil: number | null }
  /** The outcomes of one turn, in order (the supervisor's outlier detection learns from all). */
  | { type: "outcomes"; outcomes: OutcomeRow[] }
  /** Access log lines of one turn, by file: the supervisor writes them (log-relay.ts). */
  | { type: "log"; files: LogChunk[] };

export function encodeMessage(message: ToWorker | FromWorker, mark = ""): Uint8Array {
  return new TextEncoder().encode(`${mark}${JSON.stringify(message)}\n`);
}

/** Calls `line` with each line of the stream (without its newline) until the stream ends. */
export async function readLines(stream: ReadableStream<Uint8Array>, line: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      line(text);
    }
  }
  if (buffered) line(buffered);
}
