// htpasswd files (Apache's format, `user:hash` per line): the bcrypt ($2y$, $2a$, $2b$) and SHA
// ({SHA}) forms are read; MD5 ($apr1$), crypt() and plain text are refused at config load with the
// file's line, since each is weak or (crypt) not portable.
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { blowfishInitialState, parseBcrypt, type BcryptHash } from "./bcrypt.ts";

export type StoredPassword = { kind: "bcrypt"; hash: BcryptHash } | { kind: "sha"; digest: string };

export interface HtpasswdFile {
  path: string;
  users: Map<string, StoredPassword>;
  /** SHA-256 of the file's bytes: cached verifications belong to one version of the file. */
  version: string;
}

const SHA1_BASE64 = /^[A-Za-z0-9+/]{27}=$/;

/** Reads and checks the file; errors name the line. */
export function readHtpasswd(path: string): { file: HtpasswdFile; errors: string[] } {
  const errors: string[] = [];
  const users = new Map<string, StoredPassword>();
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    errors.push(`cannot read htpasswd file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const where = `${path} line ${i + 1}`;
    const colon = line.indexOf(":");
    if (colon <= 0) { errors.push(`${where}: expected user:hash`); return; }
    const user = line.slice(0, colon), hash = line.slice(colon + 1);
    if (users.has(user)) { errors.push(`${where}: user ${JSON.stringify(user)} again`); return; }
    const stored = readHash(hash);
    if (typeof stored === "string") { errors.push(`${where} (user ${JSON.stringify(user)}): ${stored}`); return; }
    if (stored.kind === "bcrypt") blowfishInitialState(); // made now, not on the first request
    users.set(user, stored);
  });
  if (errors.length === 0 && users.size === 0) errors.push(`${path}: no users`);
  const version = createHash("sha256").update(text).digest("hex");
  return { file: { path, users, version }, errors };
}

function readHash(hash: string): StoredPassword | string {
  if (hash.startsWith("$2")) {
    const h = parseBcrypt(hash);
    return typeof h === "string" ? h : { kind: "bcrypt", hash: h };
  }
  if (hash.startsWith("{SHA}")) {
    const digest = hash.slice(5);
    return SHA1_BASE64.test(digest) ? { kind: "sha", digest } : "expected {SHA} and the base64 of a 20-byte SHA-1 digest";
  }
  const advice = "make the entry with htpasswd -B (bcrypt) or -s (SHA)";
  if (hash.startsWith("$apr1$")) return `$apr1$ (Apache MD5) hashes are not supported; ${advice}`;
  if (hash.startsWith("$")) return `${hash.split("$")[1] ? `$${hash.split("$")[1]}$` : "this"} hashes are not supported; ${advice}`;
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return `crypt() (DES) hashes are not supported; ${advice}`;
  return `not a bcrypt or {SHA} hash (plain text is not supported); ${advice}`;
}

/** {SHA}: base64 of SHA-1 of the password, compared without an early exit. */
export function shaMatches(password: string, digest: string): boolean {
  const mine = createHash("sha1").update(password, "utf8").digest("base64");
  let diff = mine.length ^ digest.length;
  for (let i = 0; i < mine.length && i < digest.length; i++) diff |= mine.charCodeAt(i) ^ digest.charCodeAt(i);
  return diff === 0;
}
