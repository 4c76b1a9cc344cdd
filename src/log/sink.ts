// Where access log lines go: a file (or stdout) written in batches off the request path. Lines
// are copied into a buffer; it is written with one write when it passes FLUSH_BYTES or when its
// oldest line has waited `flushMs`. While a write is in flight the next batch fills the other
// buffer, which may grow to MAX_PENDING; past that, lines are dropped and counted: memory stays
// bounded when the disk cannot keep up. One sink per path, shared by every listener (and every
// generation) that logs there, so a reload neither loses nor repeats lines; SIGUSR1 reopens the
// file at its path (logrotate moves it, then signals).
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

export class LogSink {
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

  /** Queues one line, line[0, n) (newline included): copied, so the caller may reuse its
   * buffer. Never blocks, never throws. */
  append(line: Uint8Array, n = line.length): void {
    if (this.closed) { this.linesDropped++; return; }
    if (this.len + n > this.buf.length && !this.makeRoom(n)) { this.linesDropped++; return; }
    const b = this.buf;
    let p = this.len;
    // A loop copies a line this short faster than a view for set() is made.
    if (n < 256) for (let i = 0; i < n; i++) b[p++] = line[i];
    else { b.set(line.subarray(0, n), p); p += n; }
    this.len = p;
    this.lines++;
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

const sinks = new Map<string, LogSink>();

/** The sink for a path, opened on first use; throws when the file cannot be opened. The first
 * user's flush interval is the sink's. */
export function acquireSink(path: string, flushMs: number): LogSink {
  const key = path === "stdout" ? path : resolve(path);
  let sink = sinks.get(key);
  if (!sink) { sink = new LogSink(key, flushMs); sinks.set(key, sink); }
  sink.refs++;
  return sink;
}

/** One user is done with the sink; the last one closes it (buffered lines written first). */
export async function releaseSink(sink: LogSink): Promise<void> {
  if (--sink.refs > 0) return;
  if (sinks.get(sink.path) === sink) sinks.delete(sink.path);
  await sink.close();
}

/** SIGUSR1: every open file is opened again at its path. */
export function reopenSinks(): void {
  for (const sink of sinks.values()) sink.reopen();
}

/** The sinks open now (metrics). */
export function openSinks(): IterableIterator<LogSink> {
  return sinks.values();
}

/** Writes and closes every sink (the process exits). */
export async function closeSinks(): Promise<void> {
  const all = [...sinks.values()];
  sinks.clear();
  await Promise.all(all.map((s) => s.close()));
}
