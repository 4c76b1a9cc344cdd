// Access log lines with workers: a worker hands each line to its supervisor (one message per
// turn), which writes every worker's lines into its one sink for the file (src/log/sink.ts). So
// lines reach a file in the order their requests ended whichever worker served them, the file's
// flush interval holds, one process reopens it (logrotate) and /metrics counts what it wrote.
import { acquireSink, type LineRelay, releaseSink, type Sink } from "../../log/sink.ts";
import type { AccessLogConfig } from "../../log/config.ts";
import { TurnBatch } from "./turn-batch.ts";

/** One turn's lines of one file (its sink's path): their text, and how many there are. */
export interface LogChunk {
  path: string;
  text: string;
  lines: number;
}

/** A worker's side: lines in, one batch of chunks per turn out. */
export class LineBatch {
  private readonly decoder = new TextDecoder();
  private readonly batch: TurnBatch<[string, string]>;

  constructor(send: (chunks: LogChunk[]) => void) {
    this.batch = new TurnBatch((rows) => send(chunksOf(rows)));
  }

  /** The relay a worker's sinks hand their lines to (sink.ts relayLines). */
  readonly line: LineRelay = (path, line) => this.batch.push([path, this.decoder.decode(line)]);

  /** Sends what is pending now (the worker stops). */
  flush(): void {
    this.batch.flush();
  }
}

// Lines grouped by file, each file's in the order they came.
function chunksOf(rows: [string, string][]): LogChunk[] {
  const byPath = new Map<string, LogChunk>();
  for (const [path, text] of rows) {
    let c = byPath.get(path);
    if (!c) byPath.set(path, c = { path, text: "", lines: 0 });
    c.text += text;
    c.lines++;
  }
  return [...byPath.values()];
}

/** The supervisor's side: the sinks of one generation's files, held while its workers run (a
 * reload's next set holds the same sinks, so nothing is lost or repeated across it). */
export class LogFiles {
  private readonly sinks = new Map<string, Sink>();
  private readonly held: Sink[] = [];
  private readonly encoder = new TextEncoder();

  /** Opens every file of the listeners' access logs (null: a listener without); throws (closing
   * those opened) when one cannot be opened. */
  constructor(logs: readonly (AccessLogConfig | null | undefined)[]) {
    try {
      for (const log of logs) {
        if (!log) continue;
        const sink = acquireSink(log.path, log.flushMs);
        this.held.push(sink);
        this.sinks.set(sink.path, sink);
      }
    } catch (e) {
      void this.release();
      throw e;
    }
  }

  write(chunks: LogChunk[]): void {
    for (const c of chunks) {
      const sink = this.sinks.get(c.path);
      if (!sink) continue; // not a file of this generation's config
      const bytes = this.encoder.encode(c.text);
      sink.append(bytes, bytes.length, c.lines);
    }
  }

  /** The workers are gone: each file closes when no other generation writes to it. */
  async release(): Promise<void> {
    await Promise.all(this.held.splice(0).map((s) => releaseSink(s)));
  }
}
