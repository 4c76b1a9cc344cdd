// `fulcrum run`, `check` and `proxy`: each returns the process exit code.
import { runtime } from "../runtime/index.ts";
import { parseConfig } from "../config/load.ts";
import { formatConfigErrors } from "../config/errors.ts";
import { formatPath, validateConfig, type Config } from "../config/schema.ts";
import { flag, type ParsedArgs } from "./args.ts";
import { healthOf, listeningLines, startEdge, stopOnSignal } from "./serve.ts";
import { startVrrp, stopVrrpOnSignal } from "../vrrp/service.ts";

const DEFAULT_CONFIGS = ["fulcrum.yaml", "/etc/fulcrum/fulcrum.yaml"];

async function findConfig(args: ParsedArgs): Promise<string | null> {
  const given = flag(args, "config", "c") ?? runtime.env("FULCRUM_CONFIG");
  if (given) return given;
  for (const path of DEFAULT_CONFIGS) if (await runtime.exists(path)) return path;
  return null;
}

/** Loads and validates a config file; on any problem prints why and returns null. */
async function loadConfig(args: ParsedArgs): Promise<{ file: string; config: Config } | null> {
  const file = await findConfig(args);
  if (!file) {
    console.error([
      `fulcrum: no config file given, and none at ${DEFAULT_CONFIGS.join(" or ")}.`,
      "  Try the built-in demo:        fulcrum demo",
      "  Balance without a config:     fulcrum proxy --listen 127.0.0.1:8080 --to 127.0.0.1:9001,127.0.0.1:9002",
      "  Or write one (README.md, \"Configuration\") and run: fulcrum run --config fulcrum.yaml",
    ].join("\n"));
    return null;
  }
  let text: string;
  try {
    text = await runtime.readTextFile(file);
  } catch (e) {
    console.error(`fulcrum: cannot read config ${file}: ${(e as Error).message}`);
    return null;
  }
  const parsed = parseConfig(text, file);
  if (!parsed.ok) {
    console.error(formatConfigErrors(file, parsed.errors));
    console.error(`fulcrum: configuration ${file} has ${parsed.errors.length} error(s)`);
    return null;
  }
  return { file, config: parsed.config };
}

export async function check(args: ParsedArgs): Promise<number> {
  const loaded = await loadConfig(args);
  if (!loaded) return 2;
  console.log(`fulcrum: configuration ${loaded.file} is ok`);
  return 0;
}

export async function run(args: ParsedArgs): Promise<number> {
  const loaded = await loadConfig(args);
  if (!loaded) return 2;
  return serve(loaded.config);
}

async function serve(config: Config): Promise<number> {
  let edge;
  let vrrp;
  try {
    // A VRRP-only node (no listeners) runs no edge.
    edge = config.listeners.length > 0 ? await startEdge(config) : null;
    vrrp = await startVrrp(config.vrrp, edge ? healthOf(edge) : undefined);
  } catch (e) {
    await edge?.stop();
    console.error(`fulcrum: cannot start: ${(e as Error).message}`);
    return 1;
  }
  if (edge) for (const line of listeningLines(edge)) console.log(line);
  await Promise.all([edge && stopOnSignal(edge), vrrp && stopVrrpOnSignal(vrrp)]);
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
  const raw = {
    listeners: [{ name: "proxy", bind: listen }],
    pools: { proxy: { scheduler, servers: to.split(",").map((s) => s.trim()).filter(Boolean) } },
  };
  const result = validateConfig(raw);
  if (!result.ok) {
    const flagOf = (path: string) =>
      path.startsWith("listeners") ? "--listen" : path.includes("scheduler") ? "--scheduler" : "--to";
    for (const issue of result.issues) {
      const path = formatPath(issue.path);
      console.error(`fulcrum proxy: ${flagOf(path)}: ${issue.message}`);
    }
    return 2;
  }
  return serve(result.config);
}
