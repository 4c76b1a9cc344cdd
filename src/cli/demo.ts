// `fulcrum demo`: three small backends on loopback and a balancer in front, then a short run of
// requests to show how they spread, and the admin API with its dashboard on loopback (a token made
// for this run, in a file only this user can read, removed at the end). `npm start` runs this.
import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtime, type HttpServer } from "../runtime/index.ts";
import { validateConfig } from "../control/schema.ts";
import { isLoopback } from "../control/admin-config.ts";
import { parseHostPort } from "../config/address.ts";
import { formatPath } from "../config/errors.ts";
import { flag, type ParsedArgs } from "./args.ts";
import { supervise } from "../control/supervisor.ts";

const WEIGHTS = [3, 2, 1];

async function startBackends(): Promise<HttpServer[]> {
  const backends: HttpServer[] = [];
  for (let i = 0; i < WEIGHTS.length; i++) {
    const name = `backend-${i + 1}`;
    backends.push(await runtime.serveHttp({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => new Response(`hello from ${name} (${new URL(req.url).pathname})\n`, {
        headers: { "x-backend": name },
      }),
    }));
  }
  return backends;
}

async function showSpread(url: string, n: number): Promise<void> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await fetch(url);
    await res.text();
    const who = res.headers.get("x-backend") ?? `HTTP ${res.status}`;
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  console.log(`\n${n} requests to ${url}:`);
  for (const [who, c] of [...counts].sort()) console.log(`  ${who.padEnd(10)} ${String(c).padStart(3)}  ${"#".repeat(c)}`);
}

/** A random token in a new 0600 file: the demo's admin writes (the dashboard's buttons) need it. */
async function demoToken(): Promise<{ token: string; file: string }> {
  const token = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
  const file = join(tmpdir(), `fulcrum-demo-${token.slice(0, 8)}.token`);
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return { token, file };
}

export async function demo(args: ParsedArgs): Promise<number> {
  const listen = flag(args, "listen") ?? "127.0.0.1:8080";
  const adminBind = flag(args, "admin") ?? "127.0.0.1:9901";
  const adminHost = parseHostPort(adminBind, true)?.host;
  if (!adminHost || !isLoopback(adminHost)) {
    console.error(`fulcrum demo: --admin: expected a loopback address and port (127.0.0.1:9901), got ${JSON.stringify(adminBind)}: the demo prints its token`);
    return 2;
  }
  const { token, file: tokenFile } = await demoToken();
  const backends = await startBackends();
  const servers = backends.map((b, i) => ({ address: `127.0.0.1:${b.port}`, weight: WEIGHTS[i] }));
  const raw = {
    listeners: [{ name: "demo", bind: listen }],
    routes: [{ path_prefix: "/sticky", pool: "sticky" }, { pool: "weighted" }],
    pools: {
      weighted: { scheduler: "wrr", servers, health: { type: "http", path: "/", interval: "1s" } },
      sticky: { scheduler: "sh", servers: servers.map((s) => s.address) },
    },
    admin: { bind: adminBind, token_file: tokenFile },
  };
  const result = validateConfig(raw);
  if (!result.ok) {
    await rm(tokenFile, { force: true });
    await Promise.all(backends.map((b) => b.stop()));
    console.error(`fulcrum demo: ${result.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join("; ")}`);
    return 2;
  }
  const stopBackends = async () => {
    await Promise.all(backends.map((b) => b.stop()));
    await rm(tokenFile, { force: true });
  };
  const code = await supervise(result.config, {
    file: null,
    raw, // what workers build from
    once: args.flags.has("once"),
    stopped: stopBackends,
    ready: async (generation, adminUrl) => {
      const port = generation.edge!.ports[0];
      const url = `http://${listen.startsWith(":") ? "127.0.0.1" + listen : listen.replace(/:\d+$/, "")}:${port}`;
      console.log(`fulcrum demo: backends ${servers.map((s) => `${s.address} (weight ${s.weight})`).join(", ")}`);
      await showSpread(`${url}/`, 12);
      await showSpread(`${url}/sticky`, 6);
      console.log("\n/ is smooth weighted round robin (3:2:1); /sticky hashes your address, so it stays on one backend.");
      if (adminUrl) console.log(`\nDashboard: ${adminUrl}/   (admin token for its buttons: ${token})`);
      if (!args.flags.has("once")) console.log(`Try: curl ${url}/   (Ctrl-C stops the demo)`);
    },
  });
  if (code === 1) console.error(`fulcrum demo: could not start on ${listen} (dashboard ${adminBind}); try: fulcrum demo --listen 127.0.0.1:8081 --admin 127.0.0.1:9902`);
  return code;
}
