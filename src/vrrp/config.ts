// The `vrrp:` config section, in keepalived's vocabulary: instances (vrrp_instance), scripts
// (vrrp_script) and sync groups (vrrp_sync_group). Validated with the config toolkit, so every
// problem names its key path, e.g. `vrrp.instances[0].priority: expected an integer 1..255, got 300`.
import {
  boolean, Checker, choice, FirstSeen, integer, isMapping, type Mapping, type PathSegment, type Read, reference, string,
  valueOf,
} from "../config/checker.ts";
import { parseDuration } from "../config/duration.ts";
import { type Family, formatIP, parseIP } from "./ip.ts";
import type { VirtualAddress } from "./addresses.ts";
import type { ChecksumMode } from "./packet.ts";

export interface TrackedInterface {
  name: string;
  /** 0: FAULT while the link is down; positive: added to the priority while up; negative: added while down (keepalived). */
  weight: number;
}
/** A pool of this file, tracked through its health checks: down while no server in it is healthy. */
export interface TrackedPool {
  name: string;
  /** As for interfaces: 0 is FAULT while down, otherwise added to the priority (keepalived's sense). */
  weight: number;
}
export interface TrackedScript {
  name: string;
  /** 0: FAULT while failing; negative: added while failing; positive: added while succeeding (keepalived). */
  weight: number;
}
export interface NotifyCommands {
  /** Run on every transition with: INSTANCE|GROUP name state priority (keepalived's `notify`). */
  any: string | null;
  master: string | null;
  backup: string | null;
  fault: string | null;
  stop: string | null;
}
export interface GarpSettings {
  /** A second burst this long after becoming master (0: none). */
  masterDelayMs: number;
  /** Packets per address in each burst. */
  masterRepeat: number;
  /** A burst this often while master (0: never). */
  refreshMs: number;
  refreshRepeat: number;
}
export interface VrrpInstanceConfig {
  name: string;
  interface: string;
  vrid: number;
  priority: number;
  version: 2 | 3;
  family: Family;
  intervalCs: number;
  addresses: VirtualAddress[];
  preempt: boolean;
  preemptDelayMs: number;
  unicastSource: Uint8Array | null;
  unicastPeers: Uint8Array[];
  /** v2 simple password, or null for no authentication. */
  authPass: string | null;
  checksumMode: ChecksumMode;
  trackInterfaces: TrackedInterface[];
  trackScripts: TrackedScript[];
  trackPools: TrackedPool[];
  notify: NotifyCommands;
  garp: GarpSettings;
  /** The macvlan interface carrying the virtual MAC, or null without use_vmac. */
  vmac: string | null;
}
export interface VrrpScriptConfig {
  name: string;
  /** Run with /bin/sh -c; exit 0 is success. */
  script: string;
  intervalMs: number;
  timeoutMs: number;
  weight: number;
  /** Successes in a row to count as up, failures in a row to count as down. */
  rise: number;
  fall: number;
}
export interface SyncGroupConfig {
  name: string;
  instances: string[];
  notify: NotifyCommands;
}
export interface VrrpConfig {
  instances: VrrpInstanceConfig[];
  scripts: VrrpScriptConfig[];
  syncGroups: SyncGroupConfig[];
}

const NOTIFY_KEYS = ["notify", "notify_master", "notify_backup", "notify_fault", "notify_stop"] as const;
const KEYS = {
  vrrp: ["instances", "scripts", "sync_groups"],
  instance: [
    "name", "interface", "virtual_router_id", "priority", "advert_int", "version", "virtual_ipaddress", "preempt",
    "nopreempt", "preempt_delay", "unicast_src_ip", "unicast_peer", "authentication", "track_interface", "track_script", "track_pool",
    ...NOTIFY_KEYS, "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
    "use_vmac", "v3_checksum_as_v2",
  ],
  authentication: ["auth_type", "auth_pass"],
  trackInterface: ["interface", "weight"],
  trackScript: ["script", "weight"],
  trackPool: ["pool", "weight"],
  script: ["script", "interval", "timeout", "weight", "rise", "fall"],
  syncGroup: ["group", ...NOTIFY_KEYS],
} as const;

const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/; // IFNAMSIZ - 1
const NAME = /^[A-Za-z0-9_.-]+$/;
const WEIGHT = integer(-253, 253);

/** The section, or null when the file has none. `poolNames` are the pools `track_pool` may name. */
export function readVrrp(c: Checker, value: unknown, poolNames: readonly string[] = []): VrrpConfig | null {
  if (value === undefined) return null;
  const path = ["vrrp"];
  const m = c.mapping(value, path, "a mapping with instances");
  if (m === undefined) return null;
  c.checkKeys(m, path, KEYS.vrrp);
  const scripts = readScripts(c, valueOf(m, "scripts"));
  const scriptNames = isMapping(m.scripts) ? Object.keys(m.scripts) : [];
  const instances = readInstances(c, valueOf(m, "instances"), scriptNames, scripts, poolNames);
  const instanceNames = Array.isArray(m.instances)
    ? m.instances.filter(isMapping).map((i) => i.name).filter((n): n is string => typeof n === "string")
    : [];
  const syncGroups = readSyncGroups(c, valueOf(m, "sync_groups"), instanceNames);
  return { instances, scripts, syncGroups };
}

// ---------------------------------------------------------------------------------- instances

function readInstances(
  c: Checker, value: unknown, scriptNames: string[], scripts: VrrpScriptConfig[], poolNames: readonly string[],
): VrrpInstanceConfig[] {
  const path = ["vrrp", "instances"];
  const instances: VrrpInstanceConfig[] = [];
  const names = new FirstSeen();
  const routers = new FirstSeen();
  c.list(value, path, "a non-empty list of VRRP instances").forEach((item, i) => {
    const p = [...path, i];
    const instance = readInstance(c, item, p, scriptNames, scripts, poolNames);
    if (instance === undefined) return;
    const nameTwice = names.check(instance.name, i);
    if (nameTwice !== undefined) {
      c.fail([...p, "name"], `expected a unique instance name, got ${JSON.stringify(instance.name)} again (vrrp.instances[${nameTwice}])`);
    }
    const router = `${instance.interface}/IPv${instance.family}/${instance.vrid}`;
    const routerTwice = routers.check(router, i);
    if (routerTwice !== undefined) {
      const message = `expected a virtual_router_id no other IPv${instance.family} instance on ${instance.interface} uses, ` +
        `got ${instance.vrid} again (vrrp.instances[${routerTwice}])`;
      c.fail([...p, "virtual_router_id"], message);
    }
    instances.push(instance);
  });
  return instances;
}

function readInstance(
  c: Checker, value: unknown, p: PathSegment[], scriptNames: string[], scripts: VrrpScriptConfig[], poolNames: readonly string[],
): VrrpInstanceConfig | undefined {
  const m = c.mapping(value, p, "a VRRP instance mapping with name, interface, virtual_router_id and virtual_ipaddress");
  if (m === undefined) return undefined;
  c.checkKeys(m, p, KEYS.instance);
  const name = c.required(m, p, "name", matching(NAME, "an instance name of letters, digits, \"_\", \".\" or \"-\""));
  const ifname = c.required(m, p, "interface", matching(INTERFACE_NAME, "an interface name of 1..15 characters"));
  const vrid = c.required(m, p, "virtual_router_id", integer(1, 255));
  const priority = c.optional(m, p, "priority", integer(1, 255), 100);
  const addresses = c.required(m, p, "virtual_ipaddress", virtualAddresses);
  const family: Family = addresses?.[0]?.family ?? 4;
  // keepalived's default: VRRPv2, except IPv6, which only v3 carries.
  const version = c.optional(m, p, "version", versionOf, family === 6 ? 3 : 2) as 2 | 3;
  if (version === 2 && family === 6) c.fail([...p, "version"], "expected 3 for IPv6 virtual addresses (VRRPv2 is IPv4 only), got 2");
  const intervalCs = c.optional(m, p, "advert_int", advertInterval(version), 100);

  const preempt = readPreempt(c, m, p);
  const preemptDelayMs = c.optional(m, p, "preempt_delay", seconds(0, 1000, "0..1000 seconds"), 0);
  const unicastSource = c.optional(m, p, "unicast_src_ip", address(family), null);
  const unicastPeers = c.optional(m, p, "unicast_peer", listOf("addresses", address(family)), []);
  const authPass = version === 2 ? c.optional(m, p, "authentication", authentication, null) : null;
  if (version === 3 && valueOf(m, "authentication") !== undefined) {
    c.fail([...p, "authentication"], "expected no authentication with version 3 (RFC 9568 removed it)", "key");
  }
  const checksumAsV2 = c.optional(m, p, "v3_checksum_as_v2", boolean, false);
  const useVmac = c.optional(m, p, "use_vmac", vmacName, null);
  return {
    name: name ?? "",
    interface: ifname ?? "",
    vrid: vrid ?? 0,
    priority,
    version,
    family,
    intervalCs,
    addresses: addresses ?? [],
    preempt,
    preemptDelayMs,
    unicastSource,
    unicastPeers,
    authPass,
    checksumMode: checksumAsV2 ? "v2-style" : "pseudo-header",
    trackInterfaces: c.optional(m, p, "track_interface", listOf("interfaces", trackedInterface), []),
    trackScripts: c.optional(m, p, "track_script", listOf("scripts", trackedScript(scriptNames, scripts)), []),
    trackPools: c.optional(m, p, "track_pool", listOf("pools", trackedPool(poolNames)), []),
    notify: readNotify(c, m, p),
    garp: {
      masterDelayMs: c.optional(m, p, "garp_master_delay", seconds(0, 1000, "0..1000 seconds"), 5000),
      masterRepeat: c.optional(m, p, "garp_master_repeat", integer(1, 255), 5),
      refreshMs: c.optional(m, p, "garp_master_refresh", seconds(0, 86_400, "0..86400 seconds"), 0),
      refreshRepeat: c.optional(m, p, "garp_master_refresh_repeat", integer(1, 255), 1),
    },
    vmac: useVmac === true ? `vrrp.${vrid ?? 0}` : useVmac === false ? null : useVmac,
  };
}

/** `preempt: true|false` or keepalived's `nopreempt: true`; both at odds is an error. */
function readPreempt(c: Checker, m: Mapping, p: PathSegment[]): boolean {
  const preempt = c.optional(m, p, "preempt", boolean, undefined);
  const nopreempt = c.optional(m, p, "nopreempt", boolean, undefined);
  if (preempt !== undefined && nopreempt !== undefined && preempt === nopreempt) {
    c.fail([...p, "nopreempt"], `expected nopreempt to be the opposite of preempt, got both ${preempt}`);
  }
  return nopreempt !== undefined ? !nopreempt : preempt ?? true;
}

function readNotify(c: Checker, m: Mapping, p: PathSegment[]): NotifyCommands {
  const command = string("a command line");
  return {
    any: c.optional(m, p, "notify", command, null),
    master: c.optional(m, p, "notify_master", command, null),
    backup: c.optional(m, p, "notify_backup", command, null),
    fault: c.optional(m, p, "notify_fault", command, null),
    stop: c.optional(m, p, "notify_stop", command, null),
  };
}

const versionOf: Read<number> = (c, value, path) =>
  value === 2 || value === 3 ? value : c.expected(path, "2 or 3", value);

/** Seconds as keepalived writes them (a number), or a duration string like "100ms"; in ms. */
function seconds(minS: number, maxS: number, what: string): Read<number> {
  return (c, value, path) => {
    const ms = typeof value === "number" ? value * 1000 : typeof value === "string" ? parseDuration(value) : null;
    if (ms === null || !Number.isFinite(ms) || ms < minS * 1000 || ms > maxS * 1000) {
      return c.expected(path, `${what} (a number of seconds or a duration like "500ms")`, value);
    }
    return Math.round(ms);
  };
}

/** v2 carries whole seconds 1..255; v3 carries centiseconds 1..4095 (10 ms .. 40.95 s). Result in centiseconds. */
function advertInterval(version: 2 | 3): Read<number> {
  return (c, value, path) => {
    const ms = typeof value === "number" ? value * 1000 : typeof value === "string" ? parseDuration(value) : null;
    if (version === 2) {
      if (ms !== null && ms % 1000 === 0 && ms >= 1000 && ms <= 255_000) return ms / 10;
      return c.expected(path, "whole seconds 1..255 with version 2", value);
    }
    const cs = ms === null ? NaN : Math.round(ms / 10);
    if (ms !== null && Math.abs(cs * 10 - ms) < 1e-6 && cs >= 1 && cs <= 4095) return cs;
    return c.expected(path, "0.01..40.95 seconds in steps of 0.01 with version 3", value);
  };
}

/** "10.0.0.1", "10.0.0.1/24", "2001:db8::1/64"; all of one family. A bare address is a host route (/32, /128). */
const virtualAddresses: Read<VirtualAddress[]> = (c, value, path) => {
  const items = c.list(value, path, "a non-empty list of addresses like \"10.0.0.10/24\"");
  const out: VirtualAddress[] = [];
  const seen = new FirstSeen();
  items.forEach((item, i) => {
    const p = [...path, i];
    const match = typeof item === "string" ? /^([^/]+)(?:\/(\d{1,3}))?$/.exec(item) : null;
    const parsed = match === null ? null : parseIP(match[1]);
    const max = parsed?.family === 6 ? 128 : 32;
    const prefixLength = match?.[2] === undefined ? max : Number(match[2]);
    if (parsed === null || prefixLength < 1 || prefixLength > max) {
      c.expected(p, "an IPv4 or IPv6 address, optionally with a prefix length like /24", item);
      return;
    }
    if (out.length > 0 && parsed.family !== out[0].family) {
      c.expected(p, `an IPv${out[0].family} address like the first one (one family per instance)`, item);
      return;
    }
    const twice = seen.check(formatIP(parsed.bytes), i);
    if (twice !== undefined) {
      c.fail(p, `expected each address once, got ${item} again ([${twice}])`);
      return;
    }
    out.push({ family: parsed.family, address: parsed.bytes, prefixLength, text: item as string });
  });
  if (out.length > 255) c.fail(path, `expected at most 255 addresses (one advert carries them), got ${out.length}`);
  return items.length === out.length && out.length > 0 ? out : undefined;
};

function address(family: Family): Read<Uint8Array> {
  return (c, value, path) => {
    const parsed = typeof value === "string" ? parseIP(value) : null;
    if (parsed !== null && parsed.family === family) return parsed.bytes;
    return c.expected(path, `an IPv${family} address like the virtual addresses`, value);
  };
}

function listOf<T>(what: string, readItem: Read<T>): Read<T[]> {
  return (c, value, path) => {
    const items = Array.isArray(value) ? value : [value];
    if (items.length === 0) return c.expected(path, `one or a list of ${what}`, value);
    const out = items.map((item, i) => readItem(c, item, Array.isArray(value) ? [...path, i] : path));
    return out.every((x) => x !== undefined) ? out as T[] : undefined;
  };
}

/** keepalived: `authentication { auth_type PASS; auth_pass secret }`; AH is not supported (nor by RFC 3768). */
const authentication: Read<string> = (c, value, path) => {
  const m = c.mapping(value, path, "a mapping with auth_type PASS and auth_pass");
  if (m === undefined) return undefined;
  c.checkKeys(m, path, KEYS.authentication);
  c.required(m, path, "auth_type", choice(["PASS"] as const));
  return c.required(m, path, "auth_pass", (c2, v, p2) =>
    typeof v === "string" && v.length >= 1 && new TextEncoder().encode(v).length <= 8
      ? v
      : c2.expected(p2, "a password of 1..8 bytes (the advert carries 8)", v));
};

const trackedInterface: Read<TrackedInterface> = (c, value, path) => {
  if (typeof value === "string") return INTERFACE_NAME.test(value) ? { name: value, weight: 0 } : c.expected(path, "an interface name", value);
  const m = c.mapping(value, path, "an interface name, or a mapping with interface and weight");
  if (m === undefined) return undefined;
  c.checkKeys(m, path, KEYS.trackInterface);
  const name = c.required(m, path, "interface", matching(INTERFACE_NAME, "an interface name of 1..15 characters"));
  const weight = c.optional(m, path, "weight", WEIGHT, 0);
  return name === undefined ? undefined : { name, weight };
};

function trackedScript(names: string[], scripts: VrrpScriptConfig[]): Read<TrackedScript> {
  const named = reference("vrrp script", names);
  const defaultWeight = (name: string) => scripts.find((s) => s.name === name)?.weight ?? 0;
  return (c, value, path) => {
    if (typeof value === "string") {
      const name = named(c, value, path);
      return name === undefined ? undefined : { name, weight: defaultWeight(name) };
    }
    const m = c.mapping(value, path, "a script name, or a mapping with script and weight");
    if (m === undefined) return undefined;
    c.checkKeys(m, path, KEYS.trackScript);
    const name = c.required(m, path, "script", named);
    if (name === undefined) return undefined;
    return { name, weight: c.optional(m, path, "weight", WEIGHT, defaultWeight(name)) };
  };
}

function trackedPool(names: readonly string[]): Read<TrackedPool> {
  const named = reference("pool", [...names]);
  return (c, value, path) => {
    if (typeof value === "string") {
      const name = named(c, value, path);
      return name === undefined ? undefined : { name, weight: 0 };
    }
    const m = c.mapping(value, path, "a pool name, or a mapping with pool and weight");
    if (m === undefined) return undefined;
    c.checkKeys(m, path, KEYS.trackPool);
    const name = c.required(m, path, "pool", named);
    return name === undefined ? undefined : { name, weight: c.optional(m, path, "weight", WEIGHT, 0) };
  };
}

/** `use_vmac: true` names the macvlan vrrp.<VRID> as keepalived does; a string names it. */
const vmacName: Read<string | boolean> = (c, value, path) => {
  if (typeof value === "boolean") return value;
  if (typeof value === "string" && INTERFACE_NAME.test(value)) return value;
  return c.expected(path, "true, false or an interface name for the virtual MAC interface", value);
};

function matching(re: RegExp, what: string): Read<string> {
  return (c, value, path) => typeof value === "string" && re.test(value) ? value : c.expected(path, what, value);
}

// ------------------------------------------------------------------------------------ scripts

function readScripts(c: Checker, value: unknown): VrrpScriptConfig[] {
  if (value === undefined) return [];
  const path = ["vrrp", "scripts"];
  const m = c.mapping(value, path, "a mapping of script name to script");
  if (m === undefined) return [];
  const out: VrrpScriptConfig[] = [];
  for (const [name, item] of Object.entries(m)) {
    const p = [...path, name];
    if (!NAME.test(name)) c.fail(p, `expected a script name of letters, digits, "_", "." or "-", got ${JSON.stringify(name)}`, "key");
    const s = typeof item === "string" ? { script: item } : c.mapping(item, p, "a command string, or a mapping with script");
    if (s === undefined) continue;
    if (typeof item !== "string") c.checkKeys(s, p, KEYS.script);
    const script = c.required(s, p, "script", string("a command line"));
    const intervalMs = c.optional(s, p, "interval", seconds(0.01, 86_400, "0.01..86400 seconds"), 1000);
    out.push({
      name,
      script: script ?? "",
      intervalMs,
      timeoutMs: c.optional(s, p, "timeout", seconds(0.01, 86_400, "0.01..86400 seconds"), intervalMs),
      weight: c.optional(s, p, "weight", WEIGHT, 0),
      rise: c.optional(s, p, "rise", integer(1, 1000), 1),
      fall: c.optional(s, p, "fall", integer(1, 1000), 1),
    });
  }
  return out;
}

// -------------------------------------------------------------------------------- sync groups

function readSyncGroups(c: Checker, value: unknown, instanceNames: string[]): SyncGroupConfig[] {
  if (value === undefined) return [];
  const path = ["vrrp", "sync_groups"];
  const m = c.mapping(value, path, "a mapping of group name to { group: [instances] }");
  if (m === undefined) return [];
  const out: SyncGroupConfig[] = [];
  const memberOf = new Map<string, string>();
  for (const [name, item] of Object.entries(m)) {
    const p = [...path, name];
    if (!NAME.test(name)) c.fail(p, `expected a group name of letters, digits, "_", "." or "-", got ${JSON.stringify(name)}`, "key");
    const g = c.mapping(item, p, "a mapping with group: [instance names]");
    if (g === undefined) continue;
    c.checkKeys(g, p, KEYS.syncGroup);
    const instances = c.required(g, p, "group", listOf("instance names", reference("VRRP instance", instanceNames))) ?? [];
    instances.forEach((instance, i) => {
      const other = memberOf.get(instance);
      if (other !== undefined) c.fail([...p, "group", i], `expected an instance in one sync group only, got ${instance} (already in ${other})`);
      memberOf.set(instance, name);
    });
    if (instances.length === 1) c.fail([...p, "group"], "expected two or more instances (a group of one syncs nothing)");
    out.push({ name, instances, notify: readNotify(c, g, p) });
  }
  return out;
}
