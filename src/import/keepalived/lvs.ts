// keepalived's virtual_server (LVS) → a Fulcrum listener and pool on the same address and port.
// A TCP service whose real servers are checked over HTTP (HTTP_GET) is an HTTP service: an HTTP
// listener, its route and the pool. Any other TCP service (a database, TLS) needs a `protocol: tcp`
// listener, which only a Fulcrum with the L4 socket proxy takes; without it the service is left out.
// LVS forwards packets, so what rests on that (DR and TUN forwarding, fwmark services, UDP) is listed.
import { formatHostPort } from "../../config/address.ts";
import { isChecker, translateCheckers } from "./checkers.ts";
import type { Statement } from "./reader.ts";
import type { Unit, Yaml } from "./units.ts";
import { integerOf, last, type Untranslatable, written } from "./values.ts";

/** keepalived's lb_algo / lvs_sched → Fulcrum's scheduler, and what differs when it is only the nearest. */
const SCHEDULERS: Record<string, { scheduler: string; differs?: string }> = {
  rr: { scheduler: "rr" },
  wrr: { scheduler: "wrr" },
  lc: { scheduler: "lc" },
  wlc: { scheduler: "wlc" },
  sed: { scheduler: "sed" },
  nq: { scheduler: "nq" },
  sh: { scheduler: "sh" },
  mh: { scheduler: "mh" },
  twos: { scheduler: "two" },
  // Destination hashing and locality: LVS keys on the destination address, which behind one
  // listener is always the same; the request URI is the HTTP destination.
  dh: { scheduler: "dh", differs: "hashes the destination address in LVS; translated as dh over the request URI" },
  lblc: { scheduler: "lblc", differs: "keys on the destination address in LVS; translated as lblc over the request URI" },
  lblcr: { scheduler: "lblcr", differs: "keys on the destination address in LVS; translated as lblcr over the request URI" },
  // Weighted failover: the available server of highest weight. `first` with the servers in weight order is that.
  fo: { scheduler: "first" },
  // Overflow: the highest weight server until its active connections exceed its weight.
  ovf: { scheduler: "first", differs: "translated as first with max_conns = weight (Fulcrum counts requests in flight, not connections)" },
};

const NO_EFFECT = new Set(["inhibit_on_failure", "delay_loop", "connect_timeout", "retry", "delay_before_retry", "warmup", "alpha", "virtualhost"]);

export function translateVirtualServer(s: Statement, out: Untranslatable, usedBinds: Set<string>, tcpListeners: boolean): Unit | null {
  const title = written(s);
  const block = s.block ?? [];
  const [address, portWord] = s.args;
  if (address === "fwmark" || address === "group") {
    out.add(s, title, `a ${address} service has no Fulcrum equivalent yet (the L4 packet director); left out`);
    return null;
  }
  const port = integerOf(portWord);
  if (address === undefined || port === null || port < 1 || port > 65535) {
    out.add(s, title, "a virtual_server without a port (all ports, persistent) has no Fulcrum equivalent; left out");
    return null;
  }
  const protocol = last(block, "protocol")?.args[0]?.toUpperCase() ?? "TCP";
  if (protocol !== "TCP") {
    out.add(last(block, "protocol")!, title, `protocol ${protocol} has no Fulcrum equivalent yet (the L4 socket proxy); left out`);
    return null;
  }
  const realServers = block.filter((k) => k.keyword === "real_server");
  const checkers = realServers.flatMap((rs) => (rs.block ?? []).filter(isChecker));
  const tls = checkers.some((c) => c.keyword === "SSL_GET");
  const http = !tls && checkers.some((c) => c.keyword === "HTTP_GET");
  if (!http && !tcpListeners) {
    const why = tls ? "a TLS service (SSL_GET checks)" : "a TCP service without HTTP_GET checks";
    out.add(s, title, `${why} needs the L4 socket proxy, which this Fulcrum has not; left out`);
    return null;
  }
  const bind = formatHostPort({ host: address, port });
  if (usedBinds.has(bind)) {
    out.add(s, title, `a second virtual_server on ${bind}; left out`);
    return null;
  }
  usedBinds.add(bind);
  const name = `vs_${address.replace(/[^A-Za-z0-9]/g, "_")}_${port}`;
  const pool: Yaml = {};

  const kind = last(block, "lb_kind", "lvs_method");
  const method = kind?.args[0]?.toUpperCase() ?? "NAT";
  if (method !== "NAT") {
    const served = http ? "an HTTP listener and pool" : "a TCP listener and pool";
    out.add(kind!, title, `${kind!.keyword} ${method} has no Fulcrum equivalent yet (the L4 packet director); served as ${served}`);
  }

  const algo = last(block, "lb_algo", "lvs_sched");
  const algorithm = algo?.args[0] ?? "wlc"; // ipvsadm's default scheduler
  const mapped = SCHEDULERS[algorithm];
  if (mapped === undefined) {
    out.add(algo!, title, `${written(algo!)} has no Fulcrum equivalent; the pool uses wlc`);
    pool.scheduler = "wlc";
  } else {
    pool.scheduler = mapped.scheduler;
    if (mapped.differs) out.add(algo!, title, `${written(algo!)} ${mapped.differs}`);
  }

  const servers = realServers.map((rs) => realServer(rs, port, title, out)).filter((x): x is NonNullable<typeof x> => x !== null);
  if (servers.length === 0) {
    out.add(s, title, "has no real_server Fulcrum can use; left out");
    usedBinds.delete(bind);
    return null;
  }
  if (algorithm === "fo" || algorithm === "ovf") servers.sort((a, b) => Number(b.yaml.weight ?? 1) - Number(a.yaml.weight ?? 1));
  if (algorithm === "ovf") for (const server of servers) server.yaml.max_conns = Number(server.yaml.weight ?? 1);
  if (servers.some((x) => x.yaml.max_conns !== undefined)) {
    // LVS refuses a connection when every server is over its threshold; Fulcrum would queue it.
    pool.queue = { size: 0, timeout: "1s" };
  }

  for (const k of block) {
    const [first] = k.args;
    if (k.keyword === "persistence_timeout") {
      const seconds = first === undefined ? 360 : integerOf(first);
      if (seconds === null) out.add(k, title, `${written(k)}: expected seconds`);
      else pool.persistence_timeout = `${seconds}s`;
    } else if (k.keyword === "persistence_granularity" && first !== "255.255.255.255") {
      out.add(k, title, `${written(k)} has no Fulcrum equivalent (persistence is per client address)`);
    } else if (k.keyword === "sorry_server") {
      const sorryPort = integerOf(k.args[1]) ?? port;
      if (first !== undefined) pool.sorry_server = formatHostPort({ host: first, port: sorryPort });
    } else if (k.keyword === "quorum") {
      quorum(k, servers.map((x) => Number(x.yaml.weight ?? 1)), pool, title, out);
    } else if (k.keyword === "hysteresis" && first === "0") {
      continue;
    } else if (["real_server", "protocol", "lb_kind", "lvs_method", "lb_algo", "lvs_sched", "persistence_granularity"].includes(k.keyword)) {
      continue;
    } else if (!NO_EFFECT.has(k.keyword)) {
      out.keyword(k, title);
    }
  }

  const checks = servers.map((x) => x.checks);
  const first = JSON.stringify(checks[0]);
  servers.forEach((x, i) => {
    if (JSON.stringify(checks[i]) !== first) {
      out.add(x.origin, title, `real_server ${x.yaml.address}: its checks differ from the first real server's; Fulcrum checks all servers of a pool alike, with the first one's checks`);
    }
  });
  if (checks[0].length > 0) pool.health = checks[0].length === 1 ? checks[0][0] : checks[0];
  pool.servers = servers.map((x) => x.yaml);
  return {
    kind: "service",
    origin: s,
    title,
    pool: name,
    listener: http ? { name, bind } : { name, bind, protocol: "tcp", pool: name },
    route: http ? { listeners: [name], pool: name } : null,
    poolConfig: pool,
  };
  function realServer(rs: Statement, vsPort: number, vsTitle: string, issues: Untranslatable) {
    const [host, rsPortWord] = rs.args;
    const rsPort = integerOf(rsPortWord) ?? vsPort;
    if (host === undefined) {
      issues.add(rs, vsTitle, "a real_server without an address; left out");
      return null;
    }
    const yaml: Yaml = { address: formatHostPort({ host, port: rsPort }) };
    const rsTitle = `${vsTitle}: real_server ${written(rs).slice("real_server ".length)}`;
    for (const k of rs.block ?? []) {
      const n = integerOf(k.args[0]);
      if (k.keyword === "weight") {
        if (n === null) issues.add(k, rsTitle, `${written(k)}: expected an integer`);
        else if (n > 256) { issues.add(k, rsTitle, `${written(k)}: Fulcrum's weights are 0..256; set to 256`); yaml.weight = 256; }
        else yaml.weight = n;
      } else if (k.keyword === "uthreshold") {
        if (n !== null && n > 0) yaml.max_conns = n;
      } else if (k.keyword === "lvs_method" && (k.args[0] ?? "").toUpperCase() !== method) {
        issues.add(k, rsTitle, `${written(k)} has no Fulcrum equivalent yet (the L4 packet director)`);
      } else if (isChecker(k) || NO_EFFECT.has(k.keyword) || k.keyword === "lvs_method") {
        continue;
      } else {
        issues.keyword(k, rsTitle);
      }
    }
    // LVS takes a server out only on its health checks, never on failed traffic.
    yaml.max_fails = 0;
    const checks = translateCheckers(rs, {
      levels: [block, rs.block ?? []],
      serverHost: host,
      serverPort: rsPort,
      ipv6: host.includes(":"),
      virtualhost: last(rs.block, "virtualhost")?.args[0] ?? last(block, "virtualhost")?.args[0] ?? null,
      title: rsTitle,
    }, issues);
    return { yaml, checks, origin: rs as Statement };
  }
}

/** keepalived's quorum is a total weight of live servers, Fulcrum's a number of servers up. */
function quorum(s: Statement, weights: number[], pool: Yaml, title: string, out: Untranslatable): void {
  const wanted = integerOf(s.args[0]);
  if (wanted === null || wanted < 1) {
    out.add(s, title, `${written(s)}: expected a positive integer`);
    return;
  }
  if (weights.every((w) => w === 1)) {
    if (wanted <= weights.length) {
      if (wanted > 1) pool.quorum = wanted;
      return;
    }
    out.add(s, title, `${written(s)}: more than the ${weights.length} servers can reach; left at ${weights.length}`);
    pool.quorum = weights.length;
    return;
  }
  const mean = weights.reduce((a, b) => a + b, 0) / weights.length;
  const servers = Math.min(weights.length, Math.max(1, Math.ceil(wanted / Math.max(mean, 1))));
  out.add(s, title, `${written(s)}: keepalived counts the weight of live servers, Fulcrum counts servers; set to ${servers} of ${weights.length}`);
  if (servers > 1) pool.quorum = servers;
}

