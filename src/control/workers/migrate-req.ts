// SO_REUSEPORT's reload gap: a listening socket that closes resets the connections still in its
// accept queue, and a reload closes the old workers' sockets while the kernel has been sharing new
// connections with them. Linux 5.14+ hands such connections to another socket of the same port
// instead when net.ipv4.tcp_migrate_req is 1 (per network namespace). A supervisor with workers
// turns it on where it may (root), and says so; where it may not, it says what a reload risks.
import { readFileSync, writeFileSync } from "node:fs";

const PATH = "/proc/sys/net/ipv4/tcp_migrate_req";

/** What was done, for the log (null: it was on already, or the kernel has no such setting). */
export function enableMigrateReq(path = PATH): string | null {
  let now: string;
  try {
    now = readFileSync(path, "utf8").trim();
  } catch {
    return null; // before Linux 5.14: nothing to turn on
  }
  if (now !== "0") return null;
  try {
    writeFileSync(path, "1\n");
    return "set net.ipv4.tcp_migrate_req=1 (was 0): a reload hands connections queued at the old workers to the new ones";
  } catch (e) {
    return `could not set net.ipv4.tcp_migrate_req=1 (${(e as { code?: string }).code ?? (e as Error).message}): a reload may reset connections queued at the old workers; set it as root`;
  }
}
