// What a reload does to the admin service: the new config's `admin:` section is prepared before
// the new generation starts (token file read, a changed bind opened beside the old one), so that
// anything wrong with it keeps the whole running configuration, and put in force once the new
// generation serves: a new token at once, the old listener closed after the requests on it.
import type { AdminConfig } from "./admin-config.ts";
import type { ControlState } from "./admin-state.ts";
import { AdminService } from "./admin.ts";

export interface AdminReload {
  /** The new generation serves: the new section takes effect; returns the service now running. */
  commit(): AdminService | null;
  /** The reload failed: what prepare opened is closed; the running service goes on as it was. */
  abort(): Promise<void>;
}

/** Throws with the reason when the new section cannot take effect (the reload then fails). */
export async function prepareAdminReload(running: AdminService | null, config: AdminConfig | null, state: ControlState): Promise<AdminReload> {
  if (!config) {
    return {
      commit: () => {
        if (running) { console.log("fulcrum: admin API closed (no admin section)"); void running.stopWhenIdle(); }
        return null;
      },
      abort: async () => {},
    };
  }
  if (!running) {
    const started = await AdminService.start(config, state);
    return {
      commit: () => { console.log(adminLine(started)); return started; },
      abort: () => started.stop(),
    };
  }
  const before = running.url, writable = running.config.tokenFile !== null;
  const change = await running.prepare(config);
  return {
    commit: () => {
      change.commit();
      if (running.url !== before || writable !== (config.tokenFile !== null)) console.log(adminLine(running));
      return running;
    },
    abort: () => change.abort(),
  };
}

/** The line that says where the admin API listens (tests and operators read it). */
export function adminLine(admin: AdminService): string {
  return `fulcrum: admin API on ${admin.url}${admin.config.tokenFile ? "" : " (read-only: no token_file)"}`;
}
