// `fulcrum demo`: three small backends on loopback and a balancer in front, then a short run of
// requests to show how they spread. `npm start` runs this.
import { runtime, type HttpServer } from "../runtime/index.ts";
import { validateConfig } from "../config/schema.ts";
import { flag, type ParsedArgs } from "./args.ts";
import { listeningLines, startEdge, stopOnSignal } from "./serve.ts";

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

export async function demo(args: ParsedArgs): Promise<number> {
  const listen = flag(args, "listen") ?? "127.0.0.1:8080";
  const backends = await startBackends();
  const servers = backends.map((b, i) => ({ address: `127.0.0.1:${b.port}`, weight: WEIGHTS[i] }));
  const result = validateConfig({
    listeners: [{ name: "demo", bind: listen }],
    routes: [{ path_prefix: "/sticky", pool: "sticky" }, { pool: "weighted" }],
    pools: {
      weighted: { scheduler: "wrr", servers },
      sticky: { scheduler: "sh", servers: servers.map((s) => s.address) },
    },
  });
  if (!result.ok) throw new Error(`demo config: ${JSON.stringify(result.issues)}`);
  let edge;
  try {
    edge = await startEdge(result.config);
  } catch (e) {
    console.error(`fulcrum demo: cannot start: ${(e as Error).message}\n  try: fulcrum demo --listen 127.0.0.1:8081`);
    await Promise.all(backends.map((b) => b.stop()));
    return 1;
  }
  const url = `http://${listen.startsWith(":") ? "127.0.0.1" + listen : listen.replace(/:\d+$/, "")}:${edge.ports[0]}`;
  console.log(`fulcrum demo: backends ${servers.map((s) => `${s.address} (weight ${s.weight})`).join(", ")}`);
  for (const line of listeningLines(edge)) console.log(line);
  await showSpread(`${url}/`, 12);
  await showSpread(`${url}/sticky`, 6);
  console.log("\n/ is smooth weighted round robin (3:2:1); /sticky hashes your address, so it stays on one backend.");
  const stopBackends = async () => { await Promise.all(backends.map((b) => b.stop())); };
  if (args.flags.has("once")) {
    await edge.stop();
    await stopBackends();
    return 0;
  }
  console.log(`Try: curl ${url}/   (Ctrl-C stops the demo)`);
  await stopOnSignal(edge, stopBackends);
  return 0;
}
