// `fulcrum run`, `check` and `proxy`: each turns its arguments into a config and hands it to the
// control plane (src/control/); each returns the process exit code.
import process from "node:process";
import { runtime } from "../runtime/index.ts";
import { formatPath } from "../config/errors.ts";
import { loadConfigFile } from "../control/config-file.ts";
import { validateConfig } from "../control/schema.ts";
import { supervise } from "../control/supervisor.ts";
import { flag, type ParsedArgs } from "./args.ts";
import { directorRefusal } from "../l4/director/config.ts";
import { Checker } from "../config/checker.ts";
import { readWorkers, workerCount } from "../control/workers/config.ts";

export async function check(args: ParsedArgs): Promise<number> {
  const loaded = await loadConfigFile(flag(args, "config", "c"));
  if (!loaded.ok) return 2;
  console.log(`fulcrum: configuration ${loaded.file} is ok`);
  return 0;
}

export async function run(args: ParsedArgs): Promise<number> {
  const loaded = await loadConfigFile(flag(args, "config", "c"));
  if (!loaded.ok) return 2;
  // Half a config must not start: virtual servers asked for and not served would be a silent outage.
  const refusal = directorRefusal(loaded.config.virtualServers);
  if (refusal !== null) {
    console.error(refusal);
    return 1;
  }
  const workers = workersFromEnv();
  if (workers === null) return 2;
  return supervise(loaded.config, { file: loaded.file, pidFile: flag(args, "pid-file"), text: loaded.text, workers });
}

/** $FULCRUM_WORKERS, which overrides the file's `workers:` and `fulcrum proxy`'s default (a
 * container sized at run time; the test suite's choice): the count, undefined when unset, null
 * (said why) when it is not a workers value. */
function workersFromEnv(): number | undefined | null {
  const fromEnv = runtime.env("FULCRUM_WORKERS");
  if (fromEnv === undefined || fromEnv === "") return undefined;
  const c = new Checker(), value = readWorkers(c, /^\d+$/.test(fromEnv) ? Number(fromEnv) : fromEnv, []);
  if (value === undefined) { console.error(`fulcrum: FULCRUM_WORKERS=${fromEnv}: ${c.issues[0].message}`); return null; }
  return workerCount(value);
}

/** `reload --pid-file FILE`: checks the config as the running process will read it, then sends
 * it SIGHUP (as `nginx -t && nginx -s reload`). 0: sent; 2: the config has errors (nothing sent);
 * 1: no such process. The running process logs how the reload went. */
export async function reload(args: ParsedArgs): Promise<number> {
  const pidFile = flag(args, "pid-file");
  if (!pidFile) {
    console.error("fulcrum reload: --pid-file is required: the file `fulcrum run --pid-file` wrote");
    return 2;
  }
  const loaded = await loadConfigFile(flag(args, "config", "c"));
  if (!loaded.ok) { console.error("fulcrum reload: not reloading: the running configuration stays"); return 2; }
  let pid: number;
  try {
    pid = Number((await runtime.readTextFile(pidFile)).trim());
  } catch (e) {
    console.error(`fulcrum reload: cannot read ${pidFile}: ${(e as Error).message}`);
    return 1;
  }
  if (!Number.isInteger(pid) || pid <= 1) { console.error(`fulcrum reload: ${pidFile} holds no process id`); return 1; }
  try {
    process.kill(pid, "SIGHUP");
  } catch (e) {
    console.error(`fulcrum reload: cannot signal process ${pid}: ${(e as Error).message}`);
    return 1;
  }
  console.log(`fulcrum: asked process ${pid} to reload ${loaded.file}`);
  return 0;
}

/** `proxy --listen ADDR --to A,B [--scheduler NAME]`: a balancer with no config file. */
export async function proxy(args: ParsedArgs): Promise<number> {
  const listen = flag(args, "listen", "from", "l") ?? "127.0.0.1:8080";
  const to = flag(args, "to", "t");
  if (!to) {
    console.error("fulcrum proxy: --to is required: the servers to balance, e.g. --to 127.0.0.1:9001,127.0.0.1:9002");
    return 2;
  }
  const scheduler = flag(args, "scheduler", "s") ?? "wrr";
  const workers = flag(args, "workers", "w");
  const raw = {
    listeners: [{ name: "proxy", bind: listen }],
    pools: { proxy: { scheduler, servers: to.split(",").map((s) => s.trim()).filter(Boolean) } },
    ...(workers === undefined ? {} : { workers: /^\d+$/.test(workers) ? Number(workers) : workers }),
  };
  const result = validateConfig(raw);
  if (!result.ok) {
    const flagOf = (path: string) =>
      path.startsWith("listeners") ? "--listen" : path.includes("scheduler") ? "--scheduler" : path === "workers" ? "--workers" : "--to";
    for (const issue of result.issues) {
      const path = formatPath(issue.path);
      console.error(`fulcrum proxy: ${flagOf(path)}: ${issue.message}`);
    }
    return 2;
  }
  // An explicit --workers wins over $FULCRUM_WORKERS.
  const fromEnv = workers === undefined ? workersFromEnv() : undefined;
  if (fromEnv === null) return 2;
  return supervise(result.config, { file: null, raw, workers: fromEnv });
}
