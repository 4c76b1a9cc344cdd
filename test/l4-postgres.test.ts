// PostgreSQL behind the L4 TCP proxy: two real PostgreSQL servers (initdb and postgres in a temp
// directory, on loopback ports), a `fulcrum run` tcp listener with `scheduler: lc` in front of
// them, and psql and pgbench as the clients.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { runtime, type Child } from "../src/runtime/index.ts";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { freePort, type Peer } from "./helpers/l4.ts";
import { waitFor } from "./helpers/netns.ts";
import { needs } from "./helpers/peers.ts";
import { initdb, pgbench, postgresDir, psql, psqlCommand, startPostgres } from "./helpers/postgres.ts";

const skip = needs("initdb", "postgres", "pgbench", "psql");
const servers: Peer[] = [];
let fulcrum: Running;
let proxyPort = 0;
let dir = "";

before(async () => {
  if (skip) return;
  dir = postgresDir();
  const template = await initdb(dir);
  for (const name of ["pg1", "pg2"]) servers.push(await startPostgres(dir, template, await freePort(), name));
  proxyPort = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - { name: pg, bind: 127.0.0.1:${proxyPort}, protocol: tcp, pool: pg }
pools:
  pg: { scheduler: lc, servers: [127.0.0.1:${servers[0].port}, 127.0.0.1:${servers[1].port}] }
`);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all(servers.map((s) => s.stop()));
  if (dir) await runtime.spawn(["rm", "-rf", dir]).exited;
});

test("tcp: psql through the proxy: a table written and read back in one session, on one of the two PostgreSQL servers", { skip }, async () => {
  const out = await psql(proxyPort, `create temporary table t (n int, s text);
    insert into t select g, md5(g::text) from generate_series(1, 1000) g;
    select count(*), sum(n), max(length(s)), inet_server_port() from t`);
  const [count, sum, width, port] = out.split("\n").at(-1)!.split("|").map(Number); // after the command tags
  assert.deepEqual([count, sum, width], [1000, 500500, 32]);
  assert.ok(servers.some((s) => s.port === port), `served by port ${port}, not one of the pool's servers`);
});

test("tcp lc: while a psql session is held on one PostgreSQL server, new sessions all go to the other", { skip }, async () => {
  // The held session sleeps on the server it reached; which one that is, each server says itself.
  const holder: Child = runtime.spawn(psqlCommand(proxyPort, "select pg_sleep(20)", "application_name=fulcrum-holder"));
  try {
    const held = await waitFor<Peer | undefined>("the held session on a server", async () => {
      for (const s of servers) {
        if (await psql(s.port, "select count(*) from pg_stat_activity where application_name = 'fulcrum-holder'") === "1") return s;
      }
      return undefined;
    }, 10_000, 100) as Peer; // waitFor throws rather than return nothing
    const other = servers.find((s) => s !== held)!;
    const ports: number[] = [];
    for (let i = 0; i < 4; i++) ports.push(Number(await psql(proxyPort, "select inet_server_port()")));
    assert.deepEqual(ports, [other.port, other.port, other.port, other.port]);
    await psql(held.port, "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'fulcrum-holder'");
  } finally {
    holder.kill("SIGKILL");
    await holder.exited;
  }
});

test("tcp lc: a bounded pgbench run (4 clients x 50 TPC-B transactions) through the proxy completes, every transaction on one of the two servers, both used", { skip }, async () => {
  // Each server gets the pgbench tables directly; each TPC-B transaction adds one history row.
  for (const s of servers) {
    const init = await pgbench(s.port, ["-i", "-s", "1", "-q"]);
    assert.equal(init.code, 0, init.output);
  }
  const run = await pgbench(proxyPort, ["-n", "-c", "4", "-j", "1", "-t", "50"]);
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, /number of transactions actually processed: 200\/200/);
  const rows = await Promise.all(servers.map(async (s) => Number(await psql(s.port, "select count(*) from pgbench_history"))));
  assert.equal(rows[0] + rows[1], 200, `history rows per server: ${rows}`);
  assert.ok(rows[0] > 0 && rows[1] > 0, `lc left a server without clients: history rows ${rows}`);
});
