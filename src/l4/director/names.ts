// Names for the kernels' numbers: drop and forward reasons, TCP states, lb kinds.
import * as L from "../../core/layout.ts";

export type LbKind = "nat" | "dr" | "tun" | "fullnat";
export const LB_KINDS: Record<LbKind, number> = {
  nat: L.KIND_NAT, dr: L.KIND_DR, tun: L.KIND_TUN, fullnat: L.KIND_FULLNAT,
};

/** Reason codes by name (the counters' keys), forwarded ones first. */
export const REASONS: Record<string, number> = {
  forward_in: L.R_FWD_IN, forward_out: L.R_FWD_OUT, forward_icmp_in: L.R_FWD_ICMP_IN,
  forward_icmp_out: L.R_FWD_ICMP_OUT, frag_needed_sent: L.R_FRAG_NEEDED,
  truncated: L.R_TRUNCATED, bad_l2: L.R_BAD_L2, bad_ip: L.R_BAD_IP, fragment: L.R_FRAGMENT,
  protocol: L.R_PROTO, bad_l4: L.R_BAD_L4, no_service: L.R_NO_SERVICE, not_syn: L.R_NOT_SYN,
  no_server: L.R_NO_SERVER, table_full: L.R_TABLE_FULL, no_local_port: L.R_NO_LPORT,
  needs_l2: L.R_NEED_L2, too_big: L.R_TOO_BIG, icmp_not_error: L.R_ICMP_NOT_ERROR,
  icmp_untracked: L.R_ICMP_UNTRACKED, icmp_bad: L.R_ICMP_BAD, dest_down: L.R_DEST_DOWN,
  not_ready: L.R_NOT_READY, bad_descriptor: L.R_BAD_DESC,
};
export const REASON_NAMES: string[] = [];
for (const [name, code] of Object.entries(REASONS)) REASON_NAMES[code] = name;

/** Table events counted beside the reasons (adopted: mid-flow TCP entries made without their SYN,
 * counted in created too). */
export const TABLE_COUNTERS: Record<string, number> = {
  created: L.C_CREATED, expired: L.C_EXPIRED, evicted: L.C_EVICTED, templates: L.C_TEMPLATES,
  refiled: L.C_REFILED, adopted: L.C_ADOPTED,
};

export const STATE_NAMES = [
  "NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT",
  "LAST_ACK", "LISTEN", "SYNACK", "UDP", "TEMPLATE",
] as const;
export type StateName = (typeof STATE_NAMES)[number];

/** IPVS's timeouts (seconds), each configurable. */
export const DEFAULT_TIMEOUTS: Partial<Record<StateName, number>> = {
  NONE: 2, ESTABLISHED: 900, SYN_SENT: 120, SYN_RECV: 60, FIN_WAIT: 120, TIME_WAIT: 120, CLOSE: 10,
  CLOSE_WAIT: 60, LAST_ACK: 30, LISTEN: 120, SYNACK: 120, UDP: 300,
};
