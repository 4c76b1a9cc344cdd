import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { MAX_HELLO_BYTES, parseClientHello } from "./client-hello.ts";

/** The first bytes a real TLS client (node:tls) sends, captured by a plain TCP server. */
async function capturedHello(servername: string | undefined): Promise<Uint8Array> {
  let got = new Uint8Array(0);
  const server = net.createServer((s) => {
    s.on("data", (d: Uint8Array) => {
      const next = new Uint8Array(got.length + d.length);
      next.set(got);
      next.set(d, got.length);
      got = next;
      if (parseClientHello(got).status !== "incomplete") s.destroy();
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => {
    const c = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
    c.on("error", () => resolve());
    c.on("close", () => resolve());
  });
  server.close();
  return got;
}

/** A ClientHello record built by hand around the given extensions block. */
function hello(extensions: number[] | null, recordVersion = 0x01): Uint8Array {
  const body = [0x03, 0x03, ...new Array(32).fill(7), 0, 0, 2, 0x13, 0x01, 1, 0];
  if (extensions) body.push(extensions.length >> 8, extensions.length & 0xff, ...extensions);
  const hs = [0x01, 0, body.length >> 8, body.length & 0xff, ...body];
  return Uint8Array.of(0x16, 0x03, recordVersion, hs.length >> 8, hs.length & 0xff, ...hs);
}

function sniExtension(name: string, type = 0): number[] {
  const n = [...name].map((c) => c.charCodeAt(0));
  const list = [type, n.length >> 8, n.length & 0xff, ...n];
  const ext = [list.length >> 8, list.length & 0xff, ...list];
  return [0, 0, ext.length >> 8, ext.length & 0xff, ...ext];
}

test("client-hello: the server name of a real node:tls ClientHello, lowercased", async () => {
  const r = parseClientHello(await capturedHello("API.Example.com"));
  assert.deepEqual(r, { status: "ok", sni: "api.example.com" });
});

test("client-hello: a real ClientHello without SNI (connecting to an IP address) has none", async () => {
  assert.deepEqual(parseClientHello(await capturedHello(undefined)), { status: "ok", sni: null });
});

test("client-hello: incomplete until the whole hello is there, byte by byte", () => {
  const whole = hello([...sniExtension("a.test")]);
  for (let n = 0; n < whole.length; n++) assert.equal(parseClientHello(whole.subarray(0, n)).status, "incomplete", `${n} bytes`);
  assert.deepEqual(parseClientHello(whole), { status: "ok", sni: "a.test" });
});

test("client-hello: a hello split over two handshake records is gathered", () => {
  const whole = hello(sniExtension("split.test"));
  const hs = whole.subarray(5);
  const cut = 20;
  const rec = (part: Uint8Array) => Uint8Array.of(0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff, ...part);
  const two = Uint8Array.of(...rec(hs.subarray(0, cut)), ...rec(hs.subarray(cut)));
  assert.deepEqual(parseClientHello(two), { status: "ok", sni: "split.test" });
});

test("client-hello: other extensions before server_name are skipped; a hello with no extensions has no name", () => {
  const other = [0x00, 0x2b, 0, 3, 2, 3, 4]; // supported_versions
  assert.deepEqual(parseClientHello(hello([...other, ...sniExtension("b.test")])), { status: "ok", sni: "b.test" });
  assert.deepEqual(parseClientHello(hello(null)), { status: "ok", sni: null });
});

test("client-hello: not TLS, not a hello, malformed lengths and bad names are invalid", () => {
  const status = (b: Uint8Array) => parseClientHello(b).status;
  assert.equal(status(Uint8Array.from("GET / HTTP/1.1\r\n\r\n", (c) => c.charCodeAt(0))), "invalid");
  const notHello = hello(sniExtension("a.test")).slice();
  notHello[5] = 0x02; // ServerHello
  assert.equal(status(notHello), "invalid");
  const badExt = hello(sniExtension("a.test")).slice();
  badExt[badExt.length - 10] = 0xff; // the server_name list's length, past its extension
  assert.equal(status(badExt), "invalid");
  assert.equal(status(hello(sniExtension("bad name!"))), "invalid");
  assert.equal(status(hello(sniExtension("a.test")).slice(0, 5).fill(0x17, 0, 1)), "invalid"); // application data record
});

test("client-hello: a hello claiming more than the bound is refused without waiting for it", () => {
  const big = Uint8Array.of(0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x00, 0x00); // handshake of 64 KiB
  const r = parseClientHello(big);
  assert.ok(r.status === "invalid" && r.reason.includes(String(MAX_HELLO_BYTES)), JSON.stringify(r));
});
