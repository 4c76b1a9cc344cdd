// The frame layer: frames cut from bytes however they are split, each type's form judged with the
// error code RFC 9113 names, and SETTINGS values bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  applySettings, checkFrame, defaultSettings, encodeData, encodeFrame, encodeGoaway, encodeHeaders, encodePing,
  encodeSettings, encodeWindowUpdate, F_END_HEADERS, F_END_STREAM, F_PADDED, F_PRIORITY, type Frame, FLOW_CONTROL_ERROR,
  FRAME_SIZE_ERROR, FrameReader, framedContent, H2Error, PREFACE, PROTOCOL_ERROR, S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE,
  T_CONTINUATION, T_DATA, T_GOAWAY, T_HEADERS, T_PING, T_PRIORITY, T_PUSH_PROMISE, T_RST_STREAM, T_SETTINGS, T_WINDOW_UPDATE,
} from "./frame.ts";

function read(bytes: Uint8Array, split: number, preface = true): Frame[] {
  const got: Frame[] = [];
  const r = new FrameReader(16384, preface, (f) => got.push({ ...f, payload: f.payload.slice() }));
  for (let at = 0; at < bytes.length; at += split) r.push(bytes.subarray(at, at + split));
  return got;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

test("frames: the preface and frames are read the same at any split, payloads intact", () => {
  const stream = concat(PREFACE, encodeSettings([[S_INITIAL_WINDOW_SIZE, 1 << 20]]), encodePing(new Uint8Array(8).fill(7), false),
    encodeHeaders(1, new Uint8Array(40000).fill(3), true, 16384), encodeData(1, new Uint8Array(100).fill(9), 0, 100, true, 16384));
  const whole = read(stream, stream.length);
  assert.deepEqual(whole.map((f) => f.type), [T_SETTINGS, T_PING, T_HEADERS, T_CONTINUATION, T_CONTINUATION, T_DATA]);
  assert.equal(whole[2].flags, F_END_STREAM);
  assert.equal(whole[4].flags, F_END_HEADERS);
  assert.equal(whole[4].payload.length, 40000 - 2 * 16384);
  for (const split of [1, 7, 9, 100, 4096]) assert.deepEqual(read(stream, split), whole, `split ${split}`);
});

test("frames: a wrong preface is a PROTOCOL_ERROR, an oversized frame a FRAME_SIZE_ERROR", () => {
  assert.throws(() => read(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"), 100), (e: H2Error) => e.code === PROTOCOL_ERROR);
  const big = encodeFrame(T_DATA, 0, 1, new Uint8Array(16385));
  assert.throws(() => read(big, 10, false), (e: H2Error) => e.code === FRAME_SIZE_ERROR);
});

test("frames: each type's stream-id, length and padding rules, with the RFC's error codes", () => {
  const f = (type: number, flags: number, stream: number, len: number, first = 0): Frame => {
    const payload = new Uint8Array(len);
    if (len > 0) payload[0] = first;
    return { type, flags, stream, payload };
  };
  const cases: [Frame, number | null, number?][] = [
    [f(T_DATA, 0, 0, 4), PROTOCOL_ERROR], [f(T_DATA, F_PADDED, 1, 4, 4), PROTOCOL_ERROR], [f(T_DATA, F_PADDED, 1, 4, 3), null],
    [f(T_HEADERS, 0, 0, 4), PROTOCOL_ERROR], [f(T_HEADERS, F_PRIORITY, 1, 4), FRAME_SIZE_ERROR],
    [f(T_HEADERS, F_PADDED | F_PRIORITY, 1, 6, 1), PROTOCOL_ERROR], [f(T_HEADERS, F_PADDED | F_PRIORITY, 1, 7, 1), null],
    [f(T_PRIORITY, 0, 0, 5), PROTOCOL_ERROR], [f(T_PRIORITY, 0, 3, 4), FRAME_SIZE_ERROR, 3],
    [f(T_RST_STREAM, 0, 0, 4), PROTOCOL_ERROR], [f(T_RST_STREAM, 0, 1, 5), FRAME_SIZE_ERROR],
    [f(T_SETTINGS, 0, 1, 6), PROTOCOL_ERROR], [f(T_SETTINGS, 1, 0, 6), FRAME_SIZE_ERROR], [f(T_SETTINGS, 0, 0, 7), FRAME_SIZE_ERROR],
    [f(T_PUSH_PROMISE, 0, 1, 4), PROTOCOL_ERROR],
    [f(T_PING, 0, 1, 8), PROTOCOL_ERROR], [f(T_PING, 0, 0, 7), FRAME_SIZE_ERROR],
    [f(T_GOAWAY, 0, 1, 8), PROTOCOL_ERROR], [f(T_GOAWAY, 0, 0, 7), FRAME_SIZE_ERROR],
    [f(T_WINDOW_UPDATE, 0, 0, 3), FRAME_SIZE_ERROR], [f(T_WINDOW_UPDATE, 0, 5, 4), PROTOCOL_ERROR, 5],
    [f(T_CONTINUATION, 0, 0, 1), PROTOCOL_ERROR], [f(0x42, 0xff, 0, 3), null],
  ];
  for (const [frame, code, stream] of cases) {
    const what = `type ${frame.type} flags ${frame.flags} stream ${frame.stream} len ${frame.payload.length}`;
    if (code === null) { assert.doesNotThrow(() => checkFrame(frame), what); continue; }
    assert.throws(() => checkFrame(frame), (e: H2Error) => e.code === code && e.stream === (stream ?? 0), what);
  }
  const padded: Frame = { type: T_HEADERS, flags: F_PADDED | F_PRIORITY, stream: 1, payload: Uint8Array.from([2, 0, 0, 0, 0, 9, 0xaa, 0xbb, 0, 0]) };
  assert.deepEqual(framedContent(padded), Uint8Array.from([0xaa, 0xbb]));
});

test("frames: SETTINGS values are bounded (window 2^31 - 1, frame size 16384..2^24 - 1, push 0/1)", () => {
  const s = defaultSettings();
  const p = (id: number, v: number) => encodeSettings([[id, v]]).subarray(9);
  assert.equal(applySettings(s, p(S_INITIAL_WINDOW_SIZE, 100000)), 100000 - 65535);
  assert.throws(() => applySettings(s, p(S_INITIAL_WINDOW_SIZE, 2 ** 31)), (e: H2Error) => e.code === FLOW_CONTROL_ERROR);
  assert.throws(() => applySettings(s, p(S_MAX_FRAME_SIZE, 16383)), (e: H2Error) => e.code === PROTOCOL_ERROR);
  assert.throws(() => applySettings(s, p(S_MAX_FRAME_SIZE, 2 ** 24)), (e: H2Error) => e.code === PROTOCOL_ERROR);
  assert.throws(() => applySettings(s, p(2, 2)), (e: H2Error) => e.code === PROTOCOL_ERROR);
  applySettings(s, p(S_MAX_FRAME_SIZE, 65536));
  assert.equal(s.maxFrameSize, 65536);
  applySettings(s, p(0x99, 5)); // unknown: ignored
  const goaway = encodeGoaway(7, 0xb, "calm");
  assert.deepEqual([...goaway.subarray(9, 17)], [0, 0, 0, 7, 0, 0, 0, 0xb]);
  assert.deepEqual([...encodeWindowUpdate(3, 2 ** 31 - 1).subarray(9)], [0x7f, 0xff, 0xff, 0xff]);
});
