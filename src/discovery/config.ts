// The `discovery:` section and a pool's `discovery:` key. Today one kind, etcd:
//
//   discovery:
//     etcd: { endpoints: [http://127.0.0.1:2379], prefix: /fulcrum/, ca: FILE, username: U, password_file: FILE }
//   pools:
//     api: { scheduler: mh, discovery: etcd }    # servers from <prefix>pools/api/servers/<host:port>
import { type Checker, isMapping, type Mapping, type PathSegment, type Read, string, suggestion, valueOf } from "../config/checker.ts";

export interface EtcdConfig {
  endpoints: string[];
  /** Every key Fulcrum reads or writes starts with it; ends with "/". */
  prefix: string;
  /** A CA certificate file for https endpoints, or null. */
  caFile: string | null;
  username: string | null;
  passwordFile: string | null;
}

export interface DiscoveryConfig {
  etcd: EtcdConfig | null;
}

export const DISCOVERY_KINDS = ["etcd"] as const;
export type DiscoveryKind = (typeof DISCOVERY_KINDS)[number];

/** Pool keys discovery reads. */
export const POOL_DISCOVERY_KEYS = ["discovery"] as const;

const endpoint: Read<string> = (c, value, path) => {
  if (typeof value === "string") {
    try {
      const u = new URL(value);
      if ((u.protocol === "http:" || u.protocol === "https:") && u.pathname === "/" && !u.search) return value.replace(/\/+$/, "");
    } catch { /* reported below */ }
  }
  return c.expected(path, `an etcd client URL like "http://127.0.0.1:2379"`, value);
};

function readEtcd(c: Checker, value: unknown, p: PathSegment[]): EtcdConfig | null {
  const m = c.mapping(value, p, "a mapping with endpoints and prefix");
  if (!m) return null;
  c.checkKeys(m, p, ["endpoints", "prefix", "ca", "username", "password_file"]);
  const endpoints = c.list(valueOf(m, "endpoints"), [...p, "endpoints"], "a non-empty list of etcd client URLs")
    .map((e, i) => endpoint(c, e, [...p, "endpoints", i])).filter((e): e is string => e !== undefined);
  let prefix = c.optional(m, p, "prefix", string("a key prefix like \"/fulcrum/\""), "/fulcrum/");
  if (!prefix.endsWith("/")) prefix += "/";
  const username = c.optional(m, p, "username", string("an etcd user name"), null);
  const passwordFile = c.optional(m, p, "password_file", string("a file holding the etcd password"), null);
  if ((username === null) !== (passwordFile === null)) {
    const [given, absent] = username === null ? ["password_file", "username"] : ["username", "password_file"];
    c.fail([...p, given], `${given} needs ${absent} (they go together)`);
  }
  const caFile = c.optional(m, p, "ca", string("a CA certificate file (PEM)"), null);
  return { endpoints, prefix, caFile, username, passwordFile };
}

export function readDiscovery(c: Checker, value: unknown): DiscoveryConfig | null {
  if (value === undefined) return null;
  const p = ["discovery"];
  const m = c.mapping(value, p, "a mapping with etcd");
  if (!m) return null;
  c.checkKeys(m, p, DISCOVERY_KINDS);
  return { etcd: valueOf(m, "etcd") === undefined ? null : readEtcd(c, valueOf(m, "etcd"), [...p, "etcd"]) };
}

/** The source a pool's servers come from (null: only its `servers` list). `declared`: the kinds
 * the `discovery:` section configures. */
export function readPoolDiscovery(c: Checker, m: Mapping, p: PathSegment[], declared: readonly string[]): DiscoveryKind | null {
  const value = valueOf(m, "discovery");
  if (value === undefined) return null;
  const path = [...p, "discovery"];
  if (typeof value !== "string" || !(DISCOVERY_KINDS as readonly string[]).includes(value)) {
    const hint = typeof value === "string" ? suggestion(value, DISCOVERY_KINDS) : "";
    return c.expected(path, `one of ${DISCOVERY_KINDS.join(", ")}`, value, hint) ?? null;
  }
  if (!declared.includes(value)) return c.fail(path, `discovery: ${value} needs a discovery.${value} section`) ?? null;
  return value as DiscoveryKind;
}

export function declaredDiscoveryKinds(raw: Mapping): string[] {
  const d = valueOf(raw, "discovery");
  return isMapping(d) ? Object.keys(d).filter((k) => valueOf(d, k) !== undefined) : [];
}
