// A listener's access log: its formatter bound to the shared sink of its path. The edge and the
// L4 proxy hand it one record when a request or session ends; a listener without `access_log`
// has no AccessLog at all, so nothing is computed for it.
import type { AccessLogConfig } from "./config.ts";
import { type HttpRecord, type L4Record, LineFormatter } from "./format.ts";
import { acquireSink, releaseSink, type Sink } from "./sink.ts";

export type { HttpRecord, L4Record };

export class AccessLog {
  private released = false;

  private constructor(private readonly sink: Sink, private readonly formatter: LineFormatter) {}

  /** The log a listener's config asks for, or null (`off`, or not configured). Throws when the
   * file cannot be opened. */
  static open(config: AccessLogConfig | null | undefined, listener: string): AccessLog | null {
    if (!config) return null;
    return new AccessLog(acquireSink(config.path, config.flushMs), new LineFormatter(config.format, listener));
  }

  /** Opens the log a listener asks for, then runs `listen` with it; when that fails the log is
   * closed again. Opening first: a file that cannot be opened stops a start before anything
   * listens. */
  static async openFor<T>(config: AccessLogConfig | null | undefined, listener: string, listen: (log: AccessLog | null) => Promise<T>): Promise<T> {
    const log = AccessLog.open(config, listener);
    try {
      return await listen(log);
    } catch (e) {
      await log?.close();
      throw e;
    }
  }

  http(record: HttpRecord): void {
    const f = this.formatter;
    f.writeHttp(record, Date.now());
    this.sink.append(f.line.buf, f.line.pos);
  }

  l4(record: L4Record): void {
    const f = this.formatter;
    f.writeL4(record, Date.now());
    this.sink.append(f.line.buf, f.line.pos);
  }

  /** The listener stopped: the sink closes when no other listener uses its path. */
  close(): Promise<void> {
    if (this.released) return Promise.resolve();
    this.released = true;
    return releaseSink(this.sink);
  }
}
