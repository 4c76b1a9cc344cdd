// The Prometheus registry alone: the text format, histogram buckets, label escaping, name rules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { labels, Registry } from "./metrics.ts";
import { Histogram } from "../core/histogram.ts";

test("metrics: a family renders HELP, TYPE and one line per sample", () => {
  const r = new Registry();
  r.add("x_requests_total", "counter", "Requests.", (w, n) => {
    w.sample(n, labels({ pool: "a" }), 3);
    w.sample(n, labels({ pool: "b" }), 0);
  });
  r.add("x_up", "gauge", "Up.", (w, n) => w.sample(n, "", 1));
  assert.equal(r.renderText(), [
    "# HELP x_requests_total Requests.", "# TYPE x_requests_total counter",
    'x_requests_total{pool="a"} 3', 'x_requests_total{pool="b"} 0',
    "# HELP x_up Up.", "# TYPE x_up gauge", "x_up 1", "",
  ].join("\n"));
});

test("metrics: a histogram kept in ms renders cumulative buckets in seconds, +Inf, sum and count", () => {
  const h = new Histogram([1, 10, 100]);
  for (const v of [0.5, 1, 5, 50, 5000]) h.observe(v);
  const r = new Registry();
  r.add("x_duration_seconds", "histogram", "Time.", (w, n) => w.histogramMs(n, 'pool="a"', h));
  const lines = r.renderText().split("\n").slice(2, -1);
  assert.deepEqual(lines, [
    'x_duration_seconds_bucket{pool="a",le="0.001"} 2',
    'x_duration_seconds_bucket{pool="a",le="0.01"} 3',
    'x_duration_seconds_bucket{pool="a",le="0.1"} 4',
    'x_duration_seconds_bucket{pool="a",le="+Inf"} 5',
    'x_duration_seconds_sum{pool="a"} 5.0565',
    'x_duration_seconds_count{pool="a"} 5',
  ]);
});

test("metrics: label values escape backslash, double quote and newline", () => {
  assert.equal(labels({ a: 'say "hi"\\\n' }), 'a="say \\"hi\\"\\\\\\n"');
});

test("metrics: a counter must end in _total, names are valid and registered once", () => {
  const r = new Registry();
  assert.throws(() => r.add("x_requests", "counter", "", () => {}), /must end in _total/);
  assert.throws(() => r.add("x-bad", "gauge", "", () => {}), /invalid name/);
  r.add("x_ok", "gauge", "", () => {});
  assert.throws(() => r.add("x_ok", "gauge", "", () => {}), /registered twice/);
});
