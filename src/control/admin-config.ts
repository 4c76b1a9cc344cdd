// The `admin:` section: where the admin API (and /metrics) listens and the file holding the bearer
// token every write needs. Without the section there is no admin listener at all.
import { type Checker, type PathSegment, string } from "../config/checker.ts";
import { formatHostPort, type HostPort, hostPort } from "../config/address.ts";
import { runtime } from "../runtime/index.ts";

export interface AdminConfig {
  bind: HostPort;
  /** Read once at start; null: the API is read-only (every write is refused). */
  tokenFile: string | null;
}

export const ADMIN_KEYS = ["bind", "token_file"] as const;
export const DEFAULT_ADMIN_BIND: HostPort = { host: "127.0.0.1", port: 9901 };

/** 127.0.0.0/8, ::1 and localhost: only this host can reach them. */
export function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === "::1" || host.toLowerCase() === "localhost";
}

export function readAdmin(c: Checker, value: unknown): AdminConfig | null {
  if (value === undefined) return null;
  const p: PathSegment[] = ["admin"];
  const m = c.mapping(value, p, "a mapping with bind and token_file");
  if (m === undefined) return null;
  c.checkKeys(m, p, ADMIN_KEYS);
  const bind = c.optional(m, p, "bind", hostPort(false), DEFAULT_ADMIN_BIND);
  const tokenFile = c.optional(m, p, "token_file", string("a file path"), null);
  if (tokenFile === null && !isLoopback(bind.host)) {
    c.fail([...p, "bind"], `expected a loopback address (127.0.0.1, ::1) when no token_file is set, got ${JSON.stringify(formatHostPort(bind))}: anyone who can reach it could drain servers`);
  }
  return { bind, tokenFile };
}

/** The bearer token in `token_file` (null without one); throws with the reason when the file
 * cannot be read or does not hold exactly one token. Read at start and at every reload. */
export async function readAdminToken(config: AdminConfig): Promise<string | null> {
  if (!config.tokenFile) return null;
  let token: string;
  try {
    token = (await runtime.readTextFile(config.tokenFile)).trim();
  } catch (e) {
    throw new Error(`admin: cannot read token_file ${config.tokenFile}: ${(e as Error).message}`);
  }
  if (token === "" || /\s/.test(token)) throw new Error(`admin: token_file ${config.tokenFile} must hold one token (no spaces), got ${token === "" ? "an empty file" : "several words"}`);
  return token;
}
