// The L4 UDP proxy end to end: real dnsmasq servers (each answering its own address for the same
// name, so a reply tells which one served it) behind udp listeners; dig and raw node:dgram queries.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { runtime } from "../src/runtime/index.ts";
import { type Running, startCli, startFulcrum, writeTemp } from "./helpers/fulcrum.ts";
import { waitFor } from "./helpers/netns.ts";
import { freePort, type Peer, startPeer, tempDir } from "./helpers/l4.ts";
import { needs } from "./helpers/peers.ts";

const skip = needs("dnsmasq", "dig");
const dns: Peer[] = [];
let fulcrum: Running;
const port: Record<string, number> = {};

/** A DNS query for `name` type A, id `id`. */
function query(name: string, id: number): Uint8Array {
  const labels = name.split(".").flatMap((l) => [l.length, ...[...l].map((c) => c.charCodeAt(0))]);
  return Uint8Array.of(id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1);
}

/** The address in a one-answer A reply (its last four bytes), and the reply's id. */
function answer(reply: Uint8Array): { id: number; address: string } {
  return { id: (reply[0] << 8) | reply[1], address: [...reply.subarray(reply.length - 4)].join(".") };
}

/** A client socket bound to `address`: send a query, get the reply and where it came from. */
async function client(address = "127.0.0.1") {
  const s = dgram.createSocket("udp4");
  const replies: { msg: Uint8Array; from: dgram.RemoteInfo }[] = [];
  const waiters: (() => void)[] = [];
  s.on("message", (msg: Uint8Array, from: dgram.RemoteInfo) => { replies.push({ msg, from }); waiters.splice(0).forEach((w) => w()); });
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  let id = 1;
  return {
    async ask(listenerPort: number, name = "x.l4.test"): Promise<{ address: string; from: dgram.RemoteInfo }> {
      const want = id++;
      const seen = replies.length;
      s.send(query(name, want), listenerPort, "127.0.0.1");
      const deadline = Date.now() + 5000;
      while (replies.length === seen && Date.now() < deadline) await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 200); });
      const got = replies[seen];
      if (!got) throw new Error("no DNS reply in 5 s");
      const a = answer(got.msg);
      assert.equal(a.id, want);
      return { address: a.address, from: got.from };
    },
    close: () => s.close(),
  };
}

before(async () => {
  if (skip) return;
  for (const answerAddress of ["192.0.2.1", "192.0.2.2"]) {
    const p = await freePort();
    const dir = tempDir("dnsmasq");
    dns.push(await startPeer([
      "dnsmasq", "--no-daemon", `--port=${p}`, "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
      `--address=/l4.test/${answerAddress}`, `--pid-file=${dir}/pid`, "--user=root", "--cache-size=0",
    ], p, async () => {
      const c = await client();
      try { return (await c.ask(p)).address === answerAddress; } finally { c.close(); }
    }));
  }
  for (const name of ["sessions", "dns", "sticky", "idle"]) port[name] = await freePort();
  const servers = `[${dns.map((d) => `127.0.0.1:${d.port}`).join(", ")}]`;
  fulcrum = await startFulcrum(`
listeners:
  - { name: sessions, bind: 127.0.0.1:${port.sessions}, protocol: udp, pool: rr }
  - { name: dns, bind: 127.0.0.1:${port.dns}, protocol: udp, pool: rr2, responses: 1 }
  - { name: sticky, bind: 127.0.0.1:${port.sticky}, protocol: udp, pool: sh, responses: 1 }
  - { name: idle, bind: 127.0.0.1:${port.idle}, protocol: udp, pool: rr3, idle_timeout: 300ms }
pools:
  rr: { scheduler: rr, servers: ${servers} }
  rr2: { scheduler: rr, servers: ${servers} }
  rr3: { scheduler: rr, servers: ${servers} }
  sh: { scheduler: sh, servers: ${servers} }
`, 4);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all(dns.map((d) => d.stop()));
});

test("udp: dig gets its answer through the proxy", { skip }, async () => {
  const child = runtime.spawn(["dig", "@127.0.0.1", "-p", String(port.dns), "+short", "+tries=1", "+time=5", "name.l4.test"]);
  const out = await new Response(child.stdout).text();
  assert.equal(await child.exited, 0);
  assert.match(out.trim(), /^192\.0\.2\.[12]$/);
});

test("udp: replies come back from the listener's own address and port", { skip }, async () => {
  const c = await client();
  const r = await c.ask(port.sessions);
  assert.equal(r.from.address, "127.0.0.1");
  assert.equal(r.from.port, port.sessions);
  c.close();
});

test("udp: a session per client address and port: one socket stays on its server, a new one gets the next", { skip }, async () => {
  const a = await client(), b = await client();
  const first = (await a.ask(port.sessions)).address;
  for (let i = 0; i < 3; i++) assert.equal((await a.ask(port.sessions)).address, first, "same client socket, same session");
  assert.notEqual((await b.ask(port.sessions)).address, first, "rr gives the new session the other server");
  a.close();
  b.close();
});

test("udp: responses: 1 ends the session at each reply, so one socket's queries alternate under rr", { skip }, async () => {
  const a = await client();
  const seen = [];
  for (let i = 0; i < 4; i++) seen.push((await a.ask(port.dns)).address);
  assert.deepEqual(seen, [seen[0], seen[1], seen[0], seen[1]]);
  assert.notEqual(seen[0], seen[1]);
  a.close();
});

test("udp: idle_timeout ends a quiet session: the next query from the same socket is a new session", { skip }, async () => {
  const a = await client();
  const first = (await a.ask(port.idle)).address;
  assert.equal((await a.ask(port.idle)).address, first);
  // Past the 300 ms idle timeout plus the sweep's 50 ms step, with room for a loaded machine.
  await new Promise((r) => setTimeout(r, 700));
  assert.notEqual((await a.ask(port.idle)).address, first);
  a.close();
});

test("udp: sh keys on the client address: every socket of one address reaches the same server", { skip }, async () => {
  const byAddress = new Map<string, Set<string>>();
  for (const from of ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]) {
    const got = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const c = await client(from);
      got.add((await c.ask(port.sticky)).address);
      c.close();
    }
    byAddress.set(from, got);
  }
  for (const [from, got] of byAddress) assert.equal(got.size, 1, `${from} reached ${[...got]}`);
});

test("udp reload: the listener keeps its socket (replies still from its port); datagrams after it go to the new pool, an earlier client's too", { skip }, async () => {
  const p = await freePort();
  const text = (server: Peer) => `listeners: [{ bind: "127.0.0.1:${p}", protocol: udp, pool: dns }]\npools:\n  dns: { servers: [127.0.0.1:${server.port}] }\n`;
  const file = await writeTemp(text(dns[0]));
  const f = await startCli(["run", "--config", file], 1);
  const earlier = await client(), fresh = await client();
  try {
    assert.equal((await earlier.ask(p)).address, "192.0.2.1");
    await runtime.writeTextFile(file, text(dns[1]));
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    // The old generation's sessions end with it: a UDP session is picked again by the new one.
    for (const c of [earlier, fresh]) {
      const reply = await c.ask(p);
      assert.deepEqual([reply.address, reply.from.port], ["192.0.2.2", p]);
    }
  } finally {
    earlier.close();
    fresh.close();
    assert.equal(await f.stop(), 0);
  }
});
