// `fulcrum ctl COMMAND ...`: the admin API from the command line. The address and token come from
// the config's admin section (--config, as `fulcrum run` finds it). Exit codes a script can use:
// 0 done, 1 refused by the API (bad request, unknown pool or server, conflict), 2 usage or config
// error, 3 no answer (not running, or no admin listener there), 4 not authorized (token).
import pkg from "../../package.json" with { type: "json" };
import { runtime } from "../runtime/index.ts";
import { loadConfigFile } from "../control/config-file.ts";
import { formatHostPort } from "../config/address.ts";
import { flag, type ParsedArgs } from "./args.ts";

export const CTL_EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, unauthorized: 4 } as const;

interface CtlCommand {
  args: string;
  summary: string;
  /** Number of positional arguments after the command: [min, max]. */
  arity: [number, number];
  run(api: Api, a: string[], args: ParsedArgs): Promise<number> | number;
}

const seg = encodeURIComponent;
const serverPath = (pool: string, server: string) => `/api/pools/${seg(pool)}/servers/${seg(server)}`;

export const CTL_COMMANDS: Record<string, CtlCommand> = {
  status: { args: "", summary: "version, uptime, generation, config file and checksum", arity: [0, 0], run: (api) => api.show("GET", "/api/status", printStatus) },
  pools: { args: "[POOL]", summary: "pools and servers: state, weights, active, checks", arity: [0, 1], run: (api, a) => a[0] ? api.show("GET", `/api/pools/${seg(a[0])}`, (p) => printPools([p])) : api.show("GET", "/api/pools", (b) => printPools(b.pools as Json[])) },
  vrrp: { args: "", summary: "VRRP instances: state, priority, adverts, drops", arity: [0, 0], run: (api) => api.show("GET", "/api/vrrp", printVrrp) },
  l4: { args: "", summary: "L4 listeners, and virtual servers as ipvsadm -Ln lists them", arity: [0, 0], run: (api) => api.show("GET", "/api/l4", printL4) },
  "l4-connections": {
    args: "", summary: "the packet director's connections as ipvsadm -Lnc lists them (the first 1000)", arity: [0, 0],
    run: (api) => api.show("GET", "/api/l4/connections", printConnections),
  },
  config: { args: "", summary: "the effective config as JSON, secrets redacted", arity: [0, 0], run: (api) => api.show("GET", "/api/config", (b) => console.log(JSON.stringify(b, null, 2))) },
  metrics: { args: "", summary: "the Prometheus metrics text", arity: [0, 0], run: (api) => api.raw("/metrics") },
  ready: { args: "POOL HOST:PORT", summary: "take new sessions again (clears drain and maint)", arity: [2, 2], run: (api, [p, s]) => api.write(`${serverPath(p, s)}/ready`) },
  drain: { args: "POOL HOST:PORT", summary: "no new sessions; those on it go on; checks go on", arity: [2, 2], run: (api, [p, s]) => api.write(`${serverPath(p, s)}/drain`) },
  maint: { args: "POOL HOST:PORT", summary: "out of service, as down: true in the config", arity: [2, 2], run: (api, [p, s]) => api.write(`${serverPath(p, s)}/maint`) },
  weight: {
    args: "POOL HOST:PORT N", summary: "set the server's weight (0..256)", arity: [3, 3],
    run: (api, [p, s, n]) => /^\d+$/.test(n) ? api.write(`${serverPath(p, s)}/weight`, { weight: Number(n) }) : usageError(`weight: expected an integer 0..256, got "${n}"`),
  },
  "add-server": {
    args: "POOL HOST:PORT [WEIGHT]", summary: "add a server to a pool (until the next reload)", arity: [2, 3],
    run: (api, [p, s, w]) => w !== undefined && !/^\d+$/.test(w) ? usageError(`add-server: weight: expected an integer 0..256, got "${w}"`)
      : api.write(`/api/pools/${seg(p)}/servers`, w === undefined ? { address: s } : { address: s, weight: Number(w) }),
  },
  "remove-server": { args: "POOL HOST:PORT", summary: "remove a server; sessions on it finish", arity: [2, 2], run: (api, [p, s]) => api.write(`${serverPath(p, s)}/remove`) },
  "add-pool": {
    args: "POOL [HOST:PORT...] [--discovery etcd]", summary: "add a pool: these servers, and etcd's with --discovery (no route uses it until a reload)", arity: [1, 1000],
    run: (api, [p, ...servers], args) => {
      const discovery = flag(args, "discovery");
      if (servers.length === 0 && discovery === undefined) return usageError("add-pool takes POOL HOST:PORT... (or --discovery etcd)");
      return api.write("/api/pools", { name: p, ...(servers.length > 0 ? { servers } : {}), ...(discovery !== undefined ? { discovery } : {}) });
    },
  },
  "remove-pool": { args: "POOL", summary: "remove a pool no route or VRRP instance uses", arity: [1, 1], run: (api, [p]) => api.write(`/api/pools/${seg(p)}/remove`) },
};

export function ctlUsage(): string {
  const rows = Object.entries(CTL_COMMANDS).map(([name, c]) => `  fulcrum ctl ${`${name} ${c.args}`.padEnd(34)} ${c.summary}`);
  return `Usage:\n${rows.join("\n")}\n\nFlags: --config FILE (the admin section gives address and token), --json (print the API's JSON)\nExit codes: 0 done, 1 refused (bad request, unknown pool or server, conflict), 2 usage or config, 3 no answer, 4 not authorized`;
}

function usageError(message: string): number {
  console.error(`fulcrum ctl: ${message}`);
  return CTL_EXIT.usage;
}

export async function ctl(args: ParsedArgs): Promise<number> {
  const [name, ...rest] = args.positional;
  if (name === undefined) return usageError(`which command?\n${ctlUsage()}`);
  const command = CTL_COMMANDS[name];
  if (!command) return usageError(`unknown command "${name}"\n${ctlUsage()}`);
  const [min, max] = command.arity;
  if (rest.length < min || rest.length > max) return usageError(`${name} takes ${command.args || "no arguments"}`);
  const loaded = await loadConfigFile(flag(args, "config", "c"));
  if (!loaded.ok) return CTL_EXIT.usage;
  const admin = loaded.config.admin;
  if (!admin) return usageError(`${loaded.file} has no admin section: no admin API to talk to`);
  // A wildcard bind is reached on loopback.
  const host = admin.bind.host === "0.0.0.0" ? "127.0.0.1" : admin.bind.host === "::" ? "::1" : admin.bind.host;
  const api = new Api(`http://${formatHostPort({ host, port: admin.bind.port })}`, admin.tokenFile, args.flags.has("json"));
  return command.run(api, rest, args);
}

type Json = Record<string, unknown>;

class Api {
  constructor(readonly base: string, private readonly tokenFile: string | null, private readonly asJson: boolean) {}

  private async request(method: string, path: string, body?: Json, token?: string): Promise<Response | number> {
    const headers: Record<string, string> = { "user-agent": `fulcrum-ctl/${pkg.version} (${runtime.env("USER") ?? "unknown user"})` };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body) headers["content-type"] = "application/json";
    try {
      return await fetch(`${this.base}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(10_000) });
    } catch (e) {
      console.error(`fulcrum ctl: no answer from the admin API at ${this.base}: ${(e as Error).message} (is fulcrum running with this config?)`);
      return CTL_EXIT.unreachable;
    }
  }

  /** The answer's JSON, or the exit code after printing why it failed. */
  private async answer(res: Response | number): Promise<Json | number> {
    if (typeof res === "number") return res;
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status} with a body that is not JSON` })) as Json;
    if (res.ok) return body;
    if (this.asJson) console.log(JSON.stringify(body, null, 2));
    console.error(`fulcrum ctl: ${res.status}: ${body.error ?? res.statusText}`);
    return res.status === 401 || res.status === 403 ? CTL_EXIT.unauthorized : CTL_EXIT.refused;
  }

  async show(method: string, path: string, print: (body: Json) => void): Promise<number> {
    const body = await this.answer(await this.request(method, path));
    if (typeof body === "number") return body;
    if (this.asJson) console.log(JSON.stringify(body, null, 2));
    else print(body);
    return CTL_EXIT.ok;
  }

  async raw(path: string): Promise<number> {
    const res = await this.request("GET", path);
    if (typeof res === "number") return res;
    const text = await res.text();
    if (!res.ok) { console.error(`fulcrum ctl: ${res.status}: ${text}`); return CTL_EXIT.refused; }
    console.log(text.trimEnd());
    return CTL_EXIT.ok;
  }

  async write(path: string, body: Json = {}): Promise<number> {
    if (!this.tokenFile) return usageError("the admin section has no token_file: the API takes no changes");
    let token: string;
    try {
      token = (await runtime.readTextFile(this.tokenFile)).trim();
    } catch (e) {
      return usageError(`cannot read token_file ${this.tokenFile}: ${(e as Error).message}`);
    }
    const answer = await this.answer(await this.request("POST", path, body, token));
    if (typeof answer === "number") return answer;
    console.log(this.asJson ? JSON.stringify(answer, null, 2) : answer.message);
    return CTL_EXIT.ok;
  }
}

function printStatus(b: Json): void {
  const config = b.config as Json, reloads = b.reloads as Json;
  console.log(`fulcrum ${b.version} (${b.runtime}), pid ${b.pid}, ${b.phase}, up ${b.uptime_seconds}s`);
  console.log(`generation ${b.generation}, config ${config.file ?? "(flags)"} sha256 ${config.sha256 ?? "-"}`);
  console.log(`reloads: ${reloads.ok} ok, ${reloads.failed} failed${reloads.last_ok ? "" : ` (last failed: ${(reloads.last_errors as string[]).join("; ")})`}`);
  for (const l of b.listeners as Json[]) console.log(`listener ${l.name} ${l.address}: ${l.connections} connection(s)`);
}

function printPools(pools: Json[]): void {
  const rows = [["POOL", "SERVER", "ADMIN", "STATE", "WEIGHT", "EFF", "ACTIVE", "CHECK", "REASONS"]];
  for (const p of pools) {
    const servers = [...(p.servers as Json[]), ...(p.sorry_server ? [p.sorry_server as Json] : [])];
    for (const s of servers) {
      const checks = (s.checks as Json[]).map((c) => `${c.type}:${c.up === null ? "-" : c.up ? "up" : "down"}`).join(",") || "-";
      rows.push([String(p.name), String(s.address), String(s.admin), String(s.state), String(s.weight), String(s.effective_weight), String(s.active), checks, (s.down_reasons as string[]).join(",") || "-"]);
    }
    if ((p.queued as number) > 0) rows.push([String(p.name), `(queue: ${p.queued})`, "", "", "", "", "", "", ""]);
  }
  printTable(rows);
}

function printVrrp(b: Json): void {
  const rows = [["INSTANCE", "STATE", "PRIORITY", "SENT", "RECEIVED", "DROPS"]];
  for (const i of b.instances as Json[]) {
    const adverts = i.adverts as Json, drops = Object.entries(i.drops as Json).map(([k, v]) => `${k}=${v}`).join(",") || "-";
    rows.push([String(i.name), String(i.state), String(i.priority), String(adverts.sent), String(adverts.received), drops]);
  }
  printTable(rows);
}

/** ipvsadm -Lnc's layout (expire as mm:ss), with fullnat's local address when any entry has one. */
function printConnections(b: Json): void {
  if (!b.running) { console.log("the packet director is not running"); return; }
  const conns = b.connections as Json[];
  const local = conns.some((c) => c.local !== c.client);
  const expire = (s: number) => `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  console.log("IPVS connection entries");
  const rows = [["pro", "expire", "state", "source", "virtual", "destination", ...(local ? ["local"] : [])]];
  for (const c of conns) {
    rows.push([c.template ? "IP" : String(c.protocol), expire(Number(c.expires_in)), String(c.state), String(c.client), String(c.virtual), String(c.server), ...(local ? [String(c.local)] : [])]);
  }
  printTable(rows);
  if (b.truncated) console.log(`(the first ${conns.length} shown)`);
}

function printL4(b: Json): void {
  const listeners = b.listeners as Json[];
  if (listeners.length > 0) {
    const rows = [["LISTENER", "PROTO", "ADDRESS", "POOL", "CONNECTIONS"]];
    for (const l of listeners) {
      const pool = l.pool ?? (l.routes as Json[]).map((r) => `${(r.sni as string[] | null)?.join(",") ?? "*"}->${r.pool}`).join(" ");
      rows.push([String(l.name), String(l.protocol), String(l.address), String(pool), String(l.connections)]);
    }
    printTable(rows);
  }
  const vss = b.virtual_servers as Json[];
  if (vss.length === 0) return;
  // ipvsadm -Ln's layout; "-" where the director is not running.
  console.log("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
  for (const v of vss) {
    const flags = v.persistent_seconds ? ` persistent ${v.persistent_seconds}` : "";
    console.log(`${String(v.protocol).padEnd(4)} ${v.virtual} ${v.scheduler ?? "-"}${flags}${v.served ? "" : "  (not served)"}`);
    for (const r of v.real_servers as Json[]) {
      const count = (n: unknown) => String(n ?? "-").padEnd(10);
      console.log(`  -> ${String(r.address).padEnd(28)} ${String(r.forward).padEnd(7)} ${String(r.weight).padEnd(6)} ${count(r.active)} ${count(r.inactive)}`.trimEnd());
    }
  }
}

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd());
}
