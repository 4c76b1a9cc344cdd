// HTTP basic auth per route (RFC 7617) from an htpasswd file. bcrypt is slow by design, so a
// check that has to run it is asynchronous (src/edge/access/bcrypt.ts yields between slices),
// at most MAX_VERIFYING run at once with a bounded queue behind them, and each success is
// remembered (keyed by a hash of the file's version and the credentials, never the password
// itself) so a client's next requests cost one SHA-256.
import { createHash } from "node:crypto";
import { type Checker, type Mapping, type PathSegment, string } from "../../config/checker.ts";
import { readHtpasswd, shaMatches, type HtpasswdFile } from "./htpasswd.ts";
import { bcryptVerify } from "./bcrypt.ts";

export interface BasicAuthConfig {
  realm: string;
  file: HtpasswdFile;
}

const AUTH_KEYS = ["basic"] as const;
const BASIC_KEYS = ["realm", "htpasswd"] as const;
/** A realm goes into a quoted-string: no quotes, backslashes or control characters. */
const REALM = /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/;
/** Successful verifications remembered per route; the oldest is forgotten first. */
export const MAX_REMEMBERED = 10_000;
/** bcrypt checks running at once, and waiting behind them (more: 503, try again). */
export const MAX_VERIFYING = 4;
export const MAX_WAITING = 256;

/** `auth: { basic: { realm, htpasswd } }` of a route; the file is read (and checked) now, so a
 * reload reads it again. */
export function readRouteAuth(c: Checker, value: unknown, p: PathSegment[]): BasicAuthConfig | undefined {
  const m = c.mapping(value, p, "a mapping with basic");
  if (m === undefined) return undefined;
  c.checkKeys(m, p, AUTH_KEYS);
  const bp = [...p, "basic"];
  const basic = c.mapping(m.basic, bp, "a mapping with realm and htpasswd");
  if (basic === undefined) return undefined;
  c.checkKeys(basic, bp, BASIC_KEYS);
  const realm = c.required(basic, bp, "realm", string("a realm name")) ?? "";
  if (realm !== "" && !REALM.test(realm)) c.fail([...bp, "realm"], `expected a realm of printable characters without " or \\, got ${JSON.stringify(realm)}`);
  const path = c.required(basic, bp, "htpasswd", string("the path of an htpasswd file"));
  if (path === undefined) return undefined;
  const { file, errors } = readHtpasswd(path);
  for (const e of errors.slice(0, 10)) c.fail([...bp, "htpasswd"], e);
  return { realm, file };
}

/** Where a check stands: "ok", refused ("missing": no credentials; "wrong"), "busy" (too many
 * checks queued), or a bcrypt check under way. */
export type AuthCheck = "ok" | "missing" | "wrong" | "busy" | Promise<"ok" | "wrong">;

export class BasicAuth {
  readonly challenge: string;
  private readonly remembered = new Map<string, true>();
  private verifying = 0;
  private readonly waiting: (() => void)[] = [];
  /** Counters: checks that ran bcrypt, and those refused for the queue being full. */
  bcryptChecks = 0;
  busy = 0;

  constructor(readonly config: BasicAuthConfig) {
    this.challenge = `Basic realm="${config.realm}", charset="UTF-8"`;
  }

  /** Checks an Authorization header value (null: none sent). */
  check(header: string | null): AuthCheck {
    if (header === null) return "missing";
    const m = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
    if (m === null) return "missing";
    const key = createHash("sha256").update(this.config.file.version).update("\0").update(m[1]).digest("base64");
    if (this.remembered.has(key)) return "ok";
    let decoded: string;
    try {
      decoded = new TextDecoder().decode(Uint8Array.from(atob(m[1]), (ch) => ch.charCodeAt(0)));
    } catch {
      return "wrong"; // not base64 after all (a length no encoding makes)
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) return "wrong";
    const stored = this.config.file.users.get(decoded.slice(0, colon));
    const password = decoded.slice(colon + 1);
    if (!stored) return "wrong";
    if (stored.kind === "sha") return shaMatches(password, stored.digest) ? this.remember(key) : "wrong";
    if (this.verifying >= MAX_VERIFYING && this.waiting.length >= MAX_WAITING) { this.busy++; return "busy"; }
    return this.verify(key, password, stored.hash);
  }

  private async verify(key: string, password: string, hash: Parameters<typeof bcryptVerify>[1]): Promise<"ok" | "wrong"> {
    // A finished check hands its place to the next waiting one, so at most MAX_VERIFYING run.
    if (this.verifying >= MAX_VERIFYING) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.verifying++;
    this.bcryptChecks++;
    try {
      return await bcryptVerify(password, hash) ? this.remember(key) : "wrong";
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.verifying--;
    }
  }

  private remember(key: string): "ok" {
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(key, true);
    return "ok";
  }
}
