// A small Prometheus registry: families of counters, gauges, histograms and summaries, each
// collected at scrape time from the counters the parts already keep, rendered in the text
// exposition format (version 0.0.4). Rendering appends to one string: label sets are built once
// per series and cached by the collectors, numbers are written as they are, nothing is copied.
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

export class MetricWriter {
  out = "";

  /** One sample; `labelSet` is `a="x",b="y"` or "". */
  sample(name: string, labelSet: string, value: number): void {
    this.out += labelSet ? `${name}{${labelSet}} ${num(value)}\n` : `${name} ${num(value)}\n`;
  }

  /** A histogram kept in milliseconds, written in seconds: cumulative buckets, sum and count. */
  histogramMs(name: string, labelSet: string, h: Histogram): void {
    const les = leOf(h.bounds), pre = labelSet ? `${name}_bucket{${labelSet},` : `${name}_bucket{`;
    let cumulative = 0;
    for (let i = 0; i < h.counts.length; i++) {
      cumulative += h.counts[i];
      this.out += `${pre}${les[i]}} ${cumulative}\n`;
    }
    this.sample(`${name}_sum`, labelSet, h.sum / 1000);
    this.sample(`${name}_count`, labelSet, h.count);
  }

  /** A summary without quantiles: sum (ms, written in seconds) and count. */
  summaryMs(name: string, labelSet: string, sumMs: number, count: number): void {
    this.sample(`${name}_sum`, labelSet, sumMs / 1000);
    this.sample(`${name}_count`, labelSet, count);
  }
}

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

  render(): string {
    const w = new MetricWriter();
    for (const f of this.families) {
      w.out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`;
      f.collect(w, f.name);
    }
    return w.out;
  }
}
