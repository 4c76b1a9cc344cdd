// HTTP/2 defences, each driven by crafted frames from a raw client against an edge run in this
// process (so its counters can be read): each flood is bounded, counted, and ends in a GOAWAY
// with the code RFC 9113 names, and the edge goes on serving other clients.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText } from "../src/control/schema.ts";
import { Generation } from "../src/control/generation.ts";
import { freePort, startBackend, type Backend } from "./helpers/backends.ts";
import { RawH2 } from "./helpers/h2-client.ts";
import {
  COMPRESSION_ERROR, encodeFrame, encodeHeaders, encodePing, encodeRstStream, encodeSettings, encodeWindowUpdate,
  ENHANCE_YOUR_CALM, F_END_HEADERS, F_END_STREAM, FLOW_CONTROL_ERROR, NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM,
  S_INITIAL_WINDOW_SIZE, T_CONTINUATION, T_DATA, T_HEADERS, T_RST_STREAM, u32,
} from "../src/http2/frame.ts";
import { encodeInteger } from "../src/http2/hpack.ts";
import type { EdgeStats } from "../src/edge/stats.ts";
import { MAX_STREAMS } from "../src/edge/h2/connection.ts";

const LIMIT = 8192; // max_header_size
// Each listener counts for itself: `stats` for the first, `slowStats` for the one with the timeouts.
let backend: Backend, gen: Generation, port: number, slowPort: number, stats: EdgeStats, slowStats: EdgeStats;

before(async () => {
  backend = await startBackend("h2-defence-backend");
  port = await freePort();
  slowPort = await freePort();
  const parsed = parseConfigText(`
listeners:
  - { bind: "127.0.0.1:${port}", http2: true, max_header_size: ${LIMIT} }
  - { bind: "127.0.0.1:${slowPort}", http2: true, body_timeout: 1s, header_timeout: 1s, keepalive_timeout: 1s, max_body_size: 1k }
pools:
  web: { servers: [${backend.address}] }
`);
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.message);
  gen = await Generation.build(parsed.config);
  await gen.start();
  stats = gen.edge!.listeners[0].stats;
  slowStats = gen.edge!.listeners[1].stats;
});

after(async () => {
  await gen?.stop();
  await backend?.stop();
});

const join = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

/** A fresh connection still gets a 200: the edge survived. */
async function stillServes(): Promise<void> {
  const c = await RawH2.connect(port);
  c.send(c.request(1, "/alive"));
  const h = await c.waitFor((f) => f.type === T_HEADERS && f.stream === 1);
  c.close();
  assert.equal(h?.fields?.[0][1], "200");
}

test("h2 defences: rapid reset (CVE-2023-44487): HEADERS then RST_STREAM, 2000 times, ends in GOAWAY ENHANCE_YOUR_CALM after a bounded number", async () => {
  const before = backend.hits, counted = stats.h2.defences.rapid_reset;
  const c = await RawH2.connect(port);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 2000; i++) { const id = 1 + 2 * i; frames.push(c.request(id, `/reset/${i}`), encodeRstStream(id, 0x8)); }
  c.send(join(frames));
  const g = await c.goaway();
  assert.equal(g?.code, ENHANCE_YOUR_CALM);
  assert.match(g!.debug, /rapid reset/);
  assert.ok(g!.lastStream < 2 * (2 * MAX_STREAMS + 40), `stopped after a bounded number of streams (last ${g!.lastStream})`);
  assert.ok(await c.closedWithin());
  assert.equal(stats.h2.defences.rapid_reset, counted + 1);
  assert.ok(backend.hits - before <= 2 * MAX_STREAMS + 40, `at most the budget reached the backend (${backend.hits - before})`);
  await stillServes();
});

test("h2 defences: CONTINUATION flood: endless empty CONTINUATION frames end in GOAWAY ENHANCE_YOUR_CALM", async () => {
  const counted = stats.h2.defences.continuation_flood;
  const c = await RawH2.connect(port);
  const first = c.request(1, "/cont");
  first[4] &= ~F_END_HEADERS; // HEADERS without END_HEADERS
  const cont = Array.from({ length: 500 }, () => encodeFrame(T_CONTINUATION, 0, 1));
  c.send(join([first, ...cont]));
  const g = await c.goaway();
  assert.equal(g?.code, ENHANCE_YOUR_CALM);
  assert.equal(stats.h2.defences.continuation_flood, counted + 1);
  assert.ok(await c.closedWithin());
});

test("h2 defences: a header block growing past twice max_header_size over CONTINUATION frames ends in GOAWAY ENHANCE_YOUR_CALM before decoding", async () => {
  const counted = stats.h2.defences.header_block_too_large;
  const c = await RawH2.connect(port);
  const first = c.request(1, "/big-block");
  first[4] &= ~F_END_HEADERS;
  const junk = new Uint8Array(16000).fill(0x41);
  c.send(join([first, encodeFrame(T_CONTINUATION, 0, 1, junk), encodeFrame(T_CONTINUATION, 0, 1, junk)]));
  const g = await c.goaway();
  assert.equal(g?.code, ENHANCE_YOUR_CALM);
  assert.equal(stats.h2.defences.header_block_too_large, counted + 1);
});

/** A header block: one literal with incremental indexing (x-bomb: value), then `refs` indexed
 * references to it (index 62, the newest dynamic entry). */
function bombBlock(c: RawH2, stream: number, valueBytes: number, refs: number): Uint8Array {
  const base = c.encoder.encode([[":method", "GET"], [":scheme", "http"], [":path", "/bomb"], [":authority", "h2.test"]]);
  const name = "x-bomb", value = "v".repeat(valueBytes);
  const lit = new Uint8Array(16 + name.length + value.length);
  let at = 0;
  lit[at++] = 0x40;
  at = encodeInteger(lit, at, name.length, 7, 0);
  for (const ch of name) lit[at++] = ch.charCodeAt(0);
  at = encodeInteger(lit, at, value.length, 7, 0);
  for (const ch of value) lit[at++] = ch.charCodeAt(0);
  const block = join([base, lit.subarray(0, at), new Uint8Array(refs).fill(0x80 | 62)]);
  return encodeHeaders(stream, block, true, 16384);
}

test("h2 defences: an HPACK bomb (one 4 KB entry referenced 1000 times) ends in GOAWAY ENHANCE_YOUR_CALM, nothing forwarded", async () => {
  const before = backend.hits, counted = stats.h2.defences.hpack_bomb;
  const c = await RawH2.connect(port);
  c.send(bombBlock(c, 1, 4000, 1000));
  const g = await c.goaway();
  assert.equal(g?.code, ENHANCE_YOUR_CALM);
  assert.match(g!.debug, /header list of \d+ bytes/);
  assert.equal(stats.h2.defences.hpack_bomb, counted + 1);
  assert.equal(backend.hits, before);
});

test("h2 defences: a header list over max_header_size gets 431 on its stream (as HTTP/1.1), the connection goes on", async () => {
  const counted = stats.h2.defences.header_list_too_large;
  const c = await RawH2.connect(port);
  c.send(bombBlock(c, 1, 3000, 2)); // 3 x ~3 KB: over 8 KB, under the bomb bound
  const h = await c.waitFor((f) => f.type === T_HEADERS && f.stream === 1);
  assert.equal(h?.fields?.[0][1], "431");
  assert.deepEqual(h?.fields?.find(([n]) => n === "x-fulcrum-error"), ["x-fulcrum-error", "header_too_large"]);
  assert.equal(stats.h2.defences.header_list_too_large, counted + 1);
  // The bomb block put an entry in the edge's table that this client's encoder does not know
  // of: the next request uses only the static table and literals that index nothing.
  const authority = [...new TextEncoder().encode("h2.test")];
  c.send(encodeHeaders(3, Uint8Array.from([0x82, 0x86, 0x84, 0x01, authority.length, ...authority]), true, 16384));
  const next = await c.waitFor((f) => f.type === T_HEADERS && f.stream === 3);
  assert.equal(next?.fields?.[0][1], "200");
  c.close();
});

for (const [name, defence, frame] of [
  ["SETTINGS", "settings_flood", () => encodeSettings([[S_INITIAL_WINDOW_SIZE, 65535]])],
  ["PING", "ping_flood", () => encodePing(new Uint8Array(8), false)],
] as const) {
  test(`h2 defences: a ${name} flood (each asks for an ACK) ends in GOAWAY ENHANCE_YOUR_CALM after a bounded number of ACKs`, async () => {
    const counted = stats.h2.defences[defence];
    const c = await RawH2.connect(port);
    c.send(join(Array.from({ length: 5000 }, frame)));
    const g = await c.goaway();
    assert.equal(g?.code, ENHANCE_YOUR_CALM);
    assert.equal(stats.h2.defences[defence], counted + 1);
    assert.ok(await c.closedWithin());
    const acks = c.frames.filter((f) => f.flags & 1 && f.type === (name === "PING" ? 6 : 4)).length;
    assert.ok(acks < 100, `ACKs bounded (${acks})`);
  });
}

test("h2 defences: a flood of empty DATA frames ends in GOAWAY ENHANCE_YOUR_CALM", async () => {
  const counted = stats.h2.defences.empty_frame_flood;
  const c = await RawH2.connect(port);
  const frames = [c.request(1, "/empty", { method: "POST", endStream: false })];
  for (let i = 0; i < 2000; i++) frames.push(encodeFrame(T_DATA, 0, 1));
  c.send(join(frames));
  const g = await c.goaway();
  assert.equal(g?.code, ENHANCE_YOUR_CALM);
  assert.equal(stats.h2.defences.empty_frame_flood, counted + 1);
});

test("h2 defences: streams past SETTINGS_MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM); a client that keeps opening them gets GOAWAY ENHANCE_YOUR_CALM", async () => {
  const refused = stats.h2.defences.refused_streams, flood = stats.h2.defences.stream_flood;
  const c = await RawH2.connect(port);
  const frames: Uint8Array[] = [];
  // Requests whose bodies never come stay open.
  for (let i = 0; i < MAX_STREAMS + 200; i++) frames.push(c.request(1 + 2 * i, "/open", { method: "POST", endStream: false }));
  c.send(join(frames));
  const g = await c.goaway();
  assert.equal(g?.code, ENHANCE_YOUR_CALM);
  const rst = c.frames.filter((f) => f.type === T_RST_STREAM);
  assert.ok(rst.length > 0 && rst.every((f) => u32(f.payload, 0) === REFUSED_STREAM && f.stream > 2 * MAX_STREAMS));
  assert.ok(stats.h2.defences.refused_streams - refused >= rst.length);
  assert.equal(stats.h2.defences.stream_flood, flood + 1);
});

test("h2 defences: WINDOW_UPDATE abuse: overflow past 2^31 - 1 is a FLOW_CONTROL_ERROR, 0 a PROTOCOL_ERROR, tiny increments a flood", async () => {
  const flow = stats.h2.defences.flow_control, tiny = stats.h2.defences.window_update_flood;
  const over = await RawH2.connect(port);
  over.send(encodeWindowUpdate(0, 2 ** 31 - 1));
  assert.equal((await over.goaway())?.code, FLOW_CONTROL_ERROR);
  assert.equal(stats.h2.defences.flow_control, flow + 1);
  const zero = await RawH2.connect(port);
  zero.send(encodeFrame(8, 0, 0, new Uint8Array(4)));
  assert.equal((await zero.goaway())?.code, PROTOCOL_ERROR);
  const flood = await RawH2.connect(port);
  flood.send(join(Array.from({ length: 3000 }, () => encodeWindowUpdate(0, 1))));
  assert.equal((await flood.goaway())?.code, ENHANCE_YOUR_CALM);
  assert.equal(stats.h2.defences.window_update_flood, tiny + 1);
});

test("h2 defences: malformed input: DATA on stream 0 and a bad HPACK block are connection errors with their codes", async () => {
  const a = await RawH2.connect(port);
  a.send(encodeFrame(T_DATA, F_END_STREAM, 0, new Uint8Array(3)));
  assert.equal((await a.goaway())?.code, PROTOCOL_ERROR);
  const b = await RawH2.connect(port);
  b.send(encodeHeaders(1, Uint8Array.from([0x80]), true, 16384)); // index 0
  assert.equal((await b.goaway())?.code, COMPRESSION_ERROR);
  await stillServes();
});

test("h2 flow control: the edge sends no more DATA than the client's window, and the rest after WINDOW_UPDATE", async () => {
  const c = await RawH2.connect(port, { preface: false });
  const { PREFACE } = await import("../src/http2/frame.ts");
  c.send(PREFACE, encodeSettings([[S_INITIAL_WINDOW_SIZE, 1000]]));
  c.send(c.request(1, "/?size=50000"));
  const h = await c.waitFor((f) => f.type === T_HEADERS && f.stream === 1);
  assert.equal(h?.fields?.[0][1], "200");
  const got = () => c.frames.filter((f) => f.type === T_DATA && f.stream === 1).reduce((n, f) => n + f.payload.length, 0);
  await c.waitFor(() => got() >= 1000, 5000);
  await c.waitFor(() => got() > 1000, 300); // nothing more may come: the window is spent
  assert.equal(got(), 1000);
  c.send(encodeWindowUpdate(1, 49000));
  const end = await c.waitFor((f) => f.type === T_DATA && f.stream === 1 && (f.flags & F_END_STREAM) !== 0);
  assert.ok(end);
  assert.equal(got(), 50000);
  c.close();
});

test("h2 defences: every GOAWAY above was counted by its code", () => {
  assert.ok((stats.h2.goaway.ENHANCE_YOUR_CALM ?? 0) >= 9);
  assert.ok((stats.h2.goaway.PROTOCOL_ERROR ?? 0) >= 2);
  assert.equal(NO_ERROR, 0);
});

test("h2 timeouts: a request body that stalls for body_timeout gets 408 on its stream; the connection goes on", async () => {
  const timeouts = slowStats.errors.request_timeout;
  const c = await RawH2.connect(slowPort);
  c.send(c.request(1, "/stall", { method: "POST", endStream: false }), c.data(1, new Uint8Array(10), false));
  const h = await c.waitFor((f) => f.type === T_HEADERS && f.stream === 1, 15_000);
  assert.equal(h?.fields?.[0][1], "408");
  assert.equal(slowStats.errors.request_timeout, timeouts + 1);
  // The rest of the body is refused (RST_STREAM NO_ERROR after the answer); other streams work.
  const rst = await c.waitFor((f) => f.type === T_RST_STREAM && f.stream === 1);
  assert.equal(u32(rst!.payload, 0), NO_ERROR);
  c.send(c.request(3, "/next"));
  const next = await c.waitFor((f) => f.type === T_HEADERS && f.stream === 3);
  assert.equal(next?.fields?.[0][1], "200");
  c.close();
});

test("h2 timeouts: a header block left unfinished for header_timeout ends in GOAWAY and a close", async () => {
  const c = await RawH2.connect(slowPort);
  const first = c.request(1, "/half");
  first[4] &= ~F_END_HEADERS;
  c.send(first);
  const g = await c.goaway(15_000);
  assert.equal(g?.code, NO_ERROR);
  assert.ok(await c.closedWithin());
});

test("h2 timeouts: PINGs do not keep an idle connection open past keepalive_timeout", async () => {
  const c = await RawH2.connect(slowPort);
  c.send(c.request(1, "/one"));
  assert.ok(await c.waitFor((f) => f.type === T_DATA && f.stream === 1 && (f.flags & F_END_STREAM) !== 0));
  // A PING every 200 ms, for at most 10 s (the close is due 1 s after the answer).
  const pinger = setInterval(() => c.send(encodePing(new Uint8Array(8), false)), 200);
  const g = await c.goaway(10_000);
  clearInterval(pinger);
  assert.deepEqual([g?.code, g?.debug], [NO_ERROR, "idle"]);
  assert.ok(await c.closedWithin());
});

test("h2 limits: max_body_size gives 413 over h2 as over HTTP/1.1, by content-length or by the bytes that came", async () => {
  const before = slowStats.errors.body_too_large, hits = backend.hits;
  const c = await RawH2.connect(slowPort);
  c.send(c.request(1, "/big", { method: "POST", endStream: false, extra: [["content-length", "5000"]] }));
  c.send(c.request(3, "/streamed", { method: "POST", endStream: false }), c.data(3, new Uint8Array(800), false), c.data(3, new Uint8Array(800), false));
  for (const id of [1, 3]) {
    const h = await c.waitFor((f) => f.type === T_HEADERS && f.stream === id);
    assert.equal(h?.fields?.[0][1], "413", `stream ${id}`);
  }
  assert.equal(slowStats.errors.body_too_large, before + 2);
  assert.equal(backend.hits, hits);
  c.close();
});
