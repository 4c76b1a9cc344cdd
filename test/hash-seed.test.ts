// hash_seed: the keyed hash is fixed by the seed, so two processes with the same seed place every
// key alike (as nodes of a cluster must); without it each process draws its own hash key.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, type Echo, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";

let servers: Backend[] = [];
const fulcrums: Running[] = [];

async function start(seed: number | null): Promise<Running> {
  const port = await freePort();
  return startFulcrum(`
${seed === null ? "" : `hash_seed: ${seed}`}
listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  web:
    scheduler: ketama
    hash_key: "header:X-User"
    servers: [${servers.map((s) => s.address).join(", ")}]
`);
}

before(async () => {
  servers = await Promise.all(["k1", "k2", "k3"].map((n) => startBackend(n)));
});

after(async () => {
  for (const f of fulcrums) await f.stop().catch(() => {}); // most were stopped by their test
  await Promise.all(servers.map((s) => s.stop()));
});

const KEYS = Array.from({ length: 60 }, (_, i) => `user-${i}`);

/** The server each key went to, through one process. */
async function placement(f: Running): Promise<string[]> {
  const out: string[] = [];
  for (const k of KEYS) {
    const r = await request(`${f.url}/`, { headers: { "x-user": k } });
    assert.equal(r.status, 200, r.body);
    out.push((JSON.parse(r.body) as Echo).backend);
  }
  return out;
}

test("hash_seed: two processes with the same seed place 60 keys identically, over every server", async () => {
  const [a, b] = await Promise.all([start(4242), start(4242)]);
  fulcrums.push(a, b);
  const pa = await placement(a), pb = await placement(b);
  assert.deepEqual(pb, pa);
  assert.equal(new Set(pa).size, 3, "the keys spread, so agreeing is not trivial");
  await Promise.all([a.stop(), b.stop()]);
});

test("hash_seed: without it two processes place keys differently (each draws its own hash key)", async () => {
  const [a, b] = await Promise.all([start(null), start(null)]);
  fulcrums.push(a, b);
  const pa = await placement(a), pb = await placement(b);
  // Independent hash keys agree on a key with chance about 1/3 (three equal servers): about 40
  // of 60 keys differ, SD 3.7; at least 20 is over 5 SD below that.
  const differ = pa.filter((s, i) => s !== pb[i]).length;
  assert.ok(differ >= 20, `only ${differ} of 60 keys placed differently by two unseeded processes`);
  await Promise.all([a.stop(), b.stop()]);
});
