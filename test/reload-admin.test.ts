// A reload applies the `admin:` section: a changed bind opens the new admin listener before the
// old one closes, a changed token (or token_file) is in force as soon as the new generation
// serves, and an admin section that cannot take effect keeps the whole running configuration.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { startCli, writeTemp } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { waitFor } from "./helpers/netns.ts";
import { runtime } from "../src/runtime/index.ts";

const backends: Backend[] = [];
after(async () => { for (const b of backends) await b.stop(); });

async function setup(admin: (port: number) => string) {
  const b = await startBackend("admin-reload");
  backends.push(b);
  const port = await freePort();
  const text = (section: string) => `${section}listeners: [{ bind: "127.0.0.1:${port}" }]\npools:\n  web: { servers: [${b.address}] }\n`;
  const file = await writeTemp(text(admin(port)));
  const f = await startCli(["run", "--config", file], 1);
  return { f, file, text };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** A write that changes nothing a test looks at: a server's weight set to what it is. */
const write = (admin: number, token: string, server: string) =>
  request(`http://127.0.0.1:${admin}/api/pools/web/servers/${server}/weight`, { method: "POST", headers: bearer(token), body: `{"weight":1}` });
const status = async (admin: number) => JSON.parse((await request(`http://127.0.0.1:${admin}/api/status`)).body) as { generation: number };
const refused = (admin: number) => request(`http://127.0.0.1:${admin}/healthz`).then(() => false, (e: Error & { code?: string }) => e.code === "ECONNREFUSED");

test("reload: a changed admin bind opens the new listener before the old one closes; the new token_file is in force at once", async () => {
  const [one, two] = [await freePort(), await freePort()];
  const tokenOne = await writeTemp("first-token\n", "token"), tokenTwo = await writeTemp("second-token\n", "token");
  const section = (port: number, token: string) => `admin: { bind: "127.0.0.1:${port}", token_file: ${token} }\n`;
  const { f, file, text } = await setup(() => section(one, tokenOne));
  const server = backends.at(-1)!.address;
  try {
    assert.equal((await write(one, "first-token", server)).status, 200);
    await runtime.writeTextFile(file, text(section(two, tokenTwo)));
    // The reload asked for on the old listener is answered there, after the new one opened.
    const reloaded = await request(`http://127.0.0.1:${one}/api/reload`, { method: "POST", headers: bearer("first-token") });
    assert.equal(reloaded.status, 200, reloaded.body);
    assert.equal((await request(`http://127.0.0.1:${two}/healthz`)).status, 200, "the new bind answers as the reload's answer arrives");
    assert.equal((await status(two)).generation, 2);
    assert.equal((await write(two, "first-token", server)).status, 403, "the old token no longer writes");
    assert.equal((await write(two, "second-token", server)).status, 200);
    await waitFor("the old admin listener to close", () => refused(one), 8000);
    assert.match(f.output(), new RegExp(`admin API on http://127\\.0\\.0\\.1:${two}\\n`));
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

test("reload: a new token in the same token_file is in force once the new generation serves (SIGHUP)", async () => {
  const admin = await freePort();
  const token = await writeTemp("old-token\n", "token");
  const { f } = await setup(() => `admin: { bind: "127.0.0.1:${admin}", token_file: ${token} }\n`);
  const server = backends.at(-1)!.address;
  try {
    assert.equal((await write(admin, "old-token", server)).status, 200);
    await runtime.writeTextFile(token, "new-token\n");
    assert.equal((await write(admin, "old-token", server)).status, 200, "read at start and reload only");
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    assert.equal((await write(admin, "old-token", server)).status, 403);
    assert.equal((await write(admin, "new-token", server)).status, 200);
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

test("reload: an admin section that cannot take effect keeps the running configuration, admin listener and token", async () => {
  const [admin, other] = [await freePort(), await freePort()];
  const token = await writeTemp("kept-token\n", "token");
  const section = `admin: { bind: "127.0.0.1:${admin}", token_file: ${token} }\n`;
  const { f, file, text } = await setup(() => section);
  const server = backends.at(-1)!.address;
  const api = `http://127.0.0.1:${admin}/api/reload`;
  try {
    // Invalid: a bind anyone could reach without a token_file.
    await runtime.writeTextFile(file, text(`admin: { bind: "0.0.0.0:${other}" }\n`));
    const invalid = await request(api, { method: "POST", headers: bearer("kept-token") });
    assert.equal(invalid.status, 400, invalid.body);
    assert.match(JSON.parse(invalid.body).errors.join("\n"), /admin\.bind: expected a loopback address/);
    // Valid but unusable: a token_file that does not exist, with a changed bind.
    await runtime.writeTextFile(file, text(`admin: { bind: "127.0.0.1:${other}", token_file: /nonexistent/fulcrum.token }\n`));
    const unreadable = await request(api, { method: "POST", headers: bearer("kept-token") });
    assert.equal(unreadable.status, 400, unreadable.body);
    assert.match(JSON.parse(unreadable.body).errors.join("\n"), /admin: cannot read token_file \/nonexistent\/fulcrum\.token/);
    assert.equal(await refused(other), true, "the new bind was closed again");
    // Valid but unusable: a bind in use (the proxy's own listener).
    const proxyPort = new URL(f.url).port;
    await runtime.writeTextFile(file, text(`admin: { bind: "127.0.0.1:${proxyPort}", token_file: ${token} }\n`));
    const inUse = await request(api, { method: "POST", headers: bearer("kept-token") });
    assert.equal(inUse.status, 400, inUse.body);
    assert.match(JSON.parse(inUse.body).errors.join("\n"), /address in use/);
    assert.equal((await status(admin)).generation, 1, "generation 1 goes on serving");
    assert.equal((await write(admin, "kept-token", server)).status, 200, "the running token goes on");
    assert.match(f.output(), /reload failed; generation 1 goes on serving/);
    // Then the admin section leaves the config: the listener closes after the reload's answer.
    await runtime.writeTextFile(file, text(""));
    assert.equal((await request(api, { method: "POST", headers: bearer("kept-token") })).status, 200);
    await waitFor("the admin listener to close", () => refused(admin), 8000);
    assert.equal((await request(`${f.url}/`)).status, 200, "the proxy goes on");
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

test("reload: an admin section added by a reload opens the admin API", async () => {
  const admin = await freePort();
  const { f, file, text } = await setup(() => "");
  try {
    await runtime.writeTextFile(file, text(`admin: { bind: "127.0.0.1:${admin}" }\n`));
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    assert.equal((await status(admin)).generation, 2);
    assert.match(f.output(), new RegExp(`admin API on http://127\\.0\\.0\\.1:${admin} \\(read-only: no token_file\\)`));
  } finally {
    assert.equal(await f.stop(), 0);
  }
});
