// Every scheduler family through the real proxy (socket engine): requests held open on real
// backends, so the active counts at each pick are known and the expected server follows from the
// algorithm's formula; distinct keys from distinct URIs, source addresses (any 127.0.0.0/8
// address works on loopback), headers, cookies, query arguments and hosts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, type Echo, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { type Reply, request, type RequestOptions } from "./helpers/http.ts";
import { waitFor } from "./helpers/health-servers.ts";

let h1: Backend, h2: Backend, h3: Backend, k1: Backend, k2: Backend, k3: Backend;
let d1: Backend, d2: Backend, d3: Backend;
let fulcrum: Running;

before(async () => {
  [h1, h2, h3] = await Promise.all(["h1", "h2", "h3"].map((n) => startBackend(n, "hold")));
  [k1, k2, k3, d1, d2, d3] = await Promise.all(["k1", "k2", "k3", "d1", "d2", "d3"].map((n) => startBackend(n)));
  const port = await freePort();
  const held = (w: [number, number, number], extra = ["", "", ""]) =>
    `[{ address: ${h1.address}, weight: ${w[0]}${extra[0]} }, { address: ${h2.address}, weight: ${w[1]}${extra[1]} }, { address: ${h3.address}, weight: ${w[2]}${extra[2]} }]`;
  const keyed = (w = [1, 1, 1]) =>
    `[{ address: ${k1.address}, weight: ${w[0]} }, { address: ${k2.address}, weight: ${w[1]} }, { address: ${k3.address}, weight: ${w[2]} }]`;
  // The servers that go down in the last test: a long fail_timeout keeps d2 out until the end.
  const dying = `[{ address: ${d1.address}, fail_timeout: 60s }, { address: ${d2.address}, fail_timeout: 60s }, { address: ${d3.address}, fail_timeout: 60s }]`;
  const pools: Record<string, string> = {
    lc: `{ scheduler: lc, servers: ${held([3, 1, 1])} }`,
    wlc: `{ scheduler: wlc, servers: ${held([3, 1, 1])} }`,
    sed: `{ scheduler: sed, servers: ${held([3, 1, 1])} }`,
    nq: `{ scheduler: nq, servers: ${held([3, 1, 1])} }`,
    first: `{ scheduler: first, servers: ${held([1, 1, 1], [", max_conns: 2", ", max_conns: 2", ""])} }`,
    lblc: `{ scheduler: lblc, servers: ${held([1, 1, 1])} }`,
    lblcr: `{ scheduler: lblcr, servers: ${held([1, 1, 1])} }`,
    rr: `{ scheduler: rr, servers: ${keyed([3, 1, 1])} }`,
    wrr: `{ scheduler: wrr, servers: ${keyed([5, 1, 1])} }`,
    random: `{ scheduler: random, servers: ${keyed([3, 1, 1])} }`,
    two: `{ scheduler: two, servers: ${keyed([3, 1, 1])} }`,
    "two-skew": `{ scheduler: two, servers: [${h1.address}, ${k1.address}] }`,
    "random-skew": `{ scheduler: random, servers: [${h1.address}, ${k1.address}] }`,
    dh: `{ scheduler: dh, servers: ${keyed()} }`,
    sh: `{ scheduler: sh, servers: ${keyed()} }`,
    mh: `{ scheduler: mh, servers: ${keyed()} }`,
    ketama: `{ scheduler: ketama, servers: ${keyed()} }`,
    "by-header": `{ scheduler: ketama, hash_key: "header:X-User", servers: ${keyed()} }`,
    "by-cookie": `{ scheduler: ketama, hash_key: "cookie:uid", servers: ${keyed()} }`,
    "by-arg": `{ scheduler: ketama, hash_key: "arg:uid", servers: ${keyed()} }`,
    "by-host": `{ scheduler: ketama, hash_key: host, servers: ${keyed()} }`,
    "sh-down": `{ scheduler: sh, servers: ${dying} }`,
    "ketama-down": `{ scheduler: ketama, servers: ${dying} }`,
  };
  fulcrum = await startFulcrum(`
# hash_seed also seeds the pools' PRNGs: random and two draw the same sequence every run.
hash_seed: 11
listeners: [{ bind: 127.0.0.1:${port} }]
routes:
${Object.keys(pools).map((p) => `  - { path_prefix: /${p}/, pool: ${p} }`).join("\n")}
pools:
${Object.entries(pools).map(([name, spec]) => `  ${name}: ${spec}`).join("\n")}
`);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([h1, h2, h3, k1, k2, k3, d1, d2, d3].map((b) => b?.stop()));
});

const HELD = () => [h1, h2, h3];

/** Drives requests against "hold" backends: each send waits until the request reaches a server
 * (so the next pick sees it active) and returns that server's name. */
class Holder {
  private readonly replies = new Map<string, Promise<Reply>[]>();

  async send(path: string): Promise<string> {
    const servers = HELD(), before = servers.map((b) => b.hits);
    const reply = request(`${fulcrum.url}${path}`);
    await waitFor(`${path} to reach a server`, () => servers.some((b, i) => b.hits > before[i]), 5000, 2);
    const got = servers.filter((b, i) => b.hits > before[i]);
    assert.equal(got.length, 1, "one request, one arrival");
    const queue = this.replies.get(got[0].name) ?? [];
    queue.push(reply);
    this.replies.set(got[0].name, queue);
    return got[0].name;
  }

  async sendAll(path: string, n: number): Promise<string[]> {
    const names: string[] = [];
    for (let i = 0; i < n; i++) names.push(await this.send(path));
    return names;
  }

  /** Ends the oldest request held on `server` and waits for the client to get its answer (the
   * proxy counts a request active until it has passed on the whole response). */
  async finish(server: Backend): Promise<void> {
    const reply = this.replies.get(server.name)?.shift();
    assert.ok(reply, `nothing held on ${server.name}`);
    server.finish();
    assert.equal((await reply).status, 200);
  }

  async finishAll(): Promise<void> {
    for (const b of HELD()) while (b.held > 0) await this.finish(b);
  }
}

async function held(run: (h: Holder) => Promise<void>): Promise<void> {
  const h = new Holder();
  try {
    await run(h);
  } finally {
    await h.finishAll();
  }
}

const backendOf = async (path: string, options: RequestOptions = {}): Promise<string> => {
  const r = await request(`${fulcrum.url}${path}`, options);
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as Echo).backend;
};

// Sequences below: weights 3, 1, 1 on h1, h2, h3; each send holds its request open.
test("proxy lc: fewest active requests, weight aside: a server that finishes takes the next", () =>
  held(async (h) => {
    const start = await h.sendAll("/lc/x", 3); // active 0,0,0 -> h1; 1,0,0 -> h2; 1,1,0 -> h3
    await h.finish(h2); // 1,0,1
    const next = await h.sendAll("/lc/x", 3); // -> h2 (rr: h1); 1,1,1 -> h1; 2,1,1 -> h2 (wlc: h1)
    assert.deepEqual([...start, ...next], ["h1", "h2", "h3", "h2", "h1", "h2"]);
  }));

test("proxy wlc: fewest active per weight (ties to the first)", () =>
  held(async (h) => {
    // active/weight: 0,0,0 -> h1; 1/3,0,0 -> h2; 1/3,1,0 -> h3; 1/3,1,1 -> h1; 2/3 -> h1;
    // 1,1,1 -> h1; 4/3,1,1 -> h2; 4/3,2,1 -> h3
    assert.deepEqual(await h.sendAll("/wlc/x", 8), ["h1", "h2", "h3", "h1", "h1", "h1", "h2", "h3"]);
  }));

test("proxy sed: least (active + 1) / weight", () =>
  held(async (h) => {
    // 1/3,1,1 -> h1; 2/3 -> h1; 1,1,1 -> h1; 4/3,1,1 -> h2; 4/3,2,1 -> h3; 4/3,2,2 -> h1;
    // 5/3,2,2 -> h1; 2,2,2 -> h1
    assert.deepEqual(await h.sendAll("/sed/x", 8), ["h1", "h1", "h1", "h2", "h3", "h1", "h1", "h1"]);
  }));

test("proxy nq: an idle server first, then sed", () =>
  held(async (h) => {
    // idle h1, h2, h3 in turn; then sed: (1+1)/3 -> h1, 1 -> h1, 4/3 -> h1, 5/3 -> h1, 2,2,2 -> h1
    assert.deepEqual(await h.sendAll("/nq/x", 8), ["h1", "h2", "h3", "h1", "h1", "h1", "h1", "h1"]);
  }));

test("proxy first: fills the first server to max_conns, then the next; a freed slot goes back to the first", () =>
  held(async (h) => {
    assert.deepEqual(await h.sendAll("/first/x", 5), ["h1", "h1", "h2", "h2", "h3"]);
    await h.finish(h1);
    assert.equal(await h.send("/first/x"), "h1");
  }));

// lblc and lblcr, weights 1, 1, 1, one URI (their default key): a server is overloaded when its
// active count is above its weight while another server is under half of its own.
test("proxy lblc: a URI stays on its server until it is overloaded, then moves to the wlc choice and stays", () =>
  held(async (h) => {
    // h1, h1 (1 <= 1), overloaded -> h2, h2, overloaded -> h3
    assert.deepEqual(await h.sendAll("/lblc/video", 5), ["h1", "h1", "h2", "h2", "h3"]);
    await h.finish(h1);
    await h.finish(h1);
    assert.equal(await h.send("/lblc/video"), "h3", "lblc remembers only the last server");
    assert.equal(await h.send("/lblc/other"), "h1", "a new URI goes to the wlc choice");
  }));

test("proxy lblcr: a URI keeps a set of servers and the least loaded of the set serves", () =>
  held(async (h) => {
    assert.deepEqual(await h.sendAll("/lblcr/video", 5), ["h1", "h1", "h2", "h2", "h3"]);
    await h.finish(h1);
    await h.finish(h1);
    assert.equal(await h.send("/lblcr/video"), "h1", "h1 is in the set and now the least loaded");
  }));

test("proxy rr and wrr: rr turns whatever the weight; wrr is the smooth sequence a a b a c a a", async () => {
  const rr = [];
  for (let i = 0; i < 6; i++) rr.push(await backendOf(`/rr/${i}`));
  assert.deepEqual(rr, ["k1", "k2", "k3", "k1", "k2", "k3"]);
  const wrr = [];
  for (let i = 0; i < 14; i++) wrr.push(await backendOf(`/wrr/${i}`));
  assert.equal(wrr.map((b) => ({ k1: "a", k2: "b", k3: "c" })[b]).join(""), "aabacaa".repeat(2));
});

for (const s of ["random", "two"]) {
  test(`proxy ${s}: weighted draws: over 90 requests every server serves, the weight-3 one about 3/5`, async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 90; i++) {
      const b = await backendOf(`/${s}/${i}`);
      counts.set(b, (counts.get(b) ?? 0) + 1);
    }
    // Binomial(90, .6) for k1: mean 54, SD 4.6; [36, 72] is about 4 SD either side. Each
    // weight-1 server: mean 18, SD 3.8, so at least 5. (With hash_seed the draws repeat.)
    const c = (b: string) => counts.get(b) ?? 0;
    assert.ok(c("k1") >= 36 && c("k1") <= 72, `k1 served ${c("k1")} of 90`);
    assert.ok(c("k2") >= 5 && c("k3") >= 5, `k2 ${c("k2")}, k3 ${c("k3")}`);
  });
}

// h1 holds every request it gets, k1 answers at once: h1's load grows with each request it takes
// and k1's stays 0. two draws twice and takes the less loaded, so once h1 is busy it wins only
// when drawn twice (1/4); random takes it half the time, whatever its load.
async function heldOnH1(pool: string, n: number): Promise<number> {
  const replies: Promise<Reply>[] = [];
  let onH1 = 0;
  try {
    for (let i = 0; i < n; i++) {
      const before = h1.hits;
      let answered = false;
      const reply = request(`${fulcrum.url}/${pool}/${i}`);
      reply.then(() => { answered = true; }, () => { answered = true; });
      await waitFor(`request ${i} held on h1 or answered by k1`, () => h1.hits > before || answered, 5000, 2);
      if (h1.hits > before) { onH1++; replies.push(reply); continue; }
      assert.equal((JSON.parse((await reply).body) as Echo).backend, "k1");
    }
  } finally {
    while (h1.held > 0) h1.finish();
    await Promise.all(replies);
  }
  return onH1;
}

test("proxy two: the less loaded of two draws wins: a server holding its requests gets far fewer than random gives it", async () => {
  // Of 80: two gives h1 about 1 + 79/4 = 21 (SD 3.9), random about 40 (SD 4.5), lc 1.
  const two = await heldOnH1("two-skew", 80), random = await heldOnH1("random-skew", 80);
  assert.ok(two >= 8 && two <= 32, `two put ${two} of 80 on the busy server`);
  assert.ok(random >= 28 && random <= 52, `random put ${random} of 80 on the busy server`);
});

/** Source addresses for distinct clients: 127.0.0.<from>..<from+n-1>. */
const sources = (n: number, from = 10) => Array.from({ length: n }, (_, i) => `127.0.0.${from + i}`);

/** Which server each key's request went to; keys in the given order. */
async function placement(keys: string[], send: (key: string, i: number) => Promise<string>): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const [i, k] of keys.entries()) m.set(k, await send(k, i));
  return m;
}

const spread = (m: Map<string, string>) => new Set(m.values()).size;

test("proxy dh: the URI is the key: the same URI goes to the same server from any client, URIs spread over all servers", async () => {
  const uris = Array.from({ length: 40 }, (_, i) => `/dh/item-${i}`);
  const fromA = await placement(uris, (u) => backendOf(u, { localAddress: "127.0.0.2" }));
  const fromB = await placement([...uris].reverse(), (u) => backendOf(u, { localAddress: "127.0.0.3" }));
  assert.deepEqual(new Map([...fromB].reverse()), fromA);
  assert.equal(spread(fromA), 3, `40 URIs on ${[...new Set(fromA.values())]}`);
});

for (const s of ["sh", "mh", "ketama"]) {
  test(`proxy ${s}: the source address is the key: a client stays on its server whatever the URI, clients spread over all servers`, async () => {
    const clients = sources(30);
    const first = await placement(clients, (c, i) => backendOf(`/${s}/a-${i}`, { localAddress: c }));
    const again = await placement([...clients].reverse(), (c, i) => backendOf(`/${s}/b-${i}`, { localAddress: c }));
    assert.deepEqual(new Map([...again].reverse()), first);
    assert.equal(spread(first), 3, `30 clients on ${[...new Set(first.values())]}`);
  });
}

// hash_key kinds: a request carries the key as KEY; without it, the client address is the key,
// so it lands where a request whose KEY is that address's text lands.
const HASH_KEYS: Record<string, { path: string; with: (key: string) => RequestOptions & { query?: string } }> = {
  "header:X-User": { path: "/by-header/", with: (k) => ({ headers: { "x-user": k } }) },
  "cookie:uid": { path: "/by-cookie/", with: (k) => ({ headers: { cookie: `theme=dark; uid=${k}; lang=en` } }) },
  "arg:uid": { path: "/by-arg/", with: (k) => ({ query: `?page=2&uid=${encodeURIComponent(k)}` }) },
  host: { path: "/by-host/", with: (k) => ({ headers: { host: k } }) },
};

for (const [kind, { path, with: carrying }] of Object.entries(HASH_KEYS)) {
  test(`proxy hash_key ${kind}: the same key from any client goes to one server, keys spread over all servers`, async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `user-${i}.test`);
    const send = (from: string[]) => (key: string, i: number) => {
      const { query = "", ...options } = carrying(key);
      return backendOf(`${path}x${query}`, { ...options, localAddress: from[i] });
    };
    const first = await placement(keys, send(sources(30, 10)));
    const again = await placement(keys, send(sources(30, 40)));
    assert.deepEqual(again, first, "a different client with the same key lands on the same server");
    assert.equal(spread(first), 3, `30 keys on ${[...new Set(first.values())]}`);
  });

  if (kind === "host") continue; // HTTP/1.1 requires a Host: it cannot be missing
  test(`proxy hash_key ${kind}: a request without the key falls back to the client address`, async () => {
    const clients = sources(20, 80);
    const without = await placement(clients, (c) => backendOf(`${path}x?page=2`, { localAddress: c, headers: { cookie: "theme=dark" } }));
    const named = await placement(clients, (c) => {
      const { query = "", ...options } = carrying(c);
      return backendOf(`${path}x${query}`, { ...options, localAddress: "127.0.0.2" });
    });
    assert.deepEqual(without, named);
    assert.ok(spread(without) > 1, "the fall-back key varies with the client");
  });
}

test("proxy sh and ketama: a server that goes down moves exactly its clients; the others stay put", async () => {
  const clients = sources(36, 120);
  const place = (pool: string) => placement(clients, (c, i) => backendOf(`/${pool}/${i}`, { localAddress: c }));
  const before = { sh: await place("sh-down"), ketama: await place("ketama-down") };
  for (const m of Object.values(before)) assert.ok([...m.values()].includes("d2"), "d2 has clients to lose");
  await d2.stop(); // refused from now on: the first failure takes d2 out (max_fails 1)
  const after = { sh: await place("sh-down"), ketama: await place("ketama-down") };
  for (const pool of ["sh", "ketama"] as const) {
    for (const c of clients) {
      const was = before[pool].get(c)!, now = after[pool].get(c)!;
      if (was === "d2") assert.notEqual(now, "d2", `${pool}: ${c} still on d2`);
      else assert.equal(now, was, `${pool}: ${c} moved from ${was} to ${now}`);
    }
  }
});
