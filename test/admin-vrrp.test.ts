// The admin API, metrics and dashboard of VRRP nodes: two real `fulcrum run`s in a lab of network
// namespaces elect a master; each one's /api/vrrp and /metrics (read with curl inside its
// namespace) say who is master and count the adverts and transitions, and its dashboard (headless
// Chromium inside the namespace) shows the state.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Lab, waitFor } from "./helpers/netns.ts";
import { fulcrumConfig, type Peer, startFulcrum, waitForAddress } from "./helpers/vrrp.ts";
import { needs } from "./helpers/peers.ts";
import { launchChromium } from "./helpers/browser.ts";

const noLab = needs("root", "ip", "curl");
const VIP = "10.200.11.100";
const ADMIN = "127.0.0.1:9901";
let lab: Lab;
const peers: Peer[] = [];

before(async () => {
  if (noLab) return;
  lab = await Lab.create("adm", ["a", "b"], 11);
});

after(async () => {
  for (const p of peers) await p.stop();
  await lab?.destroy();
});

async function curl(node: string, path: string): Promise<string> {
  const r = await lab.exec(node, ["curl", "-s", "--max-time", "5", `http://${ADMIN}${path}`]);
  assert.equal(r.code, 0, `curl ${path} in ${node}: ${r.stderr}`);
  return r.stdout;
}

const metric = (text: string, line: string) => {
  const m = text.split("\n").find((l) => l.startsWith(`${line} `));
  return m === undefined ? undefined : Number(m.slice(line.length + 1));
};

test("admin: /api/vrrp and /metrics show the master and the backup, their adverts and transitions", { skip: noLab }, async () => {
  // The admin listener is loopback in each node's own namespace: the same address on both.
  const config = (priority: number) => `admin: { bind: ${ADMIN} }\n` +
    fulcrumConfig({ priority, vip: `${VIP}/24`, interval: 1, extra: ["authentication: { auth_type: PASS, auth_pass: s3cret }"], version: 2 });
  peers.push(await startFulcrum(lab, "a", config(150)));
  peers.push(await startFulcrum(lab, "b", config(100)));
  await waitForAddress(lab, "a", VIP, 10_000);
  type Instance = { name: string; state: string; priority: number; adverts: { sent: number; received: number } };
  // Bounded: the backup has heard a few adverts (one a second).
  const [a, b] = await waitFor("adverts sent by the master and heard by the backup", async () => {
    const views = await Promise.all(["a", "b"].map(async (n) => (JSON.parse(await curl(n, "/api/vrrp")).instances as Instance[])[0]));
    return views[0].adverts.sent >= 2 && views[1].adverts.received >= 2 ? views : null;
  }, 10_000, 100) as Instance[];
  assert.equal(a.state, "MASTER");
  assert.equal(b.state, "BACKUP");
  assert.equal(a.priority, 150);
  
  const ma = await curl("a", "/metrics"), mb = await curl("b", "/metrics");
  assert.equal(metric(ma, 'fulcrum_vrrp_state{instance="VI_1",state="MASTER"}'), 1);
  assert.equal(metric(mb, 'fulcrum_vrrp_state{instance="VI_1",state="BACKUP"}'), 1);
  assert.equal(metric(ma, 'fulcrum_vrrp_transitions_total{instance="VI_1"}'), 2, "INIT -> BACKUP -> MASTER");
  assert.equal(metric(mb, 'fulcrum_vrrp_transitions_total{instance="VI_1"}'), 1, "INIT -> BACKUP");
  assert.ok(metric(mb, 'fulcrum_vrrp_adverts_received_total{instance="VI_1"}')! >= 2);
  assert.equal(metric(mb, 'fulcrum_vrrp_adverts_dropped_total{instance="VI_1",reason="auth"}'), 0);
  const config_ = await curl("a", "/api/config");
  assert.ok(!config_.includes("s3cret"), "the VRRP password is redacted");
});

test("dashboard: each node's page shows its VRRP instance's state, MASTER on a and BACKUP on b", { skip: noLab || needs("chromium") }, async () => {
  assert.equal(peers.length, 2, "the nodes of the test above run");
  for (const [node, state] of [["a", "MASTER"], ["b", "BACKUP"]]) {
    // The browser runs in the node's namespace, where the admin listener's loopback is.
    const browser = await launchChromium(undefined, lab.node(node).ns);
    try {
      const problems: string[] = [];
      browser.page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
      browser.page.on("pageerror", (e) => problems.push(e.message));
      await browser.page.goto(`http://${ADMIN}/`);
      await browser.page.waitForSelector(`#vrrp tr[data-instance="VI_1"] .badge[data-state="${state}"]`, { timeout: 10_000 });
      assert.match(await browser.page.locator('#vrrp tr[data-instance="VI_1"]').textContent() ?? "", new RegExp(`${state}VI_1eth0`));
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  }
});
