/// <reference lib="dom" />
// The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against a real
// `fulcrum run` (on the runtime under test) in front of real nginx upstreams: the page loads
// without console errors, a server stopped by PID shows DOWN within a second of its health
// transition (both times on this host's clock: the transition as Fulcrum recorded it, the DOM
// change as the page saw it), and a click on drain, after the token, drains it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { freePort, type Peer, startNginx, TcpClient } from "./helpers/l4.ts";
import { type Running, startFulcrum, writeTemp } from "./helpers/fulcrum.ts";
import { getJson, request } from "./helpers/http.ts";
import { needs } from "./helpers/peers.ts";
import { type Browser, launchChromium } from "./helpers/browser.ts";

const skip = needs("chromium", "nginx");
const TOKEN = "dashboard-token-5f2c9a";
let a: Peer, bc: Peer;
let fulcrum: Running;
let browser: Browser;
let admin: string;
const port: Record<string, number> = {};
const problems: string[] = [];

interface ServerView { address: string; admin: string; state: string; down_reasons: string[]; last_change: string }
const server = async (address: string) =>
  (await getJson<{ pools: { name: string; servers: ServerView[] }[] }>(`${admin}/api/pools`)).pools
    .find((p) => p.name === "web")!.servers.find((s) => s.address === address)!;
const addr = (name: string) => `127.0.0.1:${port[name]}`;
const row = (name: string) => `section[data-pool="web"] tr[data-server="${addr(name)}"]`;
const nginxServer = (name: string) => `server { listen ${addr(name)}; access_log off; location / { add_header x-backend ${name}; return 200 "${name}\\n"; } }`;

before(async () => {
  if (skip) return;
  for (const name of ["a", "b", "c", "edge", "admin", "tcp"]) port[name] = await freePort();
  // a alone in its nginx, so stopping that process takes only a down.
  a = await startNginx(`http { ${nginxServer("a")} }`, port.a);
  bc = await startNginx(`http { ${nginxServer("b")} ${nginxServer("c")} }`, port.b);
  const tokenFile = await writeTemp(`${TOKEN}\n`, "token");
  admin = `http://${addr("admin")}`;
  fulcrum = await startFulcrum(`
admin: { bind: ${addr("admin")}, token_file: ${tokenFile} }
listeners:
  - { name: main, bind: ${addr("edge")} }
  - { name: raw, bind: ${addr("tcp")}, protocol: tcp, pool: web }
routes:
  - { pool: web }
pools:
  web:
    scheduler: rr
    servers: [${addr("a")}, ${addr("b")}, ${addr("c")}]
    health: { type: tcp, interval: 100ms, fall: 2, rise: 1 }
`, 2);
  browser = await launchChromium();
  browser.page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`); });
  browser.page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  browser.page.on("requestfailed", (r) => { if (!r.url().endsWith("/api/events")) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`); });
});

after(async () => {
  await browser?.close();
  await fulcrum?.stop();
  await Promise.all([a?.stop(), bc?.stop()]);
});

test("dashboard: the page loads from the admin listener and shows every server up from the live feed, without console errors", { skip }, async () => {
  const page = browser.page;
  const res = await page.goto(`${admin}/`);
  assert.equal(res?.status(), 200);
  assert.match(res!.headers()["content-security-policy"], /script-src 'self'/);
  for (const name of ["a", "b", "c"]) await page.waitForSelector(`${row(name)}[data-state="up"]`, { timeout: 10_000 });
  await page.waitForSelector('#live[data-live="live"]', { timeout: 5000 });
  // Checks ran and their results are on the page.
  await page.waitForFunction((sel) => /tcp up/.test(document.querySelector(sel)?.textContent ?? ""), row("a"), { timeout: 5000 });
  assert.equal(await page.locator('section[data-pool="web"] tbody tr').count(), 3);
  // The L4 listener (GET /api/l4's) is listed.
  await page.waitForSelector('#l4-listeners tr[data-key="raw"]', { timeout: 5000 });
  // A second of samples reached the charts: the pool's chart has a path.
  await page.waitForFunction(() => (document.querySelector('section[data-pool="web"] svg.spark path.line')?.getAttribute("d") ?? "") !== "", null, { timeout: 5000 });
  assert.deepEqual(problems, []);
});

test("dashboard: a server stopped by PID shows DOWN within a second of its health transition, in a snapshot the transition sent", { skip }, async () => {
  const page = browser.page;
  // The page records when the row turned down, by its own clock (Date.now(): this host's, as Fulcrum's).
  // Beside it, a second feed client notes the first snapshot that says DOWN and why it was sent.
  await page.evaluate(([sel, address]) => {
    const w = window as unknown as { downAt?: number; firstDown?: { cause: string; at: number } };
    const tr = document.querySelector(sel)!;
    new MutationObserver(() => { if (tr.getAttribute("data-state") === "down" && w.downAt === undefined) w.downAt = Date.now(); })
      .observe(tr, { attributes: true, attributeFilter: ["data-state"] });
    const feed = new EventSource("/api/events");
    feed.addEventListener("snapshot", (e) => {
      const m = JSON.parse((e as MessageEvent).data);
      const s = m.pools.find((p: { name: string }) => p.name === "web").servers.find((x: { address: string }) => x.address === address);
      if (s.state === "DOWN" && !w.firstDown) { w.firstDown = { cause: m.cause, at: m.at }; feed.close(); }
    });
  }, [row("a"), addr("a")]);
  assert.equal((await server(addr("a"))).state, "UP");
  await a.stop();
  const downAt = await (await page.waitForFunction(() => (window as unknown as { downAt?: number }).downAt, null, { timeout: 10_000 })).jsonValue() as number;
  const s = await server(addr("a"));
  assert.equal(s.state, "DOWN");
  assert.ok(s.down_reasons.includes("health"), JSON.stringify(s));
  const transitionAt = Date.parse(s.last_change);
  const lag = downAt - transitionAt;
  assert.ok(lag >= 0 && lag < 1000, `DOM changed ${lag} ms after the transition (${s.last_change})`);
  // Sent because of the transition, not found by the next second's snapshot.
  const firstDown = await (await page.waitForFunction(() => (window as unknown as { firstDown?: unknown }).firstDown, null, { timeout: 5000 })).jsonValue() as { cause: string; at: number };
  assert.equal(firstDown.cause, "change");
  assert.ok(firstDown.at >= transitionAt, JSON.stringify(firstDown));
  assert.match(await page.locator(row("a")).textContent() ?? "", /DOWN[\s\S]*tcp down/);
  assert.deepEqual(problems, []);
});

test("dashboard: drain asks for the token once; a wrong one is refused; with the right one the server drains and new requests avoid it", { skip }, async () => {
  const page = browser.page;
  const drain = page.locator(`${row("b")} button[data-action="drain"]`);
  // A wrong token: refused with the API's message, nothing changes, the token is forgotten.
  await drain.click();
  await page.waitForSelector("#token-dialog[open]", { timeout: 5000 });
  await page.fill("#token-input", "not-the-token");
  await page.click("#token-save");
  await page.waitForFunction(() => /wrong admin token/.test(document.querySelector("#toast")?.textContent ?? ""), null, { timeout: 5000 });
  assert.equal((await server(addr("b"))).admin, "ready");
  // Asked again, the right token: drained.
  await drain.click();
  await page.waitForSelector("#token-dialog[open]", { timeout: 5000 });
  await page.fill("#token-input", TOKEN);
  await page.click("#token-save");
  await page.waitForSelector(`${row("b")}[data-state="drain"]`, { timeout: 5000 });
  const s = await server(addr("b"));
  assert.deepEqual([s.admin, s.state], ["drain", "DRAIN"]);
  // a is down and b drained: every new request goes to c.
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) seen.add(String((await request(`http://${addr("edge")}/`)).headers["x-backend"]));
  assert.deepEqual([...seen], ["c"]);
  // The token is kept for the tab: ready needs no dialog, and b takes requests again.
  await page.click(`${row("b")} button[data-action="ready"]`);
  await page.waitForSelector(`${row("b")}[data-state="up"]`, { timeout: 5000 });
  assert.equal(await page.locator("#token-dialog[open]").count(), 0);
  seen.clear();
  for (let i = 0; i < 12; i++) seen.add(String((await request(`http://${addr("edge")}/`)).headers["x-backend"]));
  assert.deepEqual([...seen].sort(), ["b", "c"]);
  // The wrong-token answer is a failed fetch the page handled (403), not a script error.
  assert.deepEqual(problems.filter((p) => !/status of 403/.test(p)), []);
});

test("dashboard: after POST /api/reload the open page shows the new generation without reloading", { skip }, async () => {
  const page = browser.page;
  await page.evaluate(() => { (window as unknown as { sameDocument: boolean }).sameDocument = true; });
  const r = await request(`${admin}/api/reload`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).generation, 2);
  await page.waitForFunction(() => document.querySelector('#status [data-item="generation"] b')?.textContent === "2", null, { timeout: 5000 });
  assert.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true);
  // The new generation's servers are on the page (a still down: its verdict carried over).
  await page.waitForSelector(`${row("a")}[data-state="down"]`, { timeout: 5000 });
  await page.waitForSelector(`${row("c")}[data-state="up"]`, { timeout: 5000 });
  assert.deepEqual(problems.filter((p) => !/status of 403/.test(p)), []);
});

test("admin: GET /api/l4 lists the tcp listener with its address, pool, connections and the proxy's counters", { skip }, async () => {
  type L4 = { listeners: { name: string; protocol: string; address: string; pool: string; connections: number }[]; counters: { sessions: number }; virtual_servers: unknown[]; director: { running: boolean } };
  const before = await getJson<L4>(`${admin}/api/l4`);
  assert.deepEqual(before.listeners.map((l) => [l.name, l.protocol, l.address, l.pool]), [["raw", "tcp", addr("tcp"), "web"]]);
  const client = await TcpClient.connect(port.tcp);
  try {
    // HTTP/1.1: nginx keeps the connection open, so the session is still there when it is read.
    client.write("GET / HTTP/1.1\r\nHost: l4.test\r\n\r\n");
    await client.until(() => /\r\n\r\n/.test(client.text), 5000, "a response head through the tcp listener");
    const during = await getJson<L4>(`${admin}/api/l4`);
    assert.equal(during.listeners[0].connections, 1);
    assert.equal(during.counters.sessions, before.counters.sessions + 1);
  } finally {
    client.destroy();
  }
  assert.deepEqual(before.virtual_servers, []);
  assert.equal(before.director.running, false);
});
