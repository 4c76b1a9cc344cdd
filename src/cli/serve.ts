// Starting the edge from a validated config, and stopping it cleanly on a signal.
import { runtime } from "../runtime/index.ts";
import type { Config } from "../config/schema.ts";
import { formatHostPort } from "../config/schema.ts";
import { createDataPlane } from "../core/wasm.ts";
import { Edge } from "../edge/edge.ts";

export async function startEdge(config: Config): Promise<Edge> {
  const dp = await createDataPlane({ seed: config.hashSeed });
  const edge = new Edge(config, dp);
  await edge.start();
  return edge;
}

export function listeningLines(edge: Edge): string[] {
  return edge.config.listeners.map((l, i) =>
    `fulcrum: listening on http://${formatHostPort({ host: l.bind.host, port: edge.servers[i].port })} (${l.name})`);
}

/** Resolves when SIGINT or SIGTERM arrives, after the edge stopped. */
export function stopOnSignal(edge: Edge, extra: () => Promise<void> = async () => {}): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      await edge.stop();
      await extra();
      resolve();
    };
    runtime.onSignal("SIGINT", stop);
    runtime.onSignal("SIGTERM", stop);
  });
}
