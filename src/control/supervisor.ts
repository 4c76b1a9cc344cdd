// The supervisor owns the process: it alone handles signals and the order in which a generation
// starts and stops. SIGINT and SIGTERM stop it cleanly; SIGHUP (every nginx and HAProxy
// operator's reload reflex) must never end the process.
import { runtime } from "../runtime/index.ts";
import { Generation } from "./generation.ts";
import type { Config } from "./schema.ts";

export interface SuperviseOptions {
  /** The config file, for messages; null when the config came from flags (`fulcrum proxy`). */
  file: string | null;
  /** Runs once the generation serves (the demo prints its spread here). */
  ready?: (generation: Generation) => Promise<void> | void;
  /** Runs after the generation stopped (the demo stops its backends). */
  stopped?: () => Promise<void> | void;
  /** Stop right after `ready` instead of waiting for a signal (`fulcrum demo --once`). */
  once?: boolean;
}

/** Starts a generation for `config` and serves until SIGINT or SIGTERM. Returns the exit code:
 * 0 after a clean stop, 1 when it could not start. */
export async function supervise(config: Config, options: SuperviseOptions): Promise<number> {
  let generation: Generation;
  try {
    generation = await Generation.build(config);
    await generation.start();
  } catch (e) {
    console.error(`fulcrum: cannot start: ${(e as Error).message}`);
    await options.stopped?.();
    return 1;
  }
  // Handlers first, then the lines that tell a watcher the process is ready for signals.
  const stopSignal = options.once ? Promise.resolve() : new Promise<void>((resolve) => {
    runtime.onSignal("SIGINT", () => resolve());
    runtime.onSignal("SIGTERM", () => resolve());
    runtime.onSignal("SIGHUP", () => {
      const what = options.file ? ` ${options.file}` : "";
      console.log(`fulcrum: SIGHUP: reload is not available yet; still serving the configuration${what} of generation ${generation.id}`);
    });
  });
  for (const line of generation.listeningLines()) console.log(line);
  await options.ready?.(generation);
  await stopSignal;
  await generation.stop();
  await options.stopped?.();
  return 0;
}
