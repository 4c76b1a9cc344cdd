// Across a reload, sessions still in flight on the old generation count toward the same (pool,
// server address) in the new one, so least-connection picks and max_conns right after a reload
// see them, until they end.
import { after, test } from "node:test";
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
