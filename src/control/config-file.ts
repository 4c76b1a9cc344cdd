// Finding and loading the config file: --config, then $FULCRUM_CONFIG, then the default paths.
// Problems are printed with their file position and key path (the caller exits 2, or a reload
// keeps the running generation).
import { runtime } from "../runtime/index.ts";
import { parseConfigText, type Config } from "./schema.ts";

export const DEFAULT_CONFIGS = ["fulcrum.yaml", "/etc/fulcrum/fulcrum.yaml"];

export type Loaded = { ok: true; file: string; config: Config; text: string } | { ok: false; errors: string[] };

export async function findConfig(given: string | undefined): Promise<string | null> {
  const path = given ?? runtime.env("FULCRUM_CONFIG");
  if (path) return path;
  for (const p of DEFAULT_CONFIGS) if (await runtime.exists(p)) return p;
  return null;
}

/** Loads and validates a config file; on any problem prints why (every error, one per line). */
export async function loadConfigFile(given: string | undefined): Promise<Loaded> {
  const file = await findConfig(given);
  if (!file) {
    const message = `fulcrum: no config file given, and none at ${DEFAULT_CONFIGS.join(" or ")}.`;
    console.error([
      message,
      "  Try the built-in demo:        fulcrum demo",
      "  Balance without a config:     fulcrum proxy --listen 127.0.0.1:8080 --to 127.0.0.1:9001,127.0.0.1:9002",
      "  Or write one (README.md, \"Configuration\") and run: fulcrum run --config fulcrum.yaml",
    ].join("\n"));
    return { ok: false, errors: [message] };
  }
  let text: string;
  try {
    text = await runtime.readTextFile(file);
  } catch (e) {
    const message = `fulcrum: cannot read config ${file}: ${(e as Error).message}`;
    console.error(message);
    return { ok: false, errors: [message] };
  }
  const parsed = parseConfigText(text, file);
  if (!parsed.ok) {
    console.error(parsed.message);
    console.error(`fulcrum: configuration ${file} has ${parsed.errors.length} error(s)`);
    return { ok: false, errors: parsed.message.split("\n") };
  }
  return { ok: true, file, config: parsed.config, text };
}
