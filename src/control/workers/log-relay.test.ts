import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { acquireSink, relayLines, releaseSink } from "../../log/sink.ts";
import { LineBatch, type LogChunk, LogFiles } from "./log-relay.ts";

const dir = `/tmp/fulcrum-log-relay-test-${process.pid}-${Date.now()}`;
mkdirSync(dir, { recursive: true });
const enc = (s: string) => new TextEncoder().encode(s);
const lines = (path: string) => existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : [];

test("log relay: a worker's sinks hand their lines over, one batch per turn grouped by file", async () => {
  const sent: LogChunk[][] = [];
  const batch = new LineBatch((chunks) => sent.push(chunks));
  relayLines(batch.line);
  try {
    const a = acquireSink(`${dir}/relayed-a.log`, 10), b = acquireSink(`${dir}/relayed-b.log`, 10);
    const buf = enc("a1\nb1\na2\n");
    a.append(buf, 3);
    b.append(buf.subarray(3), 3);
    a.append(buf.subarray(6), 3);
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(sent, [[
      { path: `${dir}/relayed-a.log`, text: "a1\na2\n", lines: 2 },
      { path: `${dir}/relayed-b.log`, text: "b1\n", lines: 1 },
    ]]);
    await Promise.all([releaseSink(a), releaseSink(b)]);
    assert.ok(!existsSync(`${dir}/relayed-a.log`), "a relaying process opens no file");
  } finally {
    relayLines(null);
  }
});

test("log relay: the supervisor writes every worker's chunks into one sink per file, in order", async () => {
  const path = `${dir}/written.log`;
  const files = new LogFiles([{ path, format: "combined", flushMs: 60_000 }, null, { path, format: "json", flushMs: 60_000 }]);
  files.write([{ path, text: "one\ntwo\n", lines: 2 }]);
  files.write([{ path, text: "three\n", lines: 1 }, { path: `${dir}/other.log`, text: "not ours\n", lines: 1 }]);
  const sink = acquireSink(path, 60_000);
  assert.equal(sink.refs, 3, "held once per listener that logs there");
  await releaseSink(sink);
  assert.deepEqual(lines(path), [], "buffered as the file's flush says");
  await files.release();
  assert.deepEqual(lines(path), ["one", "two", "three"]);
  assert.equal(sink.linesWritten, 3);
  assert.ok(!existsSync(`${dir}/other.log`));
});

test("log relay: a file that cannot be opened fails the start", () => {
  assert.throws(() => new LogFiles([{ path: `${dir}/missing-dir/x.log`, format: "combined", flushMs: 10 }]), /cannot open/);
});
