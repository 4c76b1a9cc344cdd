// Units → the Fulcrum YAML text. The assembled config goes through Fulcrum's own validator
// (src/control/schema.ts, what `fulcrum check` runs); a unit it refuses is left out and listed with
// the reason, until what remains passes. Each unit carries a comment naming its keepalived origin.
import { Document, isMap, isScalar, isSeq, type Node, visit } from "yaml";
import { formatPath } from "../../config/errors.ts";
import { validateConfig } from "../../control/schema.ts";
import type { Translation, Unit, Yaml } from "./units.ts";
import type { Untranslatable } from "./values.ts";

export interface Emitted {
  yaml: string;
  /** How many units made it into the YAML. */
  units: number;
}

export function emit(translation: Translation, source: string, out: Untranslatable): Emitted {
  let units = [...translation.units];
  // Each round leaves out at least one unit, so this ends.
  for (let round = 0; round <= translation.units.length; round++) {
    if (units.length === 0) break;
    const { raw, owners } = assemble(units);
    const result = validateConfig(raw);
    if (result.ok) return { yaml: render(raw, units, translation, source), units: units.length };
    const refused = new Map<Unit, string>();
    for (const issue of result.issues) {
      for (const owner of owners(issue.path)) {
        if (!refused.has(owner)) refused.set(owner, `${formatPath(issue.path)}: ${issue.message}`);
      }
    }
    for (const [unit, why] of refused) out.add(unit.origin, unit.title, `Fulcrum refuses its translation (${why}); left out`);
    units = units.filter((u) => !refused.has(u));
  }
  return { yaml: header(translation, source, ["Nothing in it could be translated (see the list on stderr)."]).map((l) => `#${l}`).join("\n") + "\n", units: 0 };
}

/** The raw config, and which units a key path belongs to: one, or for a problem of a whole section
 * (e.g. `routes` itself), every unit of it. */
function assemble(units: Unit[]): { raw: Yaml; owners: (path: (string | number)[]) => Unit[] } {
  const services = units.filter((u) => u.kind === "service");
  const instances = units.filter((u) => u.kind === "instance");
  const scripts = units.filter((u) => u.kind === "script");
  const groups = units.filter((u) => u.kind === "sync_group");
  const raw: Yaml = {};
  if (services.length > 0) {
    raw.listeners = services.map((u) => u.listener);
    const routes = services.map((u) => u.route).filter((r) => r !== null);
    if (routes.length > 0) raw.routes = routes;
    raw.pools = Object.fromEntries(services.map((u) => [u.pool, u.poolConfig]));
  }
  if (instances.length + scripts.length + groups.length > 0) {
    const vrrp: Yaml = {};
    if (scripts.length > 0) vrrp.scripts = Object.fromEntries(scripts.map((u) => [u.name, u.script]));
    vrrp.instances = instances.map((u) => u.instance);
    if (groups.length > 0) vrrp.sync_groups = Object.fromEntries(groups.map((u) => [u.name, u.group]));
    raw.vrrp = vrrp;
  }
  const one = (path: (string | number)[]): Unit | undefined => {
    const [section, key, item] = path;
    if (section === "listeners") return services[key as number];
    if (section === "routes") return services.filter((u) => u.route !== null)[key as number];
    if (section === "pools") return services.find((u) => u.pool === key);
    if (section !== "vrrp") return undefined;
    if (key === "instances") return instances[item as number];
    if (key === "scripts") return scripts.find((u) => u.name === item);
    if (key === "sync_groups") return groups.find((u) => u.name === item);
    return undefined;
  };
  const owners = (path: (string | number)[]): Unit[] => {
    const unit = one(path);
    if (unit) return [unit];
    return path[0] === "vrrp" ? [...instances, ...scripts, ...groups] : services;
  };
  return { raw, owners };
}

function header(translation: Translation, source: string, extra: string[] = []): string[] {
  return [` Translated from ${source} by fulcrum import keepalived.`, ...translation.notes.map((n) => ` ${n}`), ...extra.map((e) => ` ${e}`)];
}

function render(raw: Yaml, units: Unit[], translation: Translation, source: string): string {
  const doc = new Document(raw);
  const extra = units.some((u) => u.kind === "service")
    ? ["A listener on a virtual address binds only where the address is held, or with net.ipv4.ip_nonlocal_bind=1."]
    : [];
  doc.commentBefore = header(translation, source, extra).join("\n");
  // Lists of plain values read best on one line: [VI_1, VI_2].
  visit(doc, { Seq: (_, seq) => { if (seq.items.every(isScalar)) seq.flow = true; } });
  const from = (u: Unit) => ` ${u.origin.file}:${u.origin.line}: ${u.title}`;
  units.forEach((u) => {
    if (u.kind === "service") {
      const index = units.filter((x) => x.kind === "service").indexOf(u);
      comment(doc, ["listeners", index], from(u));
      comment(doc, ["pools", u.pool], from(u));
    } else if (u.kind === "instance") {
      comment(doc, ["vrrp", "instances", units.filter((x) => x.kind === "instance").indexOf(u)], from(u));
    } else if (u.kind === "script") {
      comment(doc, ["vrrp", "scripts", u.name], from(u));
    } else {
      comment(doc, ["vrrp", "sync_groups", u.name], from(u));
    }
  });
  return doc.toString({ lineWidth: 0 });
}

/** A comment line before the item at `path` (a sequence item, or a mapping key). */
function comment(doc: Document, path: (string | number)[], text: string): void {
  const parent = doc.getIn(path.slice(0, -1), true) as Node | undefined;
  const key = path[path.length - 1];
  if (isSeq(parent)) {
    const item = parent.items[key as number] as Node | undefined;
    if (item) item.commentBefore = text;
  } else if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === key);
    if (pair && isScalar(pair.key)) pair.key.commentBefore = text;
  }
}

/** Whether this Fulcrum takes a `protocol: tcp` listener naming its pool (the L4 socket proxy). */
export function acceptsTcpListeners(): boolean {
  const probe = {
    listeners: [{ name: "probe", bind: "127.0.0.1:1", protocol: "tcp", pool: "probe" }],
    pools: { probe: { servers: ["127.0.0.1:2"] } },
  };
  return validateConfig(probe).ok;
}
