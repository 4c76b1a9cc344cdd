// The real peers the tests run beside Fulcrum (servers, clients, capture tools): the one table of
// Debian packages, the commands each provides and what needs them. `npm test` (scripts/test-all.ts)
// and `.ci/run` call provision(); tests ask test/helpers/peers.ts whether a peer is present.
// As root with apt, a missing package is installed; otherwise one line names what is missing and
// the tests that need it are skipped (failed under CI=true).
import { spawnSync } from "node:child_process";
import { accessSync, constants, readdirSync } from "node:fs";
import process from "node:process";

export interface PeerPackage {
  /** Debian package name. */
  readonly pkg: string;
  /** Commands it provides that the tests or benchmarks run by name. */
  readonly commands: readonly string[];
  /** The test files and benchmarks that need it. */
  readonly neededBy: readonly string[];
  /** A service Debian starts on install; stopped again, since the tests start their own. */
  readonly service?: string;
  /** Directories besides PATH that hold its commands, where `*` is one path segment (a
   * version): Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<version>/bin. */
  readonly dirs?: readonly string[];
}

export const PEERS = [
  { pkg: "nginx", commands: ["nginx"], service: "nginx", neededBy: ["test/l4-proxy-protocol.test.ts", "bench/l7.bench.ts", "bench/l4.bench.ts", "bench/health.bench.ts", "bench/health-churn.bench.ts"] },
  { pkg: "haproxy", commands: ["haproxy"], service: "haproxy", neededBy: ["test/l4-proxy-protocol.test.ts", "test/l4-proxy-v2-sni.test.ts", "bench/l7.bench.ts", "bench/l4.bench.ts"] },
  { pkg: "wrk", commands: ["wrk"], neededBy: ["bench/l7.bench.ts", "bench/health-churn.bench.ts"] },
  { pkg: "curl", commands: ["curl"], neededBy: ["tests that use curl as the reference client"] },
  { pkg: "nghttp2-client", commands: ["nghttp", "h2load"], neededBy: ["test/h2.test.ts", "bench/h2.bench.ts"] },
  { pkg: "openssl", commands: ["openssl"], neededBy: ["test/tls.test.ts", "test/l4-tls.test.ts", "test/health.test.ts (HTTPS check)"] },
  { pkg: "keepalived", commands: ["keepalived"], service: "keepalived", neededBy: ["test/vrrp-keepalived.test.ts", "bench/vrrp.bench.ts"] },
  { pkg: "iproute2", commands: ["ip", "tc"], neededBy: ["test/vrrp-*.test.ts", "test/health.test.ts (ICMP check)", "test/director-nat.test.ts", "the director's steering (tc, ip rule)"] },
  { pkg: "iputils-ping", commands: ["ping"], neededBy: ["test/vrrp-lab.test.ts", "test/vrrp-features.test.ts"] },
  { pkg: "tcpdump", commands: ["tcpdump"], neededBy: ["test/vrrp-lab.test.ts (unicast)", "test/vrrp-features.test.ts (tshark)"] },
  { pkg: "nftables", commands: ["nft"], neededBy: ["bench/director-lab.bench.ts (the kernel's NAT and DR, the peer)"] },
  { pkg: "tshark", commands: ["tshark"], neededBy: ["test/vrrp-features.test.ts (tshark)", "test/director-nat.test.ts (checksums)"] },
  { pkg: "etcd-server", commands: ["etcd"], service: "etcd", neededBy: ["test/discovery*.test.ts", "bench/etcd.bench.ts"] },
  { pkg: "etcd-client", commands: ["etcdctl"], neededBy: ["bench/etcd.bench.ts (the peer watcher)", "test/cluster-ecmp.test.ts", "bench/cluster.bench.ts"] },
  { pkg: "redis-server", commands: ["redis-server"], service: "redis-server", neededBy: ["test/l4-tcp.test.ts", "bench/l4.bench.ts"] },
  { pkg: "dnsmasq-base", commands: ["dnsmasq"], neededBy: ["test/l4-udp.test.ts", "bench/l4.bench.ts"] },
  { pkg: "dnsperf", commands: ["dnsperf"], neededBy: ["bench/l4.bench.ts"] },
  { pkg: "bind9-dnsutils", commands: ["dig"], neededBy: ["test/l4-udp.test.ts"] },
  { pkg: "python3", commands: ["python3"], neededBy: ["test/l4-tcp.test.ts (a listener that never accepts)"] },
  { pkg: "procps", commands: ["ps", "sysctl"], neededBy: ["test/health.test.ts (script and ICMP checks)"] },
  { pkg: "apache2-utils", commands: ["htpasswd"], neededBy: ["test/access.test.ts (bcrypt and SHA users made by htpasswd)"] },
  { pkg: "postgresql", commands: ["initdb", "postgres", "pgbench"], dirs: ["/usr/lib/postgresql/*/bin"], service: "postgresql", neededBy: ["test/l4-postgres.test.ts"] },
  { pkg: "postgresql-client", commands: ["psql"], neededBy: ["test/l4-postgres.test.ts"] },
  { pkg: "prometheus", commands: ["promtool", "prometheus"], service: "prometheus", neededBy: ["test/metrics.test.ts"] },
  { pkg: "chromium", commands: ["chromium"], neededBy: ["test/dashboard.test.ts", "scripts/dashboard-screenshot.ts"] },
] as const satisfies readonly PeerPackage[];

/** A command a test can ask for. */
export type PeerCommand = (typeof PEERS)[number]["commands"][number];

/** Whether `command` resolves on PATH to an executable file, as spawning it by name would. */
export function onPath(command: string, path = process.env.PATH ?? ""): boolean {
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      accessSync(`${dir}/${command}`, constants.X_OK);
      return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Executable files named `command` in `pattern`'s directories (`*` one segment, newest
 * version first: names compared as numbers where they are). */
function inDirs(command: string, pattern: string): string[] {
  let dirs = [""];
  for (const part of pattern.split("/").filter(Boolean)) {
    dirs = dirs.flatMap((d) => {
      if (part !== "*") return [`${d}/${part}`];
      try {
        return readdirSync(d || "/").sort((a, b) => b.localeCompare(a, "en", { numeric: true })).map((n) => `${d}/${n}`);
      } catch { return []; }
    });
  }
  return dirs.map((d) => `${d}/${command}`).filter((f) => {
    try { accessSync(f, constants.X_OK); return true; } catch { return false; }
  });
}

/** Where a peer command is: its package's own directories first (Debian's PostgreSQL programs
 * are off PATH), else its name, when it resolves on PATH; null when it is nowhere. */
export function findCommand(command: string): string | null {
  const pkg: PeerPackage | undefined = PEERS.find((p) => (p.commands as readonly string[]).includes(command));
  for (const pattern of pkg?.dirs ?? []) {
    const found = inDirs(command, pattern)[0];
    if (found) return found;
  }
  return onPath(command) ? command : null;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The package that provides a command. */
export function packageOf(command: PeerCommand): PeerPackage {
  return PEERS.find((p) => (p.commands as readonly string[]).includes(command))!;
}

/** Packages with a command not on PATH (of those providing `only`, when given). */
export function missingPackages(only?: readonly PeerCommand[]): PeerPackage[] {
  const wanted = (p: PeerPackage) => !only || p.commands.some((c) => (only as readonly string[]).includes(c));
  return PEERS.filter((p) => wanted(p) && p.commands.some((c) => findCommand(c) === null));
}

/** The files that need these packages, once each (the table's notes in parentheses left out). */
function neededBy(packages: readonly PeerPackage[]): string {
  return [...new Set(packages.flatMap((p) => p.neededBy.map((n) => n.replace(/ \(.*\)$/, ""))))].join(", ");
}

function dpkgInstalled(pkg: string): boolean {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("install ok installed");
}

/** Runs a command quietly; on failure returns its output, so the caller can show why. */
function quiet(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  return r.status === 0 ? null : `${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || String(r.error ?? "")).trim()}`;
}

/**
 * Installs the missing peers when it can (root and apt), saying so in one line; otherwise prints
 * one line naming what is missing and what needs it. Never throws: the tests report the rest.
 * Returns the packages still missing. `only`: just the packages of these commands (a benchmark's).
 */
export function provision(log: (line: string) => void = (l) => console.error(l), only?: readonly PeerCommand[]): PeerPackage[] {
  const outcome = process.env.CI === "true" ? "the tests that need them fail (CI=true)" : "the tests that need them are skipped";
  const missing = missingPackages(only);
  if (missing.length === 0) return [];
  const names = (ps: readonly PeerPackage[]) => ps.map((p) => p.pkg).join(" ");
  if (!isRoot() || !onPath("apt-get") || !onPath("dpkg-query")) {
    const why = isRoot() ? "no apt-get here" : "not root, so not installing";
    log(`test: missing ${names(missing)} (needed by ${neededBy(missing)}); ${why}: the tests that need them are skipped`);
    return missing;
  }
  // Installed but not on PATH (a PATH without /usr/sbin, say): installing again would not help.
  const toInstall = missing.filter((p) => !dpkgInstalled(p.pkg));
  if (toInstall.length > 0) {
    log(`test: installing ${names(toInstall)} (needed by ${neededBy(toInstall)})`);
    const failure = quiet("apt-get", ["update", "-qq"]) ??
      quiet("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...toInstall.map((p) => p.pkg)]);
    if (failure) log(`test: installing failed: ${failure}`);
    // Debian starts some services on install; the tests start their own on their own ports.
    for (const p of toInstall) if (p.service && onPath("service")) quiet("service", [p.service, "stop"]);
  }
  const still = missingPackages(only);
  if (still.length > 0) {
    const commands = still.flatMap((p) => p.commands.filter((c) => findCommand(c) === null));
    log(`test: ${commands.join(" ")} not on PATH (packages ${names(still)} ${toInstall.length ? "did not install" : "are installed"}); ${outcome}`);
  }
  return still;
}

if (import.meta.main) provision();
