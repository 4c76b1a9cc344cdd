// Takes docs/dashboard.png: starts `fulcrum demo`, sends it some traffic for the charts, drains
// one server, puts another in maint and adds one that nothing answers on (its health check takes it
// down) through the admin API with the demo's token, then photographs the dashboard in headless
// Chromium while the traffic still runs.
//   bun scripts/dashboard-screenshot.ts [--seconds 100] [--out docs/dashboard.png]
import process from "node:process";
import { runtime } from "../src/runtime/index.ts";
import { launchChromium } from "../test/helpers/browser.ts";
import { freePort } from "../test/helpers/backends.ts";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const seconds = Number(arg("seconds", "100"));
const out = arg("out", new URL("../docs/dashboard.png", import.meta.url).pathname);
const main = new URL("../src/cli/main.ts", import.meta.url).pathname;

const [listen, adminPort] = [await freePort(), await freePort()];
const child = runtime.spawn([...runtime.scriptCommand(main), "demo", "--listen", `127.0.0.1:${listen}`, "--admin", `127.0.0.1:${adminPort}`]);
let output = "";
const reader = (async () => { for await (const c of child.stdout) output += new TextDecoder().decode(c); })();
const until = Date.now() + 20_000;
while (!/admin token for its buttons: (\w+)/.test(output) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
const token = /admin token for its buttons: (\w+)/.exec(output)?.[1];
if (!token) { child.kill("SIGKILL"); throw new Error(`the demo did not start:\n${output}`); }
const admin = `http://127.0.0.1:${adminPort}`, edge = `http://127.0.0.1:${listen}`;

// Traffic that rises and falls, so the charts have a shape (bounded by `seconds`).
const end = Date.now() + seconds * 1000;
const load = (async () => {
  let n = 0;
  while (Date.now() < end) {
    const phase = Math.sin(((end - Date.now()) / 1000) / 6) * 0.5 + 0.5;
    const burst = 2 + Math.round(phase * 12);
    await Promise.all(Array.from({ length: burst }, (_, i) => fetch(`${edge}/${i % 3 ? "" : "sticky"}?n=${n++}`).then((r) => r.text()).catch(() => "")));
    await new Promise((r) => setTimeout(r, 60));
  }
})();
const post = (path: string, body?: unknown) => fetch(`${admin}${path}`, {
  method: "POST", headers: { authorization: `Bearer ${token}` }, body: body === undefined ? undefined : JSON.stringify(body),
}).then((r) => r.text());
const pools = (await (await fetch(`${admin}/api/pools`)).json()) as { pools: { name: string; servers: { address: string }[] }[] };
const weighted = pools.pools.find((p) => p.name === "weighted")!, sticky = pools.pools.find((p) => p.name === "sticky")!;
await new Promise((r) => setTimeout(r, seconds * 400));
await post(`/api/pools/weighted/servers/${weighted.servers[2].address}/drain`);
await post(`/api/pools/sticky/servers/${sticky.servers[0].address}/maint`);
// A port nothing listens on (freed as soon as it was found): the pool's HTTP check takes it down.
await post("/api/pools/weighted/servers", { address: `127.0.0.1:${await freePort()}`, weight: 1 });

// Photographed while the traffic still runs, so the charts end at the current rate.
const browser = await launchChromium({ width: 1360, height: 600 });
try {
  await browser.page.goto(`${admin}/`);
  await browser.page.waitForSelector("section[data-pool] tr[data-state]");
  await new Promise((r) => setTimeout(r, Math.max(1500, end - Date.now() - 3000)));
  await browser.page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await load;
  child.kill("SIGTERM");
  await child.exited;
  await reader.catch(() => {});
}
