// nginx as a real server on a node of a namespace lab: one process (no master), so stopping its
// PID stops the server, with its files in `dir`.
import { writeFileSync } from "node:fs";
import type { Child } from "../../src/runtime/index.ts";
import type { Lab } from "./netns.ts";

/** Starts nginx on `node` serving `server` (the inside of an nginx `server { }` block); `http`:
 * lines for the http block (log_format); `connections`: how many it may hold open. */
export function spawnLabNginx(
  lab: Lab, node: string, dir: string, server: string, { http = "", connections = 256 }: { http?: string; connections?: number } = {},
): Child {
  writeFileSync(`${dir}/nginx.conf`, `worker_processes 1;
master_process off;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${connections}; }
http {
  access_log off;
${http}  server {
${server}
  }
}
`);
  return lab.spawn(node, ["nginx", "-p", dir, "-c", `${dir}/nginx.conf`]);
}
