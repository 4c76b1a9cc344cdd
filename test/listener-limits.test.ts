// The socket engine's listener limits and timeouts, with raw clients that control every byte and
// record when each thing happened: header_timeout is a deadline for the whole head (slowloris),
// body_timeout a stall between body reads, keepalive_timeout an idle limit between requests,
// max_connections a cap on open client connections.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { statuses } from "./helpers/raw.ts";
import { sleep, waitFor } from "./helpers/health-servers.ts";

const HEADER_TIMEOUT = 600, BODY_TIMEOUT = 400, KEEPALIVE_TIMEOUT = 400, MAX_CONNECTIONS = 2;
// The socket path checks deadlines on a 50 ms sweep with a clock read at the sweep: a deadline
// fires up to one sweep late, and may be armed from a clock up to one sweep old.
const SWEEP = 50;
// How late a timeout may be seen on a loaded 2-core machine (the suite runs beside others).
const SLACK = 1500;

let backend: Backend, fulcrum: Running;
const ports = { timeouts: 0, capped: 0 };

before(async () => {
  backend = await startBackend("limits");
  ports.timeouts = await freePort();
  ports.capped = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - bind: 127.0.0.1:${ports.timeouts}
    header_timeout: ${HEADER_TIMEOUT}ms
    body_timeout: ${BODY_TIMEOUT}ms
    keepalive_timeout: ${KEEPALIVE_TIMEOUT}ms
  - bind: 127.0.0.1:${ports.capped}
    max_connections: ${MAX_CONNECTIONS}
pools:
  web: { servers: [${backend.address}] }
`, 2);
});

after(async () => {
  await fulcrum?.stop();
  await backend?.stop();
});

/** A raw client connection that records what arrives and when it closed (performance.now()). */
class Client {
  readonly sock: net.Socket;
  text = "";
  closedAt = 0;
  /** When each response status line arrived. */
  readonly statusAt: number[] = [];
  readonly connected: Promise<void>;

  constructor(port: number) {
    this.sock = net.connect(port, "127.0.0.1");
    this.sock.on("data", (d: Buffer) => {
      const before = statuses(this.text).length;
      this.text += d.toString("latin1");
      for (let n = statuses(this.text).length; n > before; n--) this.statusAt.push(performance.now());
    });
    this.sock.on("close", () => { this.closedAt ||= performance.now(); });
    this.sock.on("error", () => {});
    this.connected = new Promise((resolve) => this.sock.once("connect", () => resolve()));
  }

  get closed(): boolean {
    return this.closedAt > 0;
  }

  write(s: string): void {
    this.sock.write(Buffer.from(s, "latin1"));
  }

  end(): void {
    this.sock.destroy();
  }
}

test("header_timeout is a deadline for the whole head: a head sent one byte at a time, every 20 ms, gets 408 by header_timeout", async () => {
  const c = new Client(ports.timeouts);
  await c.connected;
  // 20 ms between bytes is far below every idle timer here (400 ms at the least), so only a
  // deadline for the whole head can stop it; the head takes about 4 s to send in full.
  const head = `GET /slowloris HTTP/1.1\r\nHost: x.test\r\nX-Pad: ${"p".repeat(160)}\r\n\r\n`;
  const hits = backend.hits;
  const firstByte = performance.now();
  let sent = 0;
  try {
    for (; sent < head.length && !c.closed && statuses(c.text).length === 0; sent++) {
      c.write(head[sent]);
      await sleep(20);
    }
    await waitFor("the connection to close", () => c.closed, SLACK);
  } finally {
    c.end();
  }
  assert.deepEqual(statuses(c.text), [408], c.text);
  assert.ok(sent < head.length, "the answer came before the head was complete");
  const at = c.statusAt[0] - firstByte;
  assert.ok(at >= HEADER_TIMEOUT - 2 * SWEEP, `408 after ${at.toFixed(0)} ms: earlier than header_timeout`);
  assert.ok(at <= HEADER_TIMEOUT + SLACK, `408 after ${at.toFixed(0)} ms`);
  assert.equal(backend.hits, hits, "nothing reached the server");
});

test("body_timeout is a stall between body reads: a body trickled faster passes, a stalled one gets 408", async () => {
  // 12 bytes 80 ms apart: about 1 s in all, over twice body_timeout, but no gap near it.
  const trickle = new Client(ports.timeouts);
  await trickle.connected;
  const hits = backend.hits;
  try {
    trickle.write("POST /trickle HTTP/1.1\r\nHost: x.test\r\nContent-Length: 12\r\n\r\n");
    for (const ch of "hello world!") {
      await sleep(80);
      trickle.write(ch);
    }
    await waitFor("the trickled request's answer", () => statuses(trickle.text).length > 0, SLACK + 1000);
  } finally {
    trickle.end();
  }
  assert.deepEqual(statuses(trickle.text), [200], trickle.text);
  assert.match(trickle.text, /"bodyBytes":12/);
  assert.equal(backend.hits, hits + 1);

  const stalled = new Client(ports.timeouts);
  await stalled.connected;
  let stallFrom = 0;
  try {
    stalled.write("POST /stalled HTTP/1.1\r\nHost: x.test\r\nContent-Length: 10\r\n\r\nab");
    stallFrom = performance.now();
    await waitFor("the stalled request to be answered", () => statuses(stalled.text).length > 0, BODY_TIMEOUT + SLACK);
  } finally {
    stalled.end();
  }
  assert.deepEqual(statuses(stalled.text), [408], stalled.text);
  const at = stalled.statusAt[0] - stallFrom;
  assert.ok(at >= BODY_TIMEOUT - 2 * SWEEP, `408 after ${at.toFixed(0)} ms of stall: earlier than body_timeout`);
  assert.equal(backend.hits, hits + 1, "the stalled body never reached the server");
});

test("keepalive_timeout: a kept-alive connection serves a request well within it, and closes once idle for it", async () => {
  const c = new Client(ports.timeouts);
  await c.connected;
  try {
    c.write("GET /one HTTP/1.1\r\nHost: x.test\r\n\r\n");
    await waitFor("the first answer", () => statuses(c.text).length === 1, SLACK);
    await sleep(KEEPALIVE_TIMEOUT / 4);
    assert.ok(!c.closed, "closed well before keepalive_timeout");
    c.write("GET /two HTTP/1.1\r\nHost: x.test\r\n\r\n");
    await waitFor("the second answer", () => statuses(c.text).length === 2, SLACK);
    await waitFor("the idle connection to close", () => c.closed, KEEPALIVE_TIMEOUT + SLACK);
  } finally {
    c.end();
  }
  assert.deepEqual(statuses(c.text), [200, 200]);
  const idle = c.closedAt - c.statusAt[1];
  assert.ok(idle >= KEEPALIVE_TIMEOUT - 2 * SWEEP, `closed after ${idle.toFixed(0)} ms idle: earlier than keepalive_timeout`);
});

test("max_connections: a connection past the limit is closed at once, unanswered; the open ones serve; a freed place is taken again", async () => {
  const open = [new Client(ports.capped), new Client(ports.capped)];
  const extra: Client[] = [];
  try {
    await Promise.all(open.map((c) => c.connected));
    // Let the listener accept both before the third arrives (accepts are asynchronous).
    open[0].write("GET /a HTTP/1.1\r\nHost: x.test\r\n\r\n");
    open[1].write("GET /b HTTP/1.1\r\nHost: x.test\r\n\r\n");
    await waitFor("both open connections answered", () => open.every((c) => statuses(c.text).length === 1), SLACK);
    const third = new Client(ports.capped);
    extra.push(third);
    third.write("GET /c HTTP/1.1\r\nHost: x.test\r\n\r\n");
    await waitFor("the connection past the limit to close", () => third.closed, SLACK);
    assert.equal(third.text, "", "nothing is answered past max_connections");
    open[0].write("GET /a2 HTTP/1.1\r\nHost: x.test\r\n\r\n");
    await waitFor("an open connection still serving", () => statuses(open[0].text).length === 2, SLACK);
    open[1].end();
    // The listener learns of the close asynchronously: try a few fresh connections, bounded.
    let served = false;
    for (let i = 0; i < 20 && !served; i++) {
      const c = new Client(ports.capped);
      extra.push(c);
      c.write("GET /d HTTP/1.1\r\nHost: x.test\r\n\r\n");
      await waitFor("an answer or a close", () => c.closed || statuses(c.text).length > 0, SLACK);
      served = statuses(c.text)[0] === 200;
      if (!served) await sleep(50);
    }
    assert.ok(served, "a connection is accepted once one of the two has closed");
  } finally {
    for (const c of [...open, ...extra]) c.end();
  }
});
