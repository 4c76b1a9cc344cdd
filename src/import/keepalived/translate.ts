// The top level of a keepalived.conf → units of Fulcrum config: global_defs (what maps: the VRRP
// defaults), vrrp_script, vrrp_sync_group, vrrp_instance and virtual_server. Every other block is
// listed, with its file and line.
import type { Statement } from "./reader.ts";
import type { Translation, Unit, Yaml } from "./units.ts";
import { translateVirtualServer } from "./lvs.ts";
import { translateInstance, translateScript, translateSyncGroup, type VrrpDefaults } from "./vrrp.ts";
import { integerOf, timerMs, type Untranslatable, written } from "./values.ts";

/** global_defs keys that become defaults of every VRRP instance, as Fulcrum names them. */
const GLOBAL_GARP: Record<string, string> = {
  vrrp_garp_master_delay: "garp_master_delay",
  vrrp_garp_master_repeat: "garp_master_repeat",
  vrrp_garp_master_refresh: "garp_master_refresh",
  vrrp_garp_master_refresh_repeat: "garp_master_refresh_repeat",
};
const EMAIL = new Set(["notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout", "smtp_helo_name", "smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker"]);

/** Top-level blocks Fulcrum has nothing for, with what they are. */
const NOT_IN_FULCRUM: Record<string, string> = {
  virtual_server_group: "has no Fulcrum equivalent yet (the L4 packet director)",
  static_ipaddress: "has no Fulcrum equivalent (addresses held outside VRRP)",
  static_routes: "has no Fulcrum equivalent",
  static_rules: "has no Fulcrum equivalent",
  linkbeat_interfaces: "has no Fulcrum equivalent",
  vrrp_track_process: "has no Fulcrum equivalent",
  vrrp_track_file: "has no Fulcrum equivalent",
  track_file: "has no Fulcrum equivalent",
  garp_group: "has no Fulcrum equivalent",
  bfd_instance: "has no Fulcrum equivalent",
  SSL: "has no Fulcrum equivalent (SSL_GET services are not translated)",
};

export interface TranslateOptions {
  /** This Fulcrum takes `protocol: tcp` listeners (the L4 socket proxy), so TCP services translate too. */
  tcpListeners: boolean;
}

export function translate(statements: Statement[], out: Untranslatable, options: TranslateOptions): Translation {
  const units: Unit[] = [];
  const notes: string[] = [];
  const defaults = globalDefaults(statements.filter((s) => s.keyword === "global_defs"), notes, out);
  const binds = new Set<string>();
  for (const s of statements) {
    let unit: Unit | null = null;
    if (s.keyword === "global_defs") continue;
    else if (s.keyword === "vrrp_instance") unit = translateInstance(s, defaults, out);
    else if (s.keyword === "vrrp_script") unit = translateScript(s, out);
    else if (s.keyword === "vrrp_sync_group") unit = translateSyncGroup(s, out);
    else if (s.keyword === "virtual_server") unit = translateVirtualServer(s, out, binds, options.tcpListeners);
    else if (NOT_IN_FULCRUM[s.keyword]) out.add(s, written(s), NOT_IN_FULCRUM[s.keyword]);
    else out.add(s, written(s), "is not a keepalived keyword Fulcrum knows; left out");
    if (unit) units.push(unit);
  }
  followSyncGroupRules(units);
  return { units, notes };
}

/** keepalived ignores trackers with a weight on members of a sync group (they would let the members'
 * priorities drift apart); the translation leaves them out too. */
function followSyncGroupRules(units: Unit[]): void {
  const members = new Set(units.flatMap((u) => u.kind === "sync_group" && Array.isArray(u.group.group) ? u.group.group as string[] : []));
  const scriptWeight = new Map(units.flatMap((u) => u.kind === "script" ? [[u.name, Number(u.script.weight ?? 0)] as const] : []));
  for (const u of units) {
    if (u.kind !== "instance" || !members.has(u.instance.name as string)) continue;
    const weightOf = (t: unknown, key: string) =>
      typeof t === "string" ? (key === "script" ? scriptWeight.get(t) ?? 0 : 0) : Number((t as Yaml).weight ?? 0);
    for (const key of ["script", "interface"]) {
      const list = u.instance[`track_${key}`];
      if (!Array.isArray(list)) continue;
      const kept = list.filter((t) => weightOf(t, key) === 0);
      if (kept.length > 0) u.instance[`track_${key}`] = kept;
      else delete u.instance[`track_${key}`];
    }
  }
}

function globalDefaults(blocks: Statement[], notes: string[], out: Untranslatable): VrrpDefaults {
  const defaults: VrrpDefaults = { version: null, garp: {} };
  let emailListed = false;
  for (const k of blocks.flatMap((b) => b.block ?? [])) {
    const title = "global_defs";
    if (k.keyword === "router_id") {
      notes.push(`keepalived router_id ${k.args[0] ?? ""} (${k.file}:${k.line})`);
    } else if (k.keyword === "vrrp_version") {
      const v = integerOf(k.args[0]);
      if (v === 2 || v === 3) defaults.version = v;
      else out.add(k, title, `${written(k)}: expected 2 or 3`);
    } else if (GLOBAL_GARP[k.keyword]) {
      const value = k.keyword === "vrrp_garp_master_delay" || k.keyword === "vrrp_garp_master_refresh"
        ? (timerMs(k.args[0]) ?? NaN) / 1000
        : integerOf(k.args[0]);
      if (value === null || Number.isNaN(value)) out.add(k, title, `${written(k)}: expected a number`);
      else (defaults.garp as Yaml)[GLOBAL_GARP[k.keyword]] = value;
    } else if (k.keyword === "enable_script_security" || (k.keyword === "script_user" && k.args[0] === "root")) {
      // A load-time check of the scripts' ownership, and scripts run as root: what Fulcrum (root for VRRP) does.
      continue;
    } else if (EMAIL.has(k.keyword)) {
      if (!emailListed) out.add(k, title, `${k.keyword}: email alerts have no Fulcrum equivalent`);
      emailListed = true;
    } else {
      out.keyword(k, title);
    }
  }
  return defaults;
}
