// The supervisor owns the process: SIGHUP never ends it, SIGTERM and SIGINT stop it cleanly.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { freePort, startBackend } from "./helpers/backends.ts";
import { startFulcrum } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { waitFor } from "./helpers/netns.ts";

const backend = await startBackend("hup");
after(() => backend.stop());

const config = async () => `listeners: [{ bind: "127.0.0.1:${await freePort()}" }]\npools:\n  web: { servers: [${backend.address}] }\n`;

test("control: SIGHUP never ends the process: it reloads, twice in a row, and the listener keeps serving", async () => {
  const f = await startFulcrum(await config());
  try {
    assert.equal((await request(f.url)).status, 200);
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    f.child.kill("SIGHUP");
    await waitFor("generation 3", () => f.output().includes("generation 3 serving"), 10_000);
    assert.equal((await request(f.url)).status, 200, "still serving after two SIGHUPs");
  } finally {
    assert.equal(await f.stop(), 0, "SIGTERM: a clean stop, exit 0");
  }
});

test("control: SIGINT stops the process cleanly with exit 0", async () => {
  const f = await startFulcrum(await config());
  f.child.kill("SIGINT");
  const code = await f.child.exited;
  assert.equal(code, 0);
});
