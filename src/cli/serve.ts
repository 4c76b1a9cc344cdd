// Starting the edge from a validated config, and stopping it cleanly on a signal.
import { runtime } from "../runtime/index.ts";
import type { Config } from "../config/schema.ts";
import { formatHostPort } from "../config/schema.ts";
import { createDataPlane } from "../core/wasm.ts";
import { Edge } from "../edge/edge.ts";
import { startHealth, type HealthService } from "../health/service.ts";

// Each running edge's health checking, for the parts that subscribe to it (VRRP, admin API).
const healthOfEdge = new WeakMap<Edge, HealthService>();

export function healthOf(edge: Edge): HealthService | undefined {
  return healthOfEdge.get(edge);
}

export async function startEdge(config: Config): Promise<Edge> {
  const dp = await createDataPlane({ seed: config.hashSeed });
  const edge = new Edge(config, dp);
  // Checks start before the listeners, so a check that cannot run (ICMP without CAP_NET_RAW)
  // stops startup before anything is served.
  const health = startHealth(edge.pools.values());
  healthOfEdge.set(edge, health);
  try {
    await edge.start();
  } catch (e) {
    health.stop();
    throw e;
  }
  return edge;
}

export function listeningLines(edge: Edge): string[] {
  return edge.config.listeners.map((l, i) =>
    `fulcrum: listening on ${l.tls ? "https" : "http"}://${formatHostPort({ host: l.bind.host, port: edge.ports[i] })} (${l.name})`);
}

/** Resolves when SIGINT or SIGTERM arrives, after the edge stopped. */
export function stopOnSignal(edge: Edge, extra: () => Promise<void> = async () => {}): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      healthOfEdge.get(edge)?.stop();
      await edge.stop();
      await extra();
      resolve();
    };
    runtime.onSignal("SIGINT", stop);
    runtime.onSignal("SIGTERM", stop);
  });
}
