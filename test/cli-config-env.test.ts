// Which config `fulcrum run` serves: --config, else the file FULCRUM_CONFIG names, else
// ./fulcrum.yaml. Each config here points at its own backend and port, so the answer shows which
// one was read.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { runtime } from "../src/runtime/index.ts";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { getJson } from "./helpers/http.ts";
import { startCli, writeTemp } from "./helpers/fulcrum.ts";

let dir = "";
let fromEnv: Backend, fromFlag: Backend, fromCwd: Backend;

async function configFor(b: Backend): Promise<{ file: string; port: number }> {
  const port = await freePort();
  const file = await writeTemp(`listeners: [{ bind: 127.0.0.1:${port} }]\npools:\n  web: { servers: [${b.address}] }\n`);
  return { file, port };
}

before(async () => {
  [fromEnv, fromFlag, fromCwd] = await Promise.all(["env", "flag", "cwd"].map((n) => startBackend(n)));
  // A working directory of its own: its fulcrum.yaml is the default config.
  dir = await mkdtemp(`/tmp/fulcrum-config-env-${runtime.name}-`);
});

after(async () => {
  await Promise.all([fromEnv, fromFlag, fromCwd].map((b) => b?.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `fulcrum run` with these arguments, environment and working directory, and returns which
 * backend answered and on which port the listener came up. */
async function served(args: string[], env: Record<string, string>, cwd: string) {
  const f = await startCli(["run", ...args], 1, { env, cwd });
  try {
    const port = Number(new URL(f.url).port);
    return { port, backend: (await getJson<{ backend: string }>(`${f.url}/`)).backend };
  } finally {
    assert.equal(await f.stop(), 0);
  }
}

test("cli: run serves the config FULCRUM_CONFIG names, before ./fulcrum.yaml", async () => {
  const env = await configFor(fromEnv), cwd = await configFor(fromCwd);
  await runtime.writeTextFile(`${dir}/fulcrum.yaml`, await runtime.readTextFile(cwd.file));
  assert.deepEqual(await served([], { FULCRUM_CONFIG: env.file }, dir), { port: env.port, backend: "env" });
  // Without the variable the same directory's fulcrum.yaml is served: the variable made the difference.
  assert.deepEqual(await served([], {}, dir), { port: cwd.port, backend: "cwd" });
});

test("cli: --config wins over FULCRUM_CONFIG", async () => {
  const env = await configFor(fromEnv), flag = await configFor(fromFlag);
  assert.deepEqual(await served(["--config", flag.file], { FULCRUM_CONFIG: env.file }, dir), { port: flag.port, backend: "flag" });
});
