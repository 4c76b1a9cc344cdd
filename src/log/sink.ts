// Where access log lines go: a file (or stdout) written in batches off the request path. Lines
// are copied into a buffer; it is written with one write when it passes FLUSH_BYTES or when its
// oldest line has waited `flushMs`. While a write is in flight the next batch fills the other
// buffer, which may grow to MAX_PENDING; past that, lines are dropped and counted: memory stays
// bounded when the disk cannot keep up. One sink per path, shared by every listener (and every
// generation) that logs there, so a reload neither loses nor repeats lines; SIGUSR1 reopens the
// file at its path (logrotate moves it, then signals). In a worker (src/control/workers) lines
// are relayed instead: its supervisor writes every worker's into its own sink for the path.
import { resolve } from "node:path";
import { runtime } from "../runtime/index.ts";
import type { AppendFile } from "../runtime/types.ts";

/** A batch this large is written at once, without waiting for the timer. */
const FLUSH_BYTES = 64 * 1024;
/** The most a batch may hold while the previous one is being written. */
const MAX_PENDING = 4 * 1024 * 1024;
/** How long closing waits for a write in flight. */
const CLOSE_WAIT_MS = 2000;

function openForAppend(path: string): AppendFile {
  try {
    return runtime.openAppend(path);
  } catch (e) {
    throw new Error(`access_log ${path}: cannot open: ${(e as Error).message}`);
  }
}

/** What an access log writes its lines into. */
export interface Sink {
  readonly path: string;
  refs: number;
  /** What this process wrote to the file (metrics). */
  readonly linesWritten: number;
  readonly linesDropped: number;
  readonly bytesWritten: number;
  readonly writeErrors: number;
  /** Queues line[0, n) (newline included; `lines` of them): copied, so the caller may reuse its
   * buffer. Never blocks, never throws. */
  append(line: Uint8Array, n?: number, lines?: number): void;
  reopen(): void;
  close(): Promise<void>;
}

export class LogSink implements Sink {
  /** Lines written, and lines dropped (buffer full, or a failed write). */
  linesWritten = 0;
  linesDropped = 0;
  bytesWritten = 0;
  writeErrors = 0;
  refs = 0;
  private file: AppendFile;
  private buf = new Uint8Array(FLUSH_BYTES * 2);
  /** The buffer of the write in flight, or the idle one. */
  private other = new Uint8Array(FLUSH_BYTES * 2);
  private len = 0;
  private lines = 0;
  private writing = false;
  /** The file the write in flight goes to (a reopen closes it after that write). */
  private writingTo: AppendFile | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private failing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(readonly path: string, private readonly flushMs: number) {
    this.file = openForAppend(path);
  }

  append(line: Uint8Array, n = line.length, lines = 1): void {
    if (this.closed) { this.linesDropped += lines; return; }
    if (this.len + n > this.buf.length && !this.makeRoom(n)) { this.linesDropped += lines; return; }
    const b = this.buf;
    let p = this.len;
    // A loop copies a line this short faster than a view for set() is made.
    if (n < 256) for (let i = 0; i < n; i++) b[p++] = line[i];
    else { b.set(line.subarray(0, n), p); p += n; }
    this.len = p;
    this.lines += lines;
    if (this.writing) return; // the write's end looks at what waits
    if (p >= FLUSH_BYTES) this.flush();
    else this.arm();
  }

  /** The batch's oldest line waits at most flushMs. */
  private arm(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => { this.timer = null; if (!this.writing && this.len > 0) this.flush(); }, this.flushMs);
  }

  /** Makes room for n more bytes: writes the batch now if no write is in flight, else grows the
   * buffer up to MAX_PENDING. False: the line does not fit (dropped). */
  private makeRoom(n: number): boolean {
    if (!this.writing && this.len > 0) {
      this.flush();
      if (n <= this.buf.length) return true;
    }
    const need = this.len + n;
    if (need > MAX_PENDING) return false;
    const grown = new Uint8Array(Math.min(MAX_PENDING, Math.max(need, this.buf.length * 2)));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
    return true;
  }

  /** Writes the batch with one write (more only if the kernel took part of it). */
  private flush(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const out = this.buf, n = this.len, lines = this.lines;
    this.buf = this.other;
    this.other = out;
    this.len = this.lines = 0;
    this.writing = true;
    this.writingTo = this.file;
    this.writeFrom(out, 0, n, lines);
  }

  private writeFrom(out: Uint8Array, at: number, n: number, lines: number): void {
    this.writingTo!.write(at === 0 && n === out.length ? out : out.subarray(at, n)).then((written) => {
      if (at + written < n) { this.writeFrom(out, at + written, n, lines); return; }
      this.linesWritten += lines;
      this.bytesWritten += n;
      this.failing = false;
      this.written();
    }, (err) => { this.failed(err as Error, lines); this.written(); });
  }

  private failed(err: Error, lines: number): void {
    this.writeErrors++;
    this.linesDropped += lines;
    // Once per run of failures, not once per batch.
    if (!this.failing) console.error(`fulcrum: access log ${this.path}: write failed (${err.message}); ${lines} lines dropped`);
    this.failing = true;
  }

  private written(): void {
    this.writing = false;
    if (this.writingTo !== this.file) closeQuietly(this.writingTo!); // reopened meanwhile
    this.writingTo = null;
    for (const wake of this.idleWaiters.splice(0)) wake();
    if (this.closed || this.len === 0) return;
    if (this.len >= FLUSH_BYTES) this.flush();
    else this.arm();
  }

  /** Opens the path again (logrotate moved the file): lines from now on, and those still
   * buffered, go to the new file; a write in flight finishes on the old one. */
  reopen(): void {
    if (this.path === "stdout" || this.closed) return;
    let file: AppendFile;
    try {
      file = openForAppend(this.path);
    } catch (e) {
      console.error(`fulcrum: ${(e as Error).message}; still writing to the file opened before`);
      return;
    }
    const previous = this.file;
    this.file = file;
    if (!(this.writing && previous === this.writingTo)) closeQuietly(previous);
  }

  /** Writes what is buffered and closes the file (the last listener using it stopped). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    if (this.writing) {
      // A write that never ends (stdout into a pipe nobody reads) must not hold the exit up.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        new Promise<boolean>((r) => this.idleWaiters.push(() => r(true))),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(false), CLOSE_WAIT_MS); }),
      ]);
      clearTimeout(timer);
      if (!ended) { this.linesDropped += this.lines; this.len = this.lines = 0; return; }
    }
    try {
      this.file.writeAllSync(this.buf.subarray(0, this.len));
      this.linesWritten += this.lines;
      this.bytesWritten += this.len;
    } catch (e) {
      this.failed(e as Error, this.lines);
    }
    this.len = this.lines = 0;
    closeQuietly(this.file);
  }
}

function closeQuietly(file: AppendFile): void {
  try { file.close(); } catch { /* already closed */ }
}

/** Takes each line of a path at once (it must copy it): a worker's way to its supervisor. */
export type LineRelay = (path: string, line: Uint8Array) => void;

/** A worker's sink: its lines go to the relay, the file is its supervisor's. */
class RelaySink implements Sink {
  refs = 0;
  // The supervisor writes the file, and counts.
  readonly linesWritten = 0;
  readonly linesDropped = 0;
  readonly bytesWritten = 0;
  readonly writeErrors = 0;
  constructor(readonly path: string, private readonly relay: LineRelay) {}
  append(line: Uint8Array, n = line.length): void {
    this.relay(this.path, line.subarray(0, n));
  }
  reopen(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const sinks = new Map<string, Sink>();
let relay: LineRelay | null = null;

/** From now on, sinks opened in this process hand their lines to `to` (a worker; null: files). */
export function relayLines(to: LineRelay | null): void {
  relay = to;
}

/** The name a path's sink goes by (the file's absolute path, or stdout). */
export function sinkKey(path: string): string {
  return path === "stdout" ? path : resolve(path);
}

/** The sink for a path, opened on first use; throws when the file cannot be opened. The first
 * user's flush interval is the sink's. */
export function acquireSink(path: string, flushMs: number): Sink {
  const key = sinkKey(path);
  let sink = sinks.get(key);
  if (!sink) { sink = relay ? new RelaySink(key, relay) : new LogSink(key, flushMs); sinks.set(key, sink); }
  sink.refs++;
  return sink;
}

/** One user is done with the sink; the last one closes it (buffered lines written first). */
export async function releaseSink(sink: Sink): Promise<void> {
  if (--sink.refs > 0) return;
  if (sinks.get(sink.path) === sink) sinks.delete(sink.path);
  await sink.close();
}

/** SIGUSR1: every open file is opened again at its path. */
export function reopenSinks(): void {
  for (const sink of sinks.values()) sink.reopen();
}

/** The files open now (metrics). */
export function* openSinks(): IterableIterator<LogSink> {
  for (const s of sinks.values()) if (s instanceof LogSink) yield s;
}

/** Writes and closes every sink (the process exits). */
export async function closeSinks(): Promise<void> {
  const all = [...sinks.values()];
  sinks.clear();
  await Promise.all(all.map((s) => s.close()));
}
