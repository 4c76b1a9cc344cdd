// `fulcrum register --pool api --address A --ttl 10s`: a backend puts itself in a pool through
// etcd under a lease it keeps alive, so when it dies (or this command does) the lease runs out
// and the server leaves every Fulcrum node's pool by itself. SIGINT/SIGTERM revoke the lease: the
// server leaves at once. etcd from --etcd (and --prefix, --ca, --username, --password-file) or
// from the config file's discovery.etcd section.
import { runtime } from "../runtime/index.ts";
import { Checker, integer } from "../config/checker.ts";
import { formatHostPort, hostPort } from "../config/address.ts";
import { parseDuration } from "../config/duration.ts";
import { loadConfigFile } from "../control/config-file.ts";
import type { EtcdConfig } from "../discovery/config.ts";
import { etcdClient } from "../discovery/service.ts";
import type { EtcdClient } from "../discovery/etcd-client.ts";
import { flag, type FlagSpec, type ParsedArgs } from "./args.ts";

export const REGISTER_FLAGS: FlagSpec[] = [
  { name: "pool", aliases: ["p"], value: "NAME", help: "the pool to join" },
  { name: "address", aliases: ["a"], value: "HOST:PORT", help: "this backend's address" },
  { name: "ttl", value: "DURATION", help: "how long the entry outlives this command (default 10s; whole seconds)" },
  { name: "weight", aliases: ["w"], value: "N", help: "the server's weight (default 1)" },
  { name: "etcd", value: "URL[,URL...]", help: "etcd endpoints (default: discovery.etcd of --config)" },
  { name: "prefix", value: "PREFIX", help: "the key prefix (default /fulcrum/)" },
  { name: "ca", value: "FILE", help: "a CA certificate for https endpoints" },
  { name: "username", value: "USER", help: "an etcd user (with --password-file)" },
  { name: "password-file", value: "FILE", help: "a file holding the etcd password" },
  { name: "config", aliases: ["c"], value: "FILE", help: "a config file with a discovery.etcd section" },
];

const fail = (message: string): number => { console.error(`fulcrum register: ${message}`); return 2; };

async function etcdConfig(args: ParsedArgs): Promise<EtcdConfig | null> {
  const endpoints = flag(args, "etcd");
  if (endpoints) {
    let prefix = flag(args, "prefix") ?? "/fulcrum/";
    if (!prefix.endsWith("/")) prefix += "/";
    return {
      endpoints: endpoints.split(",").map((e) => e.trim().replace(/\/+$/, "")).filter(Boolean),
      prefix, caFile: flag(args, "ca") ?? null,
      username: flag(args, "username") ?? null, passwordFile: flag(args, "password-file") ?? null,
    };
  }
  const loaded = await loadConfigFile(flag(args, "config", "c"));
  if (!loaded.ok) return null;
  if (!loaded.config.discovery?.etcd) { fail(`${loaded.file} has no discovery.etcd section (or give --etcd)`); return null; }
  return loaded.config.discovery.etcd;
}

export async function register(args: ParsedArgs): Promise<number> {
  const pool = flag(args, "pool", "p");
  if (!pool || !/^[A-Za-z0-9_.-]+$/.test(pool)) return fail("--pool NAME is required (letters, digits, _ . -)");
  const c = new Checker();
  const address = hostPort(true)(c, flag(args, "address", "a"), []);
  if (!address) return fail(`--address: ${c.issues[0].message}`);
  const ttlMs = parseDuration(flag(args, "ttl") ?? "10s");
  if (ttlMs === null || ttlMs < 1000 || ttlMs % 1000 !== 0) return fail("--ttl: expected whole seconds, at least 1s, like 10s");
  const weight = flag(args, "weight", "w") === undefined ? 1 : integer(0, 256)(c, Number(flag(args, "weight", "w")), []);
  if (weight === undefined) return fail(`--weight: ${c.issues[0].message}`);
  const config = await etcdConfig(args);
  if (!config) return 2;
  let client: EtcdClient;
  try {
    client = await etcdClient(config);
  } catch (e) {
    return fail((e as Error).message);
  }
  const key = `${config.prefix}pools/${pool}/servers/${formatHostPort(address)}`;
  const value = weight === 1 ? "" : JSON.stringify({ weight });
  return await keepRegistered(client, key, value, ttlMs / 1000);
}

/** Holds `key` under a live lease until SIGINT/SIGTERM; grants a new lease (and puts again) when
 * the old one ran out while etcd was unreachable. */
async function keepRegistered(client: EtcdClient, key: string, value: string, ttlS: number): Promise<number> {
  let stopping = false;
  let wake = () => {};
  const stop = () => { stopping = true; wake(); };
  runtime.onSignal("SIGINT", stop);
  runtime.onSignal("SIGTERM", stop);
  let lease: string | null = null;
  let unreachable = false;
  while (!stopping) {
    try {
      if (lease === null) {
        lease = await client.grantLease(ttlS);
        await client.put(key, value, lease);
        console.log(`fulcrum: registered ${key} (lease ${lease}, ttl ${ttlS}s)`);
      } else if (await client.keepAlive(lease) === 0) {
        console.error(`fulcrum: lease ${lease} had expired: registering again`);
        lease = null;
        continue;
      }
      if (unreachable) console.error("fulcrum: etcd answers again");
      unreachable = false;
    } catch (e) {
      if (!unreachable) console.error(`fulcrum: ${(e as Error).message}: retrying every ${Math.max(1, Math.floor(ttlS / 3))}s`);
      unreachable = true;
    }
    // A third of the TTL: two renewals may fail before the entry expires.
    await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, Math.max(1000, (ttlS * 1000) / 3)); });
  }
  if (lease !== null) {
    try {
      await client.revokeLease(lease);
      console.log(`fulcrum: deregistered ${key}`);
    } catch (e) {
      console.error(`fulcrum: could not revoke lease ${lease} (${(e as Error).message}): ${key} leaves when it expires`);
    }
  }
  return 0;
}
