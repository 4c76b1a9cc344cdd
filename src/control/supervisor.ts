// The supervisor owns the process: it alone handles signals and the order in which a generation
// starts and stops. SIGINT and SIGTERM stop it cleanly; SIGHUP (every nginx and HAProxy
// operator's reload reflex) must never end the process.
import { runtime } from "../runtime/index.ts";
import { Generation } from "./generation.ts";
import type { Config } from "./schema.ts";
import { ControlState } from "./admin-state.ts";
import { AdminService } from "./admin.ts";

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
  let control: ControlState, admin: AdminService | null = null;
  try {
    generation = await Generation.build(config);
    await generation.start();
    control = new ControlState(generation, options.file);
    admin = await startAdmin(config, control, generation);
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
  control.phase = "live";
  await options.ready?.(generation);
  await stopSignal;
  control.phase = "draining";
  await admin?.stop();
  await generation.stop();
  await options.stopped?.();
  return 0;
}

/** The admin service when the config has an admin section; printed before the listening lines, so
 * a watcher that waits for those can use it. If it cannot start, the generation is stopped. */
async function startAdmin(config: Config, control: ControlState, generation: Generation): Promise<AdminService | null> {
  if (!config.admin) return null;
  try {
    await control.checksumFile((path) => runtime.readTextFile(path));
    const admin = await AdminService.start(config.admin, control);
    console.log(`fulcrum: admin API on ${admin.url}${config.admin.tokenFile ? "" : " (read-only: no token_file)"}`);
    return admin;
  } catch (e) {
    await generation.stop();
    throw e;
  }
}
