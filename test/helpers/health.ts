// What the health tests share: checks written as YAML and read by the real config schema, a
// Monitor for one check, an in-process harness (real pools in a real data plane with health
// checking started on them), and small clients for traffic through a running balancer.
import assert from "node:assert/strict";
import { parseConfigText as parseConfig } from "../../src/control/schema.ts";
import { formatConfigErrors } from "../../src/config/errors.ts";
import type { Config } from "../../src/control/schema.ts";
import type { CheckConfig } from "../../src/health/config.ts";
import type { Probe } from "../../src/health/result.ts";
import { probeFor } from "../../src/health/checkers/index.ts";
import { Monitor } from "../../src/health/monitor.ts";
import { HealthService } from "../../src/health/service.ts";
import type { HealthEvent } from "../../src/health/events.ts";
import { createDataPlane } from "../../src/core/wasm.ts";
import type { DataPlane } from "../../src/core/dataplane.ts";
import { Balancer } from "../../src/balancer/balancer.ts";
import type { Pool } from "../../src/balancer/pool.ts";
import { runtime } from "../../src/runtime/index.ts";
import { request } from "./http.ts";

export function configOf(text: string): Config {
  const r = parseConfig(text, "test.yaml");
  if (!r.ok) assert.fail(formatConfigErrors("test.yaml", r.errors));
  return r.config;
}

/** The check written as a YAML flow mapping, read as pool `api`'s health. */
export function checkOf(body: string): CheckConfig {
  return configOf(`listeners: [{ bind: "127.0.0.1:8080" }]\npools:\n  api:\n    servers: [127.0.0.1:9001]\n    health: ${body}\n`)
    .pools[0].health.checks[0];
}

/** One check as it ran: when it started (performance.now()) and, once settled, whether it passed. */
export interface CheckRecord {
  at: number;
  ok: boolean | null;
}

/** A Monitor on its own (not started) for a check written as YAML flow mapping. With `record`,
 * every check it runs is recorded there: the schedule as it ran, not as planned. */
export function monitorFor(server: { port: number }, check: string, record?: CheckRecord[]): Monitor {
  const c = checkOf(check);
  const address = { host: "127.0.0.1", port: server.port };
  const { target, probe } = probeFor(c, address);
  const recorded: Probe = record
    ? async (deadline) => {
      const entry: CheckRecord = { at: performance.now(), ok: null };
      record.push(entry);
      const result = await probe(deadline);
      entry.ok = result.ok;
      return result;
    }
    : probe;
  return new Monitor("test", `127.0.0.1:${server.port}`, c, target, recorded);
}

export interface Harness {
  pools: Map<string, Pool>;
  dp: DataPlane;
  service: HealthService;
  lines: string[];
  events: HealthEvent[];
}

const services: HealthService[] = [];

/** Stops every harness's health checking (for an `after` hook). */
export function stopHarnesses(): void {
  for (const s of services.splice(0)) s.stop();
}

/** Real pools in a real data plane, with health checking started on them (no listener). */
export async function harness(yaml: string): Promise<Harness> {
  const config = configOf(`listeners: [{ bind: "127.0.0.1:1" }]\n${yaml}`);
  const dp = await createDataPlane({ seed: 1 });
  const balancer = new Balancer(dp, config.pools);
  const pools = new Map([...balancer.all()].map((p) => [p.name, p]));
  const lines: string[] = [];
  const events: HealthEvent[] = [];
  const service = new HealthService(balancer, { log: (l) => lines.push(l) });
  service.subscribe((e) => events.push(e));
  services.push(service);
  service.start();
  return { pools, dp, service, lines, events };
}

/** Which backend answers GET / through the balancer (its X-Backend), or "HTTP <status>". */
export async function who(url: string): Promise<string> {
  const r = await request(`${url}/`);
  const backend = r.headers["x-backend"];
  return r.status === 200 && typeof backend === "string" ? backend : `HTTP ${r.status}`;
}

/** Sends n GETs through the balancer; returns how many each backend answered (by X-Backend). */
export async function spread(url: string, n: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await request(`${url}/item/${i}`);
    const backend = typeof r.headers["x-backend"] === "string" ? r.headers["x-backend"] : `HTTP ${r.status}`;
    counts.set(backend, (counts.get(backend) ?? 0) + 1);
  }
  return counts;
}

/** Runs a command to completion (bounded: killed after 10 s); throws with its stderr when it fails. */
export async function sh(argv: string[]): Promise<string> {
  const child = runtime.spawn(argv);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${argv.join(" ")}: exit ${code}: ${err}`);
  return out;
}

/** Lines of output after `from` characters that match `re`. */
export function linesMatching(out: string, re: RegExp, from = 0): string[] {
  return out.slice(from).split("\n").filter((l) => re.test(l));
}
