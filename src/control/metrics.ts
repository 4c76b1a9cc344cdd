// A small Prometheus registry: families of counters, gauges, histograms and summaries, each
// collected at scrape time from the counters the parts already keep, rendered in the text
// exposition format (version 0.0.4). Rendering writes bytes into one buffer: names and label sets
// are encoded once and copied on later scrapes, numbers are written digit by digit, and the text
// is never built as a string and then encoded.
import type { Histogram } from "../core/histogram.ts";

export type MetricType = "counter" | "gauge" | "histogram" | "summary";

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Escapes a label value (backslash, double quote, newline) as the text format wants. */
export function labelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : value;
}

/** `a="x",b="y"` from pairs; the collectors build these once per series and keep them. */
export function labels(pairs: Record<string, string>): string {
  let s = "";
  for (const k in pairs) s += `${s ? "," : ""}${k}="${labelValue(pairs[k])}"`;
  return s;
}

function num(v: number): string {
  return v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v);
}

// The `le` label of each bucket, per bounds array, in seconds (bounds are in ms).
const leLabels = new WeakMap<readonly number[], string[]>();
function leOf(bounds: readonly number[]): string[] {
  let les = leLabels.get(bounds);
  if (!les) {
    les = [...bounds.map((b) => `le="${num(b / 1000)}"`), `le="+Inf"`];
    leLabels.set(bounds, les);
  }
  return les;
}

/** Writes the exposition text straight into bytes: no string per line, no copy of the whole text
 * (the text format is ASCII; label values outside it are written as UTF-8). */
export class MetricWriter {
  private buf: Uint8Array<ArrayBuffer>;
  private pos = 0;

  /** `cache`: names and label sets already encoded, kept by the registry between renders. */
  constructor(sizeHint = 64 * 1024, private readonly cache = new Map<string, Uint8Array>()) {
    this.buf = new Uint8Array(sizeHint);
  }

  /** The bytes written so far (a view of the writer's buffer). */
  bytes(): Uint8Array<ArrayBuffer> {
    return this.buf.subarray(0, this.pos);
  }

  get length(): number {
    return this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
  }

  text(s: string): void {
    const n = s.length;
    if (this.pos + n * 3 > this.buf.length) this.room(n * 3);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) { b[p++] = c; continue; }
      this.pos = p;
      p += encoder.encodeInto(s.slice(i), b.subarray(p)).written;
      break;
    }
    this.pos = p;
  }

  /** Bytes made once (a series' label set, encoded by the caller's cache). */
  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.pos + n > this.buf.length) this.room(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = bytes[i];
    this.pos = p;
  }

  /** A string written many times (a name, a label set): encoded once, then copied. */
  put(s: string): void {
    let bytes = this.cache.get(s);
    if (bytes === undefined) {
      bytes = encoder.encode(s);
      // Label sets of servers long removed would pile up: start over past a bound.
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(s, bytes);
    }
    const n = bytes.length;
    if (this.pos + n > this.buf.length) this.room(n);
    if (n > 16) this.buf.set(bytes, this.pos);
    else for (let i = 0; i < n; i++) this.buf[this.pos + i] = bytes[i];
    this.pos += n;
  }

  number(v: number): void {
    if (Number.isInteger(v) && v >= 0 && v < 1e15) {
      this.room(16);
      const b = this.buf;
      if (v === 0) { b[this.pos++] = 48; return; }
      let digits = 0;
      for (let x = v; x >= 1; x = Math.floor(x / 10)) digits++;
      let p = this.pos + digits;
      this.pos = p;
      for (let x = v; x >= 1; x = Math.floor(x / 10)) b[--p] = 48 + (x % 10);
      return;
    }
    this.text(num(v));
  }

  /** One sample; `labelSet` is `a="x",b="y"` or "". */
  sample(name: string, labelSet: string, value: number): void {
    this.put(name);
    if (labelSet) { this.byte(123); this.put(labelSet); this.byte(125); }
    this.byte(32);
    this.number(value);
    this.byte(10);
  }

  /** One sample with one more label after the series' own: `name{labelSet,more} value`, without
   * building the joined label string (a new string per sample is what rendering must not do). */
  sampleWith(name: string, labelSet: string, more: string, value: number): void {
    this.put(name);
    this.byte(123);
    if (labelSet) { this.put(labelSet); this.byte(44); }
    this.put(more);
    this.byte(125);
    this.byte(32);
    this.number(value);
    this.byte(10);
  }

  /** A histogram kept in milliseconds, written in seconds: cumulative buckets, sum and count. */
  histogramMs(name: string, labelSet: string, h: Histogram): void {
    const les = leOf(h.bounds), pre = labelSet ? `${name}_bucket{${labelSet},` : `${name}_bucket{`;
    let cumulative = 0;
    for (let i = 0; i < h.counts.length; i++) {
      cumulative += h.counts[i];
      this.put(pre);
      this.put(les[i]);
      this.byte(125);
      this.byte(32);
      this.number(cumulative);
      this.byte(10);
    }
    this.sample(`${name}_sum`, labelSet, h.sum / 1000);
    this.sample(`${name}_count`, labelSet, h.count);
  }

  /** A summary without quantiles: sum (ms, written in seconds) and count. */
  summaryMs(name: string, labelSet: string, sumMs: number, count: number): void {
    this.sample(`${name}_sum`, labelSet, sumMs / 1000);
    this.sample(`${name}_count`, labelSet, count);
  }

  private byte(c: number): void {
    if (this.pos >= this.buf.length) this.room(1);
    this.buf[this.pos++] = c;
  }
}

const encoder = new TextEncoder();
const MAX_CACHED = 200_000;

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  /** Writes the family's samples (named `name`, or its _bucket/_sum/_count for histograms). */
  collect(w: MetricWriter, name: string): void;
}

export class Registry {
  private readonly families: Family[] = [];

  add(name: string, type: MetricType, help: string, collect: Family["collect"]): void {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`metrics: invalid name ${name}`);
    if (this.families.some((f) => f.name === name)) throw new Error(`metrics: ${name} registered twice`);
    if (type === "counter" && !name.endsWith("_total")) throw new Error(`metrics: counter ${name} must end in _total`);
    this.families.push({ name, type, help, collect });
  }

  private sizeHint = 64 * 1024;
  private readonly encoded = new Map<string, Uint8Array>();

  /** The exposition text as bytes, in a buffer of its own (sized by the last render). */
  render(): Uint8Array<ArrayBuffer> {
    const w = new MetricWriter(this.sizeHint, this.encoded);
    for (const f of this.families) {
      w.text(`# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`);
      f.collect(w, f.name);
    }
    this.sizeHint = Math.max(this.sizeHint, w.length + (w.length >> 3));
    return w.bytes();
  }

  renderText(): string {
    return new TextDecoder().decode(this.render());
  }
}
