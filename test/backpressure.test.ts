// Back-pressure on the socket path: a peer that stops reading makes Fulcrum stop reading the
// other side, so what Fulcrum holds for one connection stays bounded however large the body.
// Both directions, against real peers: nginx serving a large file to a client that reads
// nothing for a while, and a client posting a large body to a server that reads nothing for a
// while. What Fulcrum holds is read from the kernel (ss): bytes it read from one socket minus
// bytes it handed to the kernel on the other, both sockets of the process that accepted the
// client (with workers, a worker: not the pid the test started).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { link, open, mkdir, rm } from "node:fs/promises";
import { runtime, type Child } from "../src/runtime/index.ts";
import { freePort } from "./helpers/backends.ts";
import { startFulcrum, type Running } from "./helpers/fulcrum.ts";
import { connection, connectionsTo, heldBetween, tcpConnections } from "./helpers/tcp-queues.ts";

/** Fulcrum's bound: the write queue's high-water mark (256 KiB) plus one read (Bun reads up to
 * 512 KiB at a time) plus a retained request body (64 KiB), rounded up. Without back-pressure
 * it would hold nearly the whole body (BODY_BYTES less the kernel's buffers). */
const BOUND = 1024 * 1024;
const BODY_BYTES = 128 * 1024 * 1024;
const BLOCK = 1024 * 1024;
/** The stall lasts until nothing moves for this many samples in a row (bounded by STALL_MAX_MS). */
const STILL_SAMPLES = 4;
const SAMPLE_MS = 250;
const STALL_MAX_MS = 15_000;

const dir = `/tmp/fulcrum-test-bp-${runtime.name}-${Date.now()}`;
let nginx: Child, nginxPort = 0, fulcrum: Running, fulcrumPort = 0, bodyHash = "";
let sink: net.Server, sinkPort = 0;
let sinkSocket: net.Socket | null = null;
const sinkDone: { resolve?: (r: { bytes: number; hash: string }) => void } = {};

/** Block k of the body: every 4-byte word holds its own position, so a lost, doubled or
 * reordered piece changes the hash. */
function block(k: number): Uint8Array {
  const words = new Uint32Array(BLOCK / 4);
  for (let i = 0; i < words.length; i++) words[i] = k * words.length + i;
  return new Uint8Array(words.buffer);
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

before(async () => {
  await mkdir(`${dir}/www`, { recursive: true });
  const file = await open(`${dir}/www/big`, "w");
  const hash = createHash("sha256");
  for (let k = 0; k < BODY_BYTES / BLOCK; k++) {
    const b = block(k);
    hash.update(b);
    await file.write(b);
  }
  await file.close();
  bodyHash = hash.digest("hex");
  await mkdir(`${dir}/www/impatient`);
  await link(`${dir}/www/big`, `${dir}/www/impatient/big`);

  nginxPort = await freePort();
  await runtime.writeTextFile(`${dir}/nginx.conf`, `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server { listen 127.0.0.1:${nginxPort}; root ${dir}/www; location / { } }
}
`);
  nginx = runtime.spawn(["nginx", "-c", `${dir}/nginx.conf`]);
  await waitFor(() => fetch(`http://127.0.0.1:${nginxPort}/`).then((r) => { void r.body?.cancel(); return true; }, () => false), "nginx");

  // A server that takes a connection and reads nothing until the test says so, then reads the
  // whole request and answers with the body's length and hash.
  sink = net.createServer((sock) => {
    sinkSocket = sock;
    sock.pause();
    let head = "", length = -1, got = 0;
    const hash = createHash("sha256");
    sock.on("data", (d: Uint8Array) => {
      let rest = d;
      if (length < 0) {
        head += Buffer.from(d).toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        length = Number(/content-length: (\d+)/i.exec(head.slice(0, end))?.[1] ?? 0);
        rest = d.subarray(d.length - (head.length - end - 4));
      }
      got += rest.length;
      hash.update(rest);
      if (got >= length) {
        const digest = hash.digest("hex");
        sock.end(`HTTP/1.1 200 OK\r\ncontent-length: ${digest.length}\r\nconnection: close\r\n\r\n${digest}`);
        sinkDone.resolve?.({ bytes: got, hash: digest });
      }
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", () => r()));
  sinkPort = (sink.address() as net.AddressInfo).port;

  fulcrumPort = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - bind: 127.0.0.1:${fulcrumPort}
routes:
  - { path_prefix: /upload, pool: sink }
  - { path_prefix: /impatient, pool: impatient }
  - { pool: files }
pools:
  files: { servers: [127.0.0.1:${nginxPort}] }
  impatient: { read_timeout: 1s, servers: [127.0.0.1:${nginxPort}] }
  sink: { servers: [127.0.0.1:${sinkPort}] }
`);
});

after(async () => {
  await fulcrum?.stop();
  nginx?.kill("SIGTERM");
  await nginx?.exited;
  sinkSocket?.destroy();
  await new Promise((r) => sink?.close(r));
  await rm(dir, { recursive: true, force: true });
});

/** Samples what Fulcrum holds between its two sockets until the flow has stopped (or a time
 * bound); returns the largest figure seen, and what had reached the far side by then. */
async function stallSamples(ends: () => Promise<{ held: number; through: number } | null>): Promise<{ maxHeld: number; through: number; samples: number }> {
  let maxHeld = 0, last = -1, still = 0, samples = 0, through = 0;
  const until = Date.now() + STALL_MAX_MS;
  while (Date.now() < until && still < STILL_SAMPLES) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const e = await ends();
    if (!e) continue;
    samples++;
    maxHeld = Math.max(maxHeld, e.held);
    through = e.through;
    still = e.through === last ? still + 1 : 0;
    last = e.through;
  }
  return { maxHeld, through, samples };
}

test("back-pressure: a client that stops reading holds Fulcrum's buffer for it under 1 MiB; the 128 MiB body then arrives intact", async () => {
  const client = net.connect(fulcrumPort, "127.0.0.1");
  await new Promise<void>((r) => client.once("connect", () => r()));
  client.pause(); // reads nothing until the stall has been measured
  client.write(`GET /big HTTP/1.1\r\nHost: files.test\r\n\r\n`);
  const clientEnd = `127.0.0.1:${client.localPort}`;
  const stall = await stallSamples(async () => {
    const all = await tcpConnections();
    const toClient = connection(all, `127.0.0.1:${fulcrumPort}`, clientEnd);
    if (!toClient) return null;
    const upstream = connectionsTo(all, toClient.pid, `127.0.0.1:${nginxPort}`);
    assert.ok(upstream.length <= 1, "one request, one upstream connection");
    const fromNginx = upstream[0];
    if (!fromNginx) return null;
    return { held: heldBetween(fromNginx, toClient), through: fromNginx.bytesReceived };
  });
  assert.ok(stall.samples >= STILL_SAMPLES, `too few samples of the connections (${stall.samples})`);
  assert.ok(stall.maxHeld < BOUND, `Fulcrum held ${stall.maxHeld} bytes for a client that reads nothing`);
  // The stall is real: the transfer stopped well short of the body.
  assert.ok(stall.through < BODY_BYTES / 2, `the transfer did not stall: ${stall.through} bytes left nginx`);

  // Now read everything: status, then exactly the body, unchanged.
  const hash = createHash("sha256");
  let head = "", bodyBytes = 0, headDone = false;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`body incomplete after 60 s: ${bodyBytes} bytes`)), 60_000);
    client.on("data", (d: Uint8Array) => {
      let rest = d;
      if (!headDone) {
        head += Buffer.from(d).toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        headDone = true;
        rest = d.subarray(d.length - (head.length - end - 4));
        head = head.slice(0, end);
      }
      bodyBytes += rest.length;
      hash.update(rest);
      if (bodyBytes >= BODY_BYTES) { clearTimeout(timer); resolve(); }
    });
    client.on("error", (e) => { clearTimeout(timer); reject(e); });
    client.resume();
  });
  client.destroy();
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.match(head, new RegExp(`content-length: ${BODY_BYTES}`, "i"));
  assert.equal(bodyBytes, BODY_BYTES);
  assert.equal(hash.digest("hex"), bodyHash);
});

test("back-pressure: a server that stops reading a 128 MiB upload holds Fulcrum's buffer under 1 MiB; it then receives the body intact", async () => {
  const done = new Promise<{ bytes: number; hash: string }>((r) => sinkDone.resolve = r);
  const client = net.connect(fulcrumPort, "127.0.0.1");
  await new Promise<void>((r) => client.once("connect", () => r()));
  const clientEnd = `127.0.0.1:${client.localPort}`;
  client.on("error", () => {});
  let answer = "";
  client.on("data", (d: Uint8Array) => { answer += Buffer.from(d).toString("latin1"); });
  client.write(`POST /upload HTTP/1.1\r\nHost: sink.test\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`);
  // Sends as fast as the kernel takes it, never more than the socket's own buffer ahead.
  let sent = 0, stopped = false;
  const sending = (async () => {
    for (let k = 0; k < BODY_BYTES / BLOCK && !stopped; k++) {
      if (!client.write(block(k))) await new Promise((r) => client.once("drain", r));
      sent += BLOCK;
    }
  })();
  await waitFor(async () => sinkSocket !== null, "the upstream connection");
  const stall = await stallSamples(async () => {
    const all = await tcpConnections();
    const fromClient = connection(all, `127.0.0.1:${fulcrumPort}`, clientEnd);
    if (!fromClient) return null;
    const upstream = connectionsTo(all, fromClient.pid, `127.0.0.1:${sinkPort}`);
    assert.ok(upstream.length <= 1, "one request, one upstream connection");
    const toSink = upstream[0];
    if (!toSink) return null;
    return { held: heldBetween(fromClient, toSink), through: fromClient.bytesReceived };
  });
  assert.ok(stall.samples >= STILL_SAMPLES, `too few samples of the connections (${stall.samples})`);
  assert.ok(stall.maxHeld < BOUND, `Fulcrum held ${stall.maxHeld} bytes for a server that reads nothing`);
  // The stall is real: the upload stopped well short of the body.
  assert.ok(stall.through < BODY_BYTES / 2, `the upload did not stall: ${stall.through} bytes reached Fulcrum`);

  sinkSocket!.resume();
  const timer = setTimeout(() => { stopped = true; client.destroy(); }, 60_000);
  const got = await done;
  await sending;
  await waitFor(async () => answer.includes("\r\n\r\n") && answer.length > answer.indexOf("\r\n\r\n") + 4 + 63, "the answer", 10_000);
  clearTimeout(timer);
  client.destroy();
  const expected = createHash("sha256");
  for (let k = 0; k < BODY_BYTES / BLOCK; k++) expected.update(block(k));
  assert.equal(got.bytes, BODY_BYTES);
  const digest = expected.digest("hex");
  assert.equal(got.hash, digest);
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.ok(answer.endsWith(digest), "the client gets the server's answer");
});

test("back-pressure: a client that takes nothing for the read timeout is closed as the client's fault, not the server's", async () => {
  const client = net.connect(fulcrumPort, "127.0.0.1");
  await new Promise<void>((r) => client.once("connect", () => r()));
  client.pause();
  client.on("error", () => {});
  const closed = new Promise<void>((r) => client.once("close", () => r()));
  client.write(`GET /impatient/big HTTP/1.1\r\nHost: files.test\r\n\r\n`);
  // read_timeout is 1 s; the bound is wide because deadlines are swept on a loaded machine.
  await waitFor(async () => fulcrum.output().includes("took nothing in time"), "Fulcrum to give up on the client", 20_000);
  client.resume(); // drain what the kernel holds, so the close is seen
  await closed;
  const log = fulcrum.output();
  assert.match(log, /client 127\.0\.0\.1 took nothing in time; closing \(GET \/impatient\/big\)/);
  assert.doesNotMatch(log, /aborted: upstream read timed out/, "the server is not blamed");
});
