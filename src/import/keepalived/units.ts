// What a translation produces: units of Fulcrum config, each from one keepalived block, so a unit
// Fulcrum refuses can be left out (and listed) without losing the rest.
import type { Origin } from "./reader.ts";

export type Yaml = Record<string, unknown>;

interface UnitBase {
  origin: Origin;
  /** How the keepalived block reads in a message, e.g. "vrrp_instance VI_1". */
  title: string;
}

export type Unit =
  | UnitBase & { kind: "instance"; instance: Yaml }
  | UnitBase & { kind: "script"; name: string; script: Yaml }
  | UnitBase & { kind: "sync_group"; name: string; group: Yaml }
  /** A virtual_server served by a listener and its pool; an HTTP listener reaches its pool by a route. */
  | UnitBase & { kind: "service"; pool: string; listener: Yaml; route: Yaml | null; poolConfig: Yaml };

export interface Translation {
  units: Unit[];
  /** Lines for the head of the YAML (e.g. the router_id, which names the node). */
  notes: string[];
}
