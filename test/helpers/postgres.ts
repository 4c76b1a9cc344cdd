// A real PostgreSQL server for the L4 tests: initdb into a temp directory, then `postgres` on a
// loopback port with its unix socket in that directory, ended by its PID (SIGINT: a fast
// shutdown, which ends the sessions still open). PostgreSQL refuses to run as root, so as root
// both run as `nobody` through setpriv (util-linux), which execs: the PID is the server's own.
import { chownSync } from "node:fs";
import process from "node:process";
import { findCommand } from "../../scripts/provision.ts";
import { exec } from "./netns.ts";
import { type Peer, startPeer, tempDir } from "./l4.ts";

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

/** argv run as the unprivileged user when the tests run as root. */
function asServerUser(argv: string[]): string[] {
  return asRoot ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", ...argv] : argv;
}

function command(name: "initdb" | "postgres" | "pgbench" | "psql"): string {
  const found = findCommand(name);
  if (!found) throw new Error(`${name} not found (Debian package postgresql)`);
  return found;
}

/** The database to connect to, as a libpq connection string (a bounded connect). */
function conninfo(extra: string): string {
  return `dbname=postgres connect_timeout=5 ${extra}`;
}

/** psql's argv for one command string against 127.0.0.1:port (`extra`: more connection keys). */
export function psqlCommand(port: number, sql: string, extra = ""): string[] {
  return [command("psql"), "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", conninfo(extra), "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql];
}

/** Runs one psql command string against 127.0.0.1:port; the rows unaligned, `|` between fields. */
export async function psql(port: number, sql: string, extra = ""): Promise<string> {
  const r = await exec(psqlCommand(port, sql, extra), 20_000);
  if (r.code !== 0) throw new Error(`psql on port ${port} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** pgbench against 127.0.0.1:port, bounded by `timeoutMs`; its exit code and output. */
export async function pgbench(port: number, args: string[], timeoutMs = 60_000): Promise<{ code: number; output: string }> {
  const r = await exec([command("pgbench"), "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", ...args, conninfo("")], timeoutMs);
  return { code: r.code, output: r.stdout + r.stderr };
}

/** The temp directory for the servers: their data directories and unix sockets. */
export function postgresDir(): string {
  const dir = tempDir("postgres");
  if (asRoot) chownSync(dir, NOBODY, NOBODY); // the server's user writes its data and socket here
  return dir;
}

/** One cluster made by initdb in `dir`, copied for each server (initdb once: ~1.5 s). */
export async function initdb(dir: string): Promise<string> {
  const data = `${dir}/template`;
  const r = await exec(asServerUser([command("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]), 60_000);
  if (r.code !== 0) throw new Error(`initdb exited ${r.code}: ${r.stderr.trim()}`);
  return data;
}

/** PostgreSQL on 127.0.0.1:port from a copy of `template`, ready when psql gets an answer. */
export async function startPostgres(dir: string, template: string, port: number, name: string): Promise<Peer> {
  const data = `${dir}/${name}`;
  const copy = await exec(asServerUser(["cp", "-a", template, data]));
  if (copy.code !== 0) throw new Error(`copying the cluster failed: ${copy.stderr.trim()}`);
  const peer = await startPeer(asServerUser([command("postgres"), "-D", data, "-p", String(port), "-k", dir,
    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", `cluster_name=${name}`, "-c", "max_connections=40"]),
  port, async () => (await psql(port, "select 1")) === "1", 20_000);
  return {
    ...peer,
    async stop() {
      peer.child.kill("SIGINT"); // fast shutdown: open sessions are ended
      const t = setTimeout(() => peer.child.kill("SIGKILL"), 10_000);
      await peer.child.exited;
      clearTimeout(t);
    },
  };
}
