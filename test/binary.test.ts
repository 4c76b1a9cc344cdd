// The single binary: built fresh from the sources under test (as `npm run build` does, but into a
// temporary directory, so a stale dist/fulcrum is never what is tested), alone in that directory
// it runs demo, check and run with its WASM embedded.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { runtime } from "../src/runtime/index.ts";
import { startBackend, freePort } from "./helpers/backends.ts";
import { getJson } from "./helpers/http.ts";
import { startCli } from "./helpers/fulcrum.ts";

const root = new URL("..", import.meta.url).pathname;
const dir = `/tmp/fulcrum-bin-${runtime.name}-${Date.now()}`;
const bin = `${dir}/fulcrum`;

async function sh(cmd: string[], cwd = root): Promise<{ code: number; out: string }> {
  const child = runtime.spawn(cmd, { cwd });
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  return { code: await child.exited, out: out + err };
}

before(async () => {
  const bun = `${root}node_modules/.bin/bun`;
  assert.equal((await sh(["mkdir", "-p", dir])).code, 0);
  const wasm = await sh([bun, "wasm/build.ts"]);
  assert.equal(wasm.code, 0, wasm.out);
  const built = await sh([bun, "build", "--compile", "--minify", "src/cli/main.ts", "--outfile", bin]);
  assert.equal(built.code, 0, built.out);
});

after(async () => { await sh(["rm", "-rf", dir]); });

test("binary: alone in a directory, it prints its version and runs the demo", async () => {
  const v = await sh([bin, "version"], dir);
  assert.equal(v.code, 0, v.out);
  assert.match(v.out, /^fulcrum \d+\.\d+\.\d+ \(bun /);
  const port = await freePort(), adminPort = await freePort();
  const d = await sh([bin, "demo", "--once", "--listen", `127.0.0.1:${port}`, "--admin", `127.0.0.1:${adminPort}`], dir);
  assert.equal(d.code, 0, d.out);
  assert.match(d.out, /backend-1\s+6 /);
});

test("binary: the admin listener serves the dashboard's page, script and style from inside the binary", async () => {
  const b = await startBackend("bin-dash");
  const port = await freePort(), adminPort = await freePort();
  await runtime.writeTextFile(`${dir}/dash.yaml`, `admin: { bind: 127.0.0.1:${adminPort} }
listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  web: { servers: [${b.address}] }
`);
  const p = await startCli(["run", "--config", "dash.yaml"], 1, { bin, cwd: dir });
  try {
    const get = async (path: string) => { const r = await fetch(`http://127.0.0.1:${adminPort}${path}`); return { type: r.headers.get("content-type"), body: await r.text() }; };
    const page = await get("/"), script = await get("/dashboard.js"), style = await get("/dashboard.css");
    assert.match(page.type ?? "", /^text\/html/);
    assert.match(page.body, /<script src="\/dashboard\.js" defer><\/script>/);
    assert.match(script.type ?? "", /^text\/javascript/);
    assert.match(script.body, /new EventSource\("\/api\/events"\)/);
    assert.match(style.type ?? "", /^text\/css/);
    assert.match(style.body, /tr\[data-state="down"\]/);
  } finally {
    assert.equal(await p.stop(), 0);
    await b.stop();
  }
});

test("binary: check and run a config file", async () => {
  const b = await startBackend("bin-backend");
  const port = await freePort();
  await runtime.writeTextFile(`${dir}/fulcrum.yaml`, `listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  web: { scheduler: mh, servers: [${b.address}] }
`);
  assert.equal((await sh([bin, "check"], dir)).code, 0, "finds ./fulcrum.yaml by default");
  await runtime.writeTextFile(`${dir}/bad.yaml`, "listeners: []\n");
  const bad = await sh([bin, "check", "--config", "bad.yaml"], dir);
  assert.equal(bad.code, 2);
  assert.match(bad.out, /listeners/);
  const p = await startCli(["run"], 1, { bin, cwd: dir });
  try {
    const e = await getJson<{ backend: string }>(`${p.url}/`);
    assert.equal(e.backend, "bin-backend");
  } finally {
    assert.equal(await p.stop(), 0, "SIGTERM stops it cleanly");
    await b.stop();
  }
});
