// The access log sink on real files and a real pipe: nothing is written on the caller's path,
// one sink per path, logrotate's rename + reopen, and a reader that stops reading makes lines
// drop (counted) instead of memory grow, with every line that was kept arriving whole.
import { test } from "node:test";
import assert from "node:assert/strict";
import { constants, mkdirSync, openSync, readFileSync, readSync, closeSync, renameSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { acquireSink, LogSink, releaseSink, reopenSinks } from "./sink.ts";

const dir = `/tmp/fulcrum-sink-test-${process.pid}-${Date.now()}`;
mkdirSync(dir, { recursive: true });
const enc = (s: string) => new TextEncoder().encode(s);
const lines = (path: string) => existsSync(path) ? readFileSync(path, "latin1").split("\n").filter(Boolean) : [];

test("sink: lines wait in the buffer (no write on the caller's path) and all reach the file on close", async () => {
  const path = `${dir}/a.log`;
  const sink = acquireSink(path, 60_000);
  for (let i = 0; i < 100; i++) sink.append(enc(`line ${i}\n`));
  assert.deepEqual(lines(path), []); // buffered: the timer (a minute) has not fired
  assert.equal(sink.linesWritten, 0);
  await releaseSink(sink);
  assert.deepEqual(lines(path), Array.from({ length: 100 }, (_, i) => `line ${i}`));
  assert.equal(sink.linesWritten, 100);
});

test("sink: the flush timer writes a batch; one sink per path, closed by its last user", async () => {
  const path = `${dir}/b.log`;
  const one = acquireSink(path, 20), two = acquireSink(path, 20);
  assert.equal(one, two);
  one.append(enc("from one\n"));
  two.append(enc("from two\n"));
  for (let i = 0; i < 200 && one.linesWritten < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(lines(path), ["from one", "from two"]);
  await releaseSink(one);
  two.append(enc("still open\n")); // the other user keeps it
  await releaseSink(two);
  assert.deepEqual(lines(path), ["from one", "from two", "still open"]);
  const again = acquireSink(path, 20);
  assert.notEqual(again, one); // closed: a new user opens a new sink
  await releaseSink(again);
});

test("sink: after a rename and reopen, new lines go to a new file at the path; none lost", async () => {
  const path = `${dir}/c.log`;
  const sink = acquireSink(path, 10);
  for (let i = 0; i < 5; i++) sink.append(enc(`old ${i}\n`));
  for (let i = 0; i < 200 && sink.linesWritten < 5; i++) await new Promise((r) => setTimeout(r, 10));
  renameSync(path, `${path}.1`);
  sink.append(enc("buffered when rotated\n"));
  reopenSinks();
  sink.append(enc("after\n"));
  await releaseSink(sink);
  assert.deepEqual(lines(`${path}.1`), ["old 0", "old 1", "old 2", "old 3", "old 4"]);
  assert.deepEqual(lines(path), ["buffered when rotated", "after"]);
});

test("sink: a reader that does not keep up makes lines drop and count, at most ~4 MiB kept waiting; kept lines arrive whole", async () => {
  const fifo = `${dir}/pipe`;
  execFileSync("mkfifo", [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const sink = new LogSink(fifo, 10);
  const line = enc("x".repeat(199) + "\n");
  const total = 30_000; // 6 MB: more than the pipe (64 KiB) and the bound (4 MiB) together
  for (let i = 0; i < total; i++) sink.append(line);
  assert.ok(sink.linesDropped > 0, "lines dropped");
  assert.ok(sink.linesDropped < total);
  // Drain the pipe (bounded): every line kept is written, and arrives as it was.
  const buf = new Uint8Array(1 << 20);
  let got = 0, bad = 0;
  const until = Date.now() + 20_000;
  while (Date.now() < until && !(sink.linesWritten + sink.linesDropped === total && got === sink.linesWritten * 200)) {
    let n = 0;
    try { n = readSync(reader, buf); } catch (e) { if ((e as { code?: string }).code !== "EAGAIN") throw e; }
    for (let i = 0; i < n; i++) if (buf[i] !== (((got + i) % 200) === 199 ? 10 : 0x78)) bad++;
    got += n;
    if (n === 0) await new Promise((r) => setTimeout(r, 2));
  }
  assert.equal(sink.linesWritten + sink.linesDropped, total);
  assert.equal(got, sink.linesWritten * 200);
  assert.equal(bad, 0);
  // What was kept: the batch in flight (64 KiB) and one batch grown to its 4 MiB bound.
  assert.ok(sink.linesWritten * 200 <= 4 * 1024 * 1024 + 128 * 1024, `${sink.linesWritten} lines kept`);
  await sink.close();
  closeSync(reader);
});
