// The L4 TCP proxy end to end: a real `fulcrum run` with tcp listeners in front of real
// redis-server instances (and, for half-close and back-pressure, node:net servers that record
// what they got), on loopback.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { readFileSync } from "node:fs";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { freePort, type Peer, resp, startRedis, TcpClient } from "./helpers/l4.ts";
import { needs } from "./helpers/peers.ts";
import { runtime, type Child } from "../src/runtime/index.ts";

const skip = needs("redis-server", "python3");
/** A listener whose accept queue is full, so a connect to it hangs (SYNs dropped): python3, since
 * node:net and the runtimes always accept. It prints its port. */
const BLACKHOLE = `
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
port = s.getsockname()[1]
held = []
for i in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    held.append(c)
time.sleep(0.2)
print(port, flush=True)
time.sleep(600)
`;
let blackhole: Child;
let r1: Peer, r2: Peer;
let fulcrum: Running;
const port: Record<string, number> = {};
let halfServer: net.Server, bulkServer: net.Server, sinkServer: net.Server;
/** What the half-close server saw per connection: bytes before the client's FIN, bytes after its own FIN. */
const halfSeen: { before: number; afterOwnFin: string }[] = [];
const bulk = { flushed: 0, total: 0 };
const sink = { received: 0, socket: null as net.Socket | null };

function listen(server: net.Server): Promise<number> {
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as net.AddressInfo).port)));
}

before(async () => {
  if (skip) return;
  bulk.total = transferSize();
  const [p1, p2, refused] = [await freePort(), await freePort(), await freePort()];
  [r1, r2] = await Promise.all([startRedis(p1), startRedis(p2)]);

  // Counts what the client sent until its FIN, then answers (the reply travels after the FIN).
  halfServer = net.createServer({ allowHalfOpen: true }, (s) => {
    const seen = { before: 0, afterOwnFin: "" };
    halfSeen.push(seen);
    let mode = "";
    s.on("data", (d: Uint8Array) => {
      const text = new TextDecoder().decode(d);
      if (mode === "") mode = text.startsWith("FIN-FIRST") ? "server-fin" : "client-fin";
      if (mode === "server-fin") {
        if (seen.afterOwnFin === "" && text.startsWith("FIN-FIRST")) { s.end("bye\n"); return; } // our FIN first, reading goes on
        seen.afterOwnFin += text;
      } else seen.before += d.length;
    });
    s.on("end", () => { if (mode === "client-fin") s.end(`got ${seen.before}\n`); });
    s.on("error", () => {});
  });
  // Sends bulk.total bytes as fast as the connection takes them, counting what reached the kernel.
  bulkServer = net.createServer((s) => {
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let sent = 0;
    const pump = () => {
      while (sent < bulk.total) {
        sent += chunk.length;
        if (!s.write(chunk)) { s.once("drain", pump); break; }
      }
      if (sent >= bulk.total) s.end();
    };
    const meter = setInterval(() => { bulk.flushed = sent - s.writableLength; }, 20);
    s.on("close", () => { clearInterval(meter); bulk.flushed = sent - s.writableLength; });
    s.on("error", () => {});
    pump();
  });
  // Reads nothing until the test resumes it, then counts.
  sinkServer = net.createServer((s) => {
    sink.socket = s;
    s.pause();
    s.on("data", (d: Uint8Array) => { sink.received += d.length; });
    s.on("error", () => {});
  });
  const [half, bulkPort, sinkPort] = [await listen(halfServer), await listen(bulkServer), await listen(sinkServer)];
  blackhole = runtime.spawn(["python3", "-c", BLACKHOLE]);
  const reader = blackhole.stdout.getReader();
  const first = await reader.read();
  reader.releaseLock();
  const hangPort = Number(new TextDecoder().decode(first.value ?? new Uint8Array()).trim());

  for (const name of ["rr", "lc", "queue", "retry", "idle", "half", "bulk", "sink", "slow"]) port[name] = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - { name: rr, bind: 127.0.0.1:${port.rr}, protocol: tcp, pool: rr }
  - { name: lc, bind: 127.0.0.1:${port.lc}, protocol: tcp, pool: lc }
  - { name: queue, bind: 127.0.0.1:${port.queue}, protocol: tcp, pool: queue }
  - { name: retry, bind: 127.0.0.1:${port.retry}, protocol: tcp, pool: retry }
  - { name: idle, bind: 127.0.0.1:${port.idle}, protocol: tcp, pool: rr, idle_timeout: 300ms }
  - { name: half, bind: 127.0.0.1:${port.half}, protocol: tcp, pool: half }
  - { name: bulk, bind: 127.0.0.1:${port.bulk}, protocol: tcp, pool: bulk }
  - { name: sink, bind: 127.0.0.1:${port.sink}, protocol: tcp, pool: sink }
  - { name: slow, bind: 127.0.0.1:${port.slow}, protocol: tcp, pool: slow }
pools:
  rr: { scheduler: rr, servers: [127.0.0.1:${p1}, 127.0.0.1:${p2}] }
  lc: { scheduler: lc, servers: [127.0.0.1:${p1}, 127.0.0.1:${p2}] }
  queue:
    scheduler: rr
    queue: { size: 10, timeout: 10s }
    servers: [{ address: 127.0.0.1:${p1}, max_conns: 1 }, { address: 127.0.0.1:${p2}, max_conns: 1 }]
  retry: { scheduler: rr, servers: [127.0.0.1:${refused}, 127.0.0.1:${p1}] }
  half: { servers: [127.0.0.1:${half}] }
  bulk: { servers: [127.0.0.1:${bulkPort}] }
  sink: { servers: [127.0.0.1:${sinkPort}] }
  slow:
    scheduler: rr
    connect_timeout: 300ms
    servers: [{ address: 127.0.0.1:${hangPort}, max_fails: 0 }, 127.0.0.1:${p1}]
`, 9);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([r1?.stop(), r2?.stop()]);
  for (const s of [halfServer, bulkServer, sinkServer]) s?.close();
  sink.socket?.destroy();
  blackhole?.kill("SIGKILL");
});

/** The port of the redis-server a connection reached (INFO server's tcp_port). */
async function redisPort(c: TcpClient): Promise<number> {
  const info = await c.command(["INFO", "server"]);
  return Number(/tcp_port:(\d+)/.exec(info)?.[1]);
}

test("tcp: Redis commands through the proxy; rr alternates connections between the two servers", { skip }, async () => {
  const [set, get] = await resp(port.rr, [["SET", "l4-key", "through the proxy"], ["GET", "l4-key"]]);
  assert.equal(set, "+OK");
  assert.equal(get, "through the proxy");
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await TcpClient.connect(port.rr);
    seen.push(await redisPort(c));
    c.destroy();
  }
  assert.equal(new Set(seen).size, 2, `connections reached ${seen}`);
  assert.notEqual(seen[0], seen[1]);
});

test("tcp: open sessions count as active: lc sends a new connection to the server whose session ended", { skip }, async () => {
  const a = await TcpClient.connect(port.lc), b = await TcpClient.connect(port.lc);
  const [pa, pb] = [await redisPort(a), await redisPort(b)];
  assert.notEqual(pa, pb, "two open sessions are on different servers");
  b.destroy();
  await b.until(() => b.closedAt !== null);
  // The release reaches Fulcrum a moment after the client closes: retry the pick a few times.
  let pc = 0;
  for (let i = 0; i < 20 && pc !== pb; i++) {
    const c = await TcpClient.connect(port.lc);
    pc = await redisPort(c);
    c.destroy();
    if (pc !== pb) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(pc, pb, "with a still open on its server, the next connection goes to the other one");
  a.destroy();
});

test("tcp: max_conns 1 per server: a third connection waits in the queue until a session ends", { skip }, async () => {
  const a = await TcpClient.connect(port.queue), b = await TcpClient.connect(port.queue);
  assert.equal(await a.command(["PING"]), "+PONG");
  assert.equal(await b.command(["PING"]), "+PONG");
  const c = await TcpClient.connect(port.queue);
  c.write("*1\r\n$4\r\nPING\r\n");
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(c.text, "", "no server free: the third session waits, its PING unanswered");
  a.destroy();
  await c.until(() => c.text.includes("+PONG"), 5000, "PONG after a slot freed");
  assert.equal(String(c.text), "+PONG\r\n");
  b.destroy();
  c.destroy();
});

test("tcp: a refused connect is retried on the other server; the client sees no error", { skip }, async () => {
  for (let i = 0; i < 4; i++) {
    const [pong] = await resp(port.retry, [["PING"]]);
    assert.equal(pong, "+PONG", `connection ${i}`);
  }
  assert.match(fulcrum.output(), /retry: upstream_refused from 127\.0\.0\.1:\d+: retry\/127\.0\.0\.1:\d+/);
});

test("tcp: a connect that hangs times out after connect_timeout and is retried on the other server", { skip }, async () => {
  // rr alternates, and max_fails 0 keeps the hanging server in turn: one of two connections meets it.
  const waited: number[] = [];
  for (let i = 0; i < 2; i++) {
    const c = await TcpClient.connect(port.slow);
    const sent = performance.now();
    assert.equal(await c.command(["PING"]), "+PONG");
    waited.push(performance.now() - sent);
    c.destroy();
  }
  assert.ok(waited.some((ms) => ms >= 290), `replies after ${waited.map((ms) => ms.toFixed(0))} ms: one waited out the connect timeout`);
  assert.match(fulcrum.output(), /slow: upstream_timeout from 127\.0\.0\.1:\d+: slow\/127\.0\.0\.1:\d+: connect timed out after 300 ms/);
});

test("tcp: clients that reset right after connecting do not stop the listener", { skip }, async () => {
  // A reset that lands before the accept made Deno's accept loop throw (ENOTCONN) and end.
  await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve) => {
    const s = net.connect({ port: port.rr, host: "127.0.0.1" });
    s.once("connect", () => { s.resetAndDestroy(); resolve(); });
    s.once("error", () => resolve());
  })));
  const [pong] = await resp(port.rr, [["PING"]]);
  assert.equal(pong, "+PONG");
});

test("tcp: idle_timeout closes a session with no traffic either way", { skip }, async () => {
  const c = await TcpClient.connect(port.idle);
  assert.equal(await c.command(["PING"]), "+PONG");
  const lastTraffic = performance.now();
  await c.until(() => c.closedAt !== null, 5000, "idle close");
  // The session's clock is the 50 ms sweep's, so its last-traffic time may be up to 50 ms early;
  // 100 ms of slack covers that and the reply's trip to this client.
  assert.ok(c.closedAt! - lastTraffic >= 200, `closed ${c.closedAt! - lastTraffic} ms after the last reply`);
  assert.match(fulcrum.output(), /idle: idle_timeout from 127\.0\.0\.1/);
});

test("tcp: half-close: the client's FIN reaches the server, whose reply still comes back", { skip }, async () => {
  const c = await TcpClient.connect(port.half, "127.0.0.1", true);
  c.write(new Uint8Array(100_000).fill(0x62));
  c.shutdown();
  await c.until(() => c.text.includes("\n"), 5000, "reply after FIN");
  assert.equal(c.text, "got 100000\n");
  await c.until(() => c.closedAt !== null, 5000, "close after both FINs");
});

test("tcp: half-close: the server's FIN reaches the client, whose later bytes still reach the server", { skip }, async () => {
  const before = halfSeen.length;
  const c = await TcpClient.connect(port.half, "127.0.0.1", true);
  c.write("FIN-FIRST");
  await c.until(() => c.endedAt !== null, 5000, "server FIN");
  assert.equal(c.text, "bye\n");
  c.write("after the server's FIN");
  c.shutdown();
  await c.until(() => c.closedAt !== null, 5000, "close");
  // The client's close and the server's read race: wait (bounded) for the bytes to land.
  for (let i = 0; i < 100 && halfSeen[before]?.afterOwnFin !== "after the server's FIN"; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(halfSeen[before].afterOwnFin, "after the server's FIN");
});

/** Kernel socket buffer maxima on this host: what loopback TCP can hold outside Fulcrum. */
function kernelBufferMax(): number {
  const max = (f: string) => Number(readFileSync(f, "utf8").trim().split(/\s+/)[2]);
  return max("/proc/sys/net/ipv4/tcp_wmem") + max("/proc/sys/net/ipv4/tcp_rmem");
}

/** Waits (bounded) until `value()` stops growing for `quietMs`. */
async function settled(value: () => number, quietMs = 600, timeoutMs = 15_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  let last = -1, since = Date.now();
  while (Date.now() < until) {
    const v = value();
    if (v !== last) { last = v; since = Date.now(); } else if (Date.now() - since >= quietMs) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  return value();
}

// Two sockets (server side and client side), each with a send and a receive buffer, lie on the
// path besides Fulcrum's own queue (256 KiB high-water mark, plus a read chunk): a proxy that
// ignored back-pressure would take the whole transfer, twice that bound.
const bound = () => 2 * kernelBufferMax() + 1024 * 1024;
/** Twice the bound, in 64 KiB chunks, and at least 96 MiB. */
const transferSize = () => Math.max(96 * 1024 * 1024, Math.ceil(2 * bound() / 65536) * 65536);

test("tcp: back-pressure: a client that reads nothing holds the server to a bounded amount sent", { skip }, async () => {
  const c = await TcpClient.connect(port.bulk);
  c.keep = false;
  c.socket.pause();
  const flushed = await settled(() => bulk.flushed);
  assert.ok(flushed < bound(), `server got ${flushed} bytes out while the client read nothing (bound ${bound()})`);
  assert.ok(flushed < bulk.total / 2);
  c.socket.resume();
  await c.until(() => c.closedAt !== null, 60_000, "the whole transfer");
  assert.equal(c.bytes, bulk.total, "every byte arrives once the client reads");
});

test("tcp: back-pressure: a server that reads nothing holds the client to a bounded amount sent", { skip }, async () => {
  const c = await TcpClient.connect(port.sink);
  const chunk = new Uint8Array(64 * 1024).fill(0x63);
  const total = transferSize();
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!c.socket.write(chunk)) { c.socket.once("drain", pump); return; }
    }
    c.socket.end();
  };
  pump();
  const flushed = await settled(() => sent - c.socket.writableLength);
  assert.ok(flushed < bound(), `client got ${flushed} bytes out while the server read nothing (bound ${bound()})`);
  sink.socket!.resume();
  const deadline = Date.now() + 60_000;
  while (sink.received < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(sink.received, total, "every byte arrives once the server reads");
  c.destroy();
});
