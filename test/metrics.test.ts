// /metrics end to end: a real `fulcrum run` with traffic through it, its output checked by
// promtool, and a real Prometheus that scrapes it and answers a query.
import { after, before, test } from "node:test";
import net from "node:net";
import assert from "node:assert/strict";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum, writeTemp } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { needs } from "./helpers/peers.ts";
import { runtime } from "../src/runtime/index.ts";
import { RawH2 } from "./helpers/h2-client.ts";
import { F_END_STREAM } from "../src/http2/frame.ts";

const REQUESTS = 7;
let a: Backend, b: Backend;
let fulcrum: Running;
let admin: string, adminPort: number, h2Port: number, tcpPort: number;

before(async () => {
  [a, b] = await Promise.all([startBackend("a"), startBackend("b")]);
  adminPort = await freePort();
  admin = `http://127.0.0.1:${adminPort}`;
  h2Port = await freePort();
  tcpPort = await freePort();
  fulcrum = await startFulcrum(`
admin: { bind: 127.0.0.1:${adminPort}, token_file: ${await writeTemp("metrics-token\n", "token")} }
listeners:
  - { name: main, bind: 127.0.0.1:${await freePort()} }
  - { name: h2c, bind: 127.0.0.1:${h2Port}, http2: true }
  - { name: tcp, bind: 127.0.0.1:${tcpPort}, protocol: tcp, pool: web }
routes:
  - { pool: web }
pools:
  web:
    scheduler: rr
    servers: [${a.address}, ${b.address}]
    health: { type: tcp, interval: 200ms }
`);
  for (let i = 0; i < REQUESTS; i++) assert.equal((await request(`${fulcrum.url}/m${i}`)).status, 200);
  const drain = await request(`${admin}/api/pools/web/servers/${b.address}/drain`, { method: "POST", headers: { authorization: "Bearer metrics-token" } });
  assert.equal(drain.status, 200);
  const refused = await request(`${admin}/api/pools/web/servers/${a.address}/drain`, { method: "POST" });
  assert.equal(refused.status, 401);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([a, b].map((x) => x?.stop()));
});

/** Samples of one family: labels text -> value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? "", Number(m[3]));
  }
  return out;
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<string> {
  let s = "";
  const d = new TextDecoder();
  for await (const c of stream) s += d.decode(c, { stream: true });
  return s;
}

test("metrics: /metrics counts the traffic sent through and the drain, in Prometheus text format", async () => {
  const res = await request(`${admin}/metrics`);
  assert.equal(res.status, 200);
  assert.match(String(res.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  assert.equal(samples(text, "fulcrum_listener_requests_total").get('listener="main"'), REQUESTS);
  const responses = samples(text, "fulcrum_server_responses_total");
  const ok = responses.get(`pool="web",server="${a.address}",code="2xx"`)! + responses.get(`pool="web",server="${b.address}",code="2xx"`)!;
  assert.equal(ok, REQUESTS, "every response counted once, by the server that gave it");
  assert.equal(samples(text, "fulcrum_listener_responses_total").get('listener="main",code="2xx"'), REQUESTS);
  assert.equal(samples(text, "fulcrum_route_requests_total").get('route="route0",pool="web"'), REQUESTS);
  assert.equal(samples(text, "fulcrum_route_responses_total").get('route="route0",pool="web",code="2xx"'), REQUESTS);
  assert.equal(samples(text, "fulcrum_pool_response_duration_seconds_count").get('pool="web"'), REQUESTS);
  const buckets = samples(text, "fulcrum_pool_response_duration_seconds_bucket");
  assert.equal(buckets.get('pool="web",le="+Inf"'), REQUESTS, "+Inf bucket holds every observation");
  assert.ok(samples(text, "fulcrum_pool_connect_duration_seconds_count").get('pool="web"')! >= 1, "at least one new connection timed");
  assert.ok(samples(text, "fulcrum_listener_sent_bytes_total").get('listener="main"')! > 0);
  assert.equal(samples(text, "fulcrum_server_admin_state").get(`pool="web",server="${b.address}",state="drain"`), 1);
  assert.equal(samples(text, "fulcrum_server_up").get(`pool="web",server="${b.address}"`), 0);
  assert.equal(samples(text, "fulcrum_health_check_up").get(`address="${a.address}",check="tcp"`), 1);
  assert.equal(samples(text, "fulcrum_config_generation").get(""), 1);
  const admin_ = samples(text, "fulcrum_admin_requests_total");
  assert.equal(admin_.get('code="401"'), 1, "the refused write is counted");
  assert.equal(admin_.get('code="200"'), 1, "the drain (this scrape is counted after it answers)");
  assert.ok(samples(text, "process_resident_memory_bytes").get("")! > 0);
});

test("metrics: HTTP/2 requests count on their listener, route and server as HTTP/1.1 ones do", async () => {
  const before = (await request(`${admin}/metrics`)).body;
  const c = await RawH2.connect(h2Port);
  const N = 3;
  for (let i = 0; i < N; i++) {
    const id = 1 + 2 * i;
    c.send(c.request(id, `/h2/${i}`));
    assert.ok(await c.waitFor((f) => f.stream === id && (f.flags & F_END_STREAM) !== 0), `stream ${id} answered`);
  }
  c.close();
  const text = (await request(`${admin}/metrics`)).body;
  const delta = (name: string, labels: string) => (samples(text, name).get(labels) ?? 0) - (samples(before, name).get(labels) ?? 0);
  assert.equal(delta("fulcrum_listener_requests_total", 'listener="h2c"'), N);
  assert.equal(delta("fulcrum_listener_responses_total", 'listener="h2c",code="2xx"'), N);
  assert.equal(delta("fulcrum_route_requests_total", 'route="route0",pool="web"'), N);
  assert.equal(delta("fulcrum_route_responses_total", 'route="route0",pool="web",code="2xx"'), N);
  assert.equal(delta("fulcrum_server_responses_total", `pool="web",server="${a.address}",code="2xx"`), N, "b is drained: all on a");
});

test("metrics: an L4 connection counts as a session of the L4 proxy, and the open one on its listener", async () => {
  const before = (await request(`${admin}/metrics`)).body;
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const c = net.connect({ host: "127.0.0.1", port: tcpPort }, () => resolve(c));
    c.once("error", reject);
  });
  const answered = new Promise<string>((resolve) => {
    let got = "";
    sock.on("data", (d: Uint8Array) => { got += new TextDecoder().decode(d); if (got.includes("\r\n\r\n")) resolve(got); });
  });
  sock.write("GET /l4 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.match(await answered, /^HTTP\/1\.1 200/);
  const open = (await request(`${admin}/metrics`)).body;
  assert.equal(samples(open, "fulcrum_l4_listener_connections").get('listener="tcp",protocol="tcp"'), 1);
  sock.destroy();
  const delta = (name: string, l: string) => (samples(open, name).get(l) ?? 0) - (samples(before, name).get(l) ?? 0);
  assert.equal(delta("fulcrum_l4_sessions_total", ""), 1);
  assert.equal(delta("fulcrum_l4_errors_total", 'kind="no_server"'), 0);
});

const promtool = needs("promtool");
test("metrics: promtool check metrics accepts the output", { skip: promtool }, async () => {
  const file = await writeTemp((await request(`${admin}/metrics`)).body, "prom");
  const child = runtime.spawn(["sh", "-c", `promtool check metrics < ${file}`]);
  const [out, err, code] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  assert.equal(code, 0, `promtool: ${out}${err}`);
  assert.equal((out + err).trim(), "", "no lint warnings either");
});

const prometheus = needs("prometheus");
test("metrics: a real Prometheus scrapes Fulcrum and answers a query with the request count", { skip: prometheus }, async () => {
  const port = await freePort();
  const dir = `/tmp/fulcrum-prometheus-${runtime.name}-${Date.now()}`;
  const config = await writeTemp(`
global: { scrape_interval: 1s, scrape_timeout: 900ms }
scrape_configs:
  - job_name: fulcrum
    static_configs: [{ targets: ["127.0.0.1:${adminPort}"] }]
`);
  const child = runtime.spawn(["prometheus", `--config.file=${config}`, `--storage.tsdb.path=${dir}`,
    `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"]);
  const log = collect(child.stderr);
  void collect(child.stdout);
  try {
    const query = encodeURIComponent('fulcrum_listener_requests_total{job="fulcrum",listener="main"}');
    let result: { metric: Record<string, string>; value: [number, string] }[] = [];
    // Bounded: Prometheus starts, then scrapes every second; 60 tries of 500 ms.
    for (let i = 0; i < 60 && result.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const r = await request(`http://127.0.0.1:${port}/api/v1/query?query=${query}`).catch(() => null);
      if (r?.status === 200) result = JSON.parse(r.body).data.result;
    }
    assert.equal(result.length, 1, "Prometheus has the series");
    assert.equal(result[0].metric.instance, `127.0.0.1:${adminPort}`);
    assert.equal(Number(result[0].value[1]), REQUESTS);
    const up = JSON.parse((await request(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('up{job="fulcrum"}')}`)).body);
    assert.equal(up.data.result[0].value[1], "1", "the scrape succeeded");
  } finally {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await child.exited;
    clearTimeout(timer);
    await log;
    await runtime.spawn(["rm", "-rf", dir]).exited;
  }
});
