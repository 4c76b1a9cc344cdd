// Across a reload, sessions still in flight on the old generation count toward the same (pool,
// server address) in the new one, so least-connection picks and max_conns right after a reload
// see them, until they end; and a request on a retiring keep-alive connection is not dropped
// when the process was held up (the drop wrk counted as read errors in bench/reload.bench.ts).
import { after, test } from "node:test";
import net from "node:net";
import assert from "node:assert/strict";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { startCli, writeTemp } from "./helpers/fulcrum.ts";
import { type Reply, request } from "./helpers/http.ts";
import { waitFor } from "./helpers/netns.ts";
import { runtime } from "../src/runtime/index.ts";

const backends: Backend[] = [];
after(async () => { for (const b of backends) await b.stop(); });

async function holding(name: string): Promise<Backend> {
  const b = await startBackend(name, "hold");
  backends.push(b);
  return b;
}

const configText = (port: number, servers: string[]) =>
  `listeners: [{ bind: "127.0.0.1:${port}" }]\ndrain_timeout: 10s\npools:\n  web:\n    scheduler: lc\n    servers: [${servers.join(", ")}]\n`;

test("reload: lc in the new generation counts the old generation's requests in flight, and their end", async () => {
  const [a, b] = [await holding("held-a"), await holding("held-b")];
  const port = await freePort();
  const file = await writeTemp(configText(port, [a.address]));
  const f = await startCli(["run", "--config", file], 1);
  const replies: Promise<Reply>[] = [];
  const send = (path: string) => { replies.push(request(`${f.url}${path}`)); };
  try {
    // Three long requests on generation 1, all on a.
    for (let i = 0; i < 3; i++) send(`/old/${i}`);
    await waitFor("three requests held on a", () => a.held === 3, 5000);
    await runtime.writeTextFile(file, configText(port, [a.address, b.address]));
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    // Generation 2's lc sees a's three: both new requests go to b (1 < 3 too).
    send("/new/0");
    send("/new/1");
    await waitFor("five requests held", () => a.held + b.held === 5, 5000);
    assert.deepEqual([a.held, b.held], [3, 2], "held on a and b after two picks in generation 2");
    // The old requests end: their count leaves generation 2's a, so the next pick is a (0 < 2).
    for (let i = 0; i < 3; i++) a.finish();
    for (const r of await Promise.all(replies.slice(0, 3))) assert.equal(r.status, 200);
    send("/new/2");
    await waitFor("three requests held", () => a.held + b.held === 3, 5000);
    assert.deepEqual([a.held, b.held], [1, 2], "the pick after the old requests ended");
    a.finish(); b.finish(); b.finish();
    for (const r of await Promise.all(replies)) assert.equal(r.status, 200);
  } finally {
    for (const x of [a, b]) while (x.held > 0) x.finish();
    await Promise.allSettled(replies);
    assert.equal(await f.stop(), 0);
  }
});

/** A keep-alive connection read by hand: the next response (head and Content-Length body), or
 * how the connection ended before one came. */
function keepAlive(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  let buf = "", ended: string | null = null, wake = () => {};
  socket.on("data", (d: Uint8Array) => { buf += new TextDecoder().decode(d); wake(); });
  socket.on("error", (e: Error & { code?: string }) => { ended = e.code ?? e.message; wake(); });
  socket.on("close", () => { ended ??= "closed"; wake(); });
  const opened = new Promise<void>((resolve, reject) => { socket.once("connect", () => resolve()); socket.once("error", reject); });
  return {
    opened,
    send: (path: string) => socket.write(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`),
    /** Resolves with the status line and head of the next response, or "ended: ..." (bounded). */
    async response(): Promise<string> {
      const until = Date.now() + 10_000;
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end >= 0) {
          const head = buf.slice(0, end);
          const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length >= end + 4 + length) { buf = buf.slice(end + 4 + length); return head; }
        }
        if (ended !== null) return `ended: ${ended}`;
        if (Date.now() > until) return "ended: timed out";
        await new Promise<void>((r) => { wake = r; setTimeout(r, 100); });
      }
    },
    close: () => socket.destroy(),
  };
}

const signal = (pid: number, name: string) => runtime.spawn(["kill", `-${name}`, String(pid)]).exited;

test("reload: a request sent on an idle keep-alive connection while the process was held up past the retire idle time is answered, not dropped", async () => {
  const echo = await startBackend("idle-race");
  backends.push(echo);
  const port = await freePort();
  const text = (seed: number) => `listeners: [{ bind: "127.0.0.1:${port}" }]\nhash_seed: ${seed}\npools:\n  web: { servers: [${echo.address}] }\n`;
  const file = await writeTemp(text(1));
  const f = await startCli(["run", "--config", file], 1);
  const conns = Array.from({ length: 4 }, () => keepAlive(port));
  try {
    for (const c of conns) { await c.opened; c.send("/first"); assert.match(await c.response(), /^HTTP\/1\.1 200/); }
    // Held up as a slow reload or a starved process is: the next requests and the SIGHUP wait in
    // the kernel for longer than a retired connection may sit idle (1 s), then all arrive at once.
    await signal(f.child.pid, "STOP");
    try {
      await runtime.writeTextFile(file, text(2));
      await signal(f.child.pid, "HUP");
      for (const c of conns) c.send("/second");
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await signal(f.child.pid, "CONT");
    }
    const answers = await Promise.all(conns.map((c) => c.response()));
    for (const a of answers) assert.match(a, /^HTTP\/1\.1 200/, `every request sent before the reload is answered: ${answers.join(" | ")}`);
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
  } finally {
    for (const c of conns) c.close();
    assert.equal(await f.stop(), 0);
  }
});
