// keepalived's VRRP blocks (vrrp_instance, vrrp_script, vrrp_sync_group) → Fulcrum's `vrrp:`
// section (src/vrrp/config.ts reads it). Keys Fulcrum has are carried over as they are; the rest
// are listed.
import type { Statement } from "./reader.ts";
import type { Unit, Yaml } from "./units.ts";
import { blockWords, bool, integerOf, timerMs, type Untranslatable, written } from "./values.ts";

/** The global_defs keys that set defaults for every instance. */
export interface VrrpDefaults {
  version: number | null;
  /** garp_master_delay etc., as Fulcrum names them. */
  garp: Yaml;
}

const SAME_NAME_NUMBERS = [
  "virtual_router_id", "priority", "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
];
const NOTIFY = ["notify", "notify_master", "notify_backup", "notify_fault", "notify_stop"];
// Keys keepalived has for compatibility only, or whose effect Fulcrum has anyway.
const NO_EFFECT = new Set(["native_ipv6", "state", "preempt"]);

export function translateInstance(s: Statement, defaults: VrrpDefaults, out: Untranslatable): Unit | null {
  const name = s.args[0];
  const title = `vrrp_instance ${name ?? ""}`.trim();
  if (name === undefined) {
    out.add(s, title, "has no name; left out");
    return null;
  }
  const instance: Yaml = { name };
  const block = s.block ?? [];
  let version: number | null = null;
  let auth: Yaml | null = null;
  for (const k of block) {
    const [first] = k.args;
    if (NO_EFFECT.has(k.keyword)) continue;
    if (SAME_NAME_NUMBERS.includes(k.keyword)) {
      const n = integerOf(first);
      if (n === null) out.add(k, title, `${written(k)}: expected an integer`);
      else instance[k.keyword] = n;
    } else if (k.keyword === "interface") {
      instance.interface = first;
    } else if (k.keyword === "version") {
      version = integerOf(first);
    } else if (k.keyword === "advert_int") {
      const ms = timerMs(first);
      if (ms === null) out.add(k, title, `${written(k)}: expected seconds`);
      else instance.advert_int = ms / 1000;
    } else if (k.keyword === "preempt_delay") {
      const ms = timerMs(first);
      if (ms !== null) instance.preempt_delay = ms / 1000;
    } else if (k.keyword === "nopreempt") {
      instance.nopreempt = true;
    } else if (k.keyword === "virtual_ipaddress") {
      instance.virtual_ipaddress = virtualAddresses(k, instance.interface as string | undefined, title, out);
    } else if (k.keyword === "unicast_src_ip") {
      instance.unicast_src_ip = first;
    } else if (k.keyword === "unicast_peer") {
      instance.unicast_peer = (k.block ?? []).map((peer) => {
        if (peer.args.length > 0) out.add(peer, title, `unicast_peer ${written(peer)}: ${peer.args.join(" ")} has no Fulcrum equivalent`);
        return peer.keyword;
      });
    } else if (k.keyword === "authentication") {
      auth = authentication(k, title, out);
    } else if (k.keyword === "track_interface") {
      // keepalived tracks the instance's own interface anyway, and ignores it here (so does Fulcrum).
      const others = tracked(k, "interface", title, out).filter((t) => t !== instance.interface && (t as Yaml).interface !== instance.interface);
      if (others.length > 0) instance.track_interface = others;
    } else if (k.keyword === "track_script") {
      instance.track_script = tracked(k, "script", title, out);
    } else if (NOTIFY.includes(k.keyword)) {
      instance[k.keyword] = notifyCommand(k, title, out);
    } else if (k.keyword === "use_vmac") {
      if (first === undefined) instance.use_vmac = true;
      else if (k.args.length === 1 && !/^[0-9a-f]{2}(:[0-9a-f]{2}){4,5}$/i.test(first)) instance.use_vmac = first;
      else { instance.use_vmac = true; out.add(k, title, `${written(k)}: only the interface name carries over`); }
    } else if (k.keyword === "v3_checksum_as_v2") {
      instance.v3_checksum_as_v2 = bool(k) ?? true;
    } else {
      out.keyword(k, title);
    }
  }
  const ipv6 = Array.isArray(instance.virtual_ipaddress) && instance.virtual_ipaddress.some((a) => String(a).includes(":"));
  version ??= ipv6 ? null : defaults.version;
  if (version !== null) instance.version = version;
  if (auth !== null) {
    // keepalived ignores authentication with VRRPv3 (RFC 5798 has none); Fulcrum refuses it there.
    if ((version ?? (ipv6 ? 3 : 2)) === 2) instance.authentication = auth;
  }
  for (const [key, value] of Object.entries(defaults.garp)) instance[key] ??= value;
  return { kind: "instance", origin: s, title, instance };
}

/** `10.0.0.1/24 dev eth0 label eth0:1 ...`: the address carries over; options other than dev <interface> are listed. */
function virtualAddresses(s: Statement, iface: string | undefined, title: string, out: Untranslatable): string[] {
  const addresses: string[] = [];
  for (const entry of s.block ?? []) {
    const options = entry.args;
    const dev = options.indexOf("dev");
    if (dev >= 0 && options[dev + 1] !== iface) {
      out.add(entry, title, `virtual_ipaddress ${written(entry)}: an address on another interface than the instance's has no Fulcrum equivalent; left out`);
      continue;
    }
    const other = dev < 0 ? options : options.filter((_, i) => i !== dev && i !== dev + 1);
    if (other.length > 0) out.add(entry, title, `virtual_ipaddress ${written(entry)}: ${other.join(" ")} has no Fulcrum equivalent (the address is added without it)`);
    addresses.push(entry.keyword);
  }
  return addresses;
}

function authentication(s: Statement, title: string, out: Untranslatable): Yaml | null {
  const type = s.block?.findLast((k) => k.keyword === "auth_type")?.args[0];
  const pass = s.block?.findLast((k) => k.keyword === "auth_pass")?.args[0];
  if (type !== "PASS" || pass === undefined) {
    out.add(s, title, `authentication ${type ?? ""}: only auth_type PASS with an auth_pass has a Fulcrum equivalent`.replace("  ", " "));
    return null;
  }
  // keepalived uses the first 8 bytes (the advert carries 8).
  const bytes = new TextEncoder().encode(pass);
  return { auth_type: "PASS", auth_pass: new TextDecoder().decode(bytes.slice(0, 8)) };
}

/** track_interface / track_script entries: `NAME [weight W] [reverse|noreverse]`. */
function tracked(s: Statement, key: "interface" | "script", title: string, out: Untranslatable): unknown[] {
  return (s.block ?? []).map((entry) => {
    const weightAt = entry.args.indexOf("weight");
    const weight = weightAt >= 0 ? integerOf(entry.args[weightAt + 1]) : null;
    const rest = entry.args.filter((w, i) => (weightAt < 0 || (i !== weightAt && i !== weightAt + 1)) && w !== "noreverse");
    if (rest.length > 0) out.add(entry, title, `track_${key} ${written(entry)}: ${rest.join(" ")} has no Fulcrum equivalent`);
    return weight === null ? entry.keyword : { [key]: entry.keyword, weight };
  });
}

/** `notify_master "/path/script arg" [user [group]]`: the command; a user to run it as is listed. */
function notifyCommand(s: Statement, title: string, out: Untranslatable): string {
  if (s.args.length > 1) out.add(s, title, `${s.keyword}: running it as user ${s.args.slice(1).join(" ")} has no Fulcrum equivalent (it runs as Fulcrum's user)`);
  return s.args[0] ?? "";
}

export function translateScript(s: Statement, out: Untranslatable): Unit | null {
  const name = s.args[0];
  const title = `vrrp_script ${name ?? ""}`.trim();
  if (name === undefined) {
    out.add(s, title, "has no name; left out");
    return null;
  }
  const script: Yaml = {};
  for (const k of s.block ?? []) {
    if (k.keyword === "script") script.script = k.args.join(" ");
    else if (k.keyword === "interval" || k.keyword === "timeout") {
      const ms = timerMs(k.args[0]);
      if (ms === null) out.add(k, title, `${written(k)}: expected seconds`);
      else script[k.keyword] = ms / 1000;
    } else if (k.keyword === "weight" || k.keyword === "rise" || k.keyword === "fall") {
      const n = integerOf(k.args[0]);
      if (n === null) out.add(k, title, `${written(k)}: expected an integer`);
      else script[k.keyword] = n;
      if (k.keyword === "weight" && k.args.slice(1).some((w) => w === "reverse")) out.add(k, title, `${written(k)}: reverse has no Fulcrum equivalent`);
    } else out.keyword(k, title);
  }
  return { kind: "script", origin: s, title, name, script };
}

export function translateSyncGroup(s: Statement, out: Untranslatable): Unit | null {
  const name = s.args[0];
  const title = `vrrp_sync_group ${name ?? ""}`.trim();
  if (name === undefined) {
    out.add(s, title, "has no name; left out");
    return null;
  }
  const group: Yaml = {};
  for (const k of s.block ?? []) {
    if (k.keyword === "group") group.group = blockWords(k);
    else if (NOTIFY.includes(k.keyword)) group[k.keyword] = notifyCommand(k, title, out);
    else out.keyword(k, title);
  }
  return { kind: "sync_group", origin: s, title, name, group };
}
