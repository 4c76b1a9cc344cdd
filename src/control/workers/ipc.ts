// The channel between the supervisor and a worker: newline-delimited JSON over the worker's
// standard input (supervisor to worker) and standard output (worker to supervisor). A worker's
// messages start with a record separator, so its own log lines on the same stdout pass through.
import type { PoolsState } from "./pool-state.ts";
import type { CounterTree } from "./counters.ts";
import type { SegmentPlace } from "./session-segment.ts";
import type { Outcome } from "../../balancer/pool.ts";
import type { LogChunk } from "./log-relay.ts";

/** One session's outcome on a server of a pool with outlier detection: pool, host, port, outcome. */
export type OutcomeRow = [pool: string, host: string, port: number, outcome: Outcome];

/** Marks a worker's message on its stdout; any other line there is a log line. */
export const MESSAGE_MARK = "\x1e";

/** What a worker needs to build what it serves: the config text (parsed and checked as the
 * supervisor did), the hash seed, the shared counts and the pools' state. It listens only when
 * told (`listen`), so a new set of workers starts accepting within moments of each other. */
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
  /** Where its session counts are shared (session-segment.ts), and its own block. */
  shm: SegmentPlace;
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
  | { type: "counters"; id: number; counters: CounterTree }
  | { type: "releasedUdp" }
  /** It applied the pools' state of change `seq`. */
  | { type: "followed"; seq: number }
  /** A session on this server failed (counted toward max_fails in the supervisor). */
  | { type: "failure"; pool: string; host: string; port: number }
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
