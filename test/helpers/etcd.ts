// A real etcd (Debian etcd-server) for discovery tests: one member on two free loopback ports
// with its own data directory, started with a bounded wait, killed by PID, the directory removed.
// stop() and start() again keep the data directory and ports (etcd "restarted"). startLabEtcd
// runs one inside a lab namespace instead, for nodes in other namespaces of the lab.
import { rmSync } from "node:fs";
import process from "node:process";
import { runtime, type Child } from "../../src/runtime/index.ts";
import { freePort } from "./backends.ts";
import { EtcdClient } from "../../src/discovery/etcd-client.ts";
import type { Lab } from "./netns.ts";

export interface Etcd {
  url: string;
  client: EtcdClient;
  /** Kills the member (SIGKILL: etcd "went away"). */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a member that holds its connections open and answers nothing (as a
   * partition or a hung host looks to a client). */
  freeze(frozen: boolean): void;
  /** Kills it and removes its data. */
  remove(): Promise<void>;
  output(): string;
}

let counter = 0;

/** One etcd member serving clients on `clientUrl`, its peer port on `peerUrl`, data in `dir`. */
function etcdArgv(dir: string, clientUrl: string, peerUrl: string): string[] {
  return [
    "etcd", "--name", "t", "--data-dir", dir,
    "--listen-client-urls", clientUrl, "--advertise-client-urls", clientUrl,
    "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl,
    "--initial-cluster", `t=${peerUrl}`, "--log-level", "warn",
  ];
}

export interface EtcdOptions {
  /** Serve clients over TLS with this certificate and key (PEM files); `ca` is the PEM text
   * of the CA that signed them, for the helper's own client. */
  tls?: { certFile: string; keyFile: string; ca: string };
}

export async function startEtcd(options: EtcdOptions = {}): Promise<Etcd> {
  const scheme = options.tls ? "https" : "http";
  const extraArgs = options.tls ? ["--cert-file", options.tls.certFile, "--key-file", options.tls.keyFile] : [];
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dir = `/tmp/fulcrum-etcd-${runtime.name}-${Date.now()}-${counter++}`;
  const url = `${scheme}://127.0.0.1:${clientPort}`;
  const args = [...etcdArgv(dir, url, `http://127.0.0.1:${peerPort}`), ...extraArgs];
  let child: Child | null = null;
  let out = "";
  const drain = async (s: ReadableStream<Uint8Array>) => { const d = new TextDecoder(); for await (const c of s) out += d.decode(c); };
  const etcd: Etcd = {
    url,
    client: new EtcdClient({ endpoints: [url], ca: options.tls?.ca ?? null, username: null, password: null }),
    async start() {
      child = runtime.spawn(args);
      drain(child.stdout).catch(() => {});
      drain(child.stderr).catch(() => {});
      // Bounded: up to 15 s (a loaded 2-core machine) for the member to answer a read.
      for (let i = 0; i < 150; i++) {
        try {
          await etcd.client.get("/probe");
          return;
        } catch (e) {
          // With auth enabled an anonymous read is refused: the member is up.
          if ((e as { status?: number }).status) return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`etcd did not start within 15 s:\n${out}`);
    },
    async kill() {
      const c = child;
      child = null;
      if (!c) return;
      c.kill("SIGKILL");
      process.kill(c.pid, "SIGCONT"); // a frozen member dies only once it runs again
      await c.exited;
    },
    freeze(frozen: boolean) {
      if (child) process.kill(child.pid, frozen ? "SIGSTOP" : "SIGCONT");
    },
    async remove() {
      await etcd.kill();
      rmSync(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
  await etcd.start();
  return etcd;
}

/** etcd inside a lab node's namespace, serving the lab on the node's address (port 2379), its
 * peer port on the namespace's loopback. The test reaches it with etcdctl run in that namespace
 * (this process is outside every lab namespace). */
export interface LabEtcd {
  url: string;
  put(key: string, value: string): Promise<void>;
  get(key: string): Promise<string | null>;
  kill(): Promise<void>;
  start(): Promise<void>;
  remove(): Promise<void>;
  output(): string;
}

export async function startLabEtcd(lab: Lab, node: string): Promise<LabEtcd> {
  const dir = `/tmp/fulcrum-etcd-lab-${runtime.name}-${process.pid}-${counter++}`;
  const url = `http://${lab.node(node).ipv4}:2379`;
  const args = etcdArgv(dir, url, "http://127.0.0.1:2380");
  const etcdctl = (argv: string[]) => lab.exec(node, ["etcdctl", "--endpoints", url, "--command-timeout", "3s", ...argv]);
  let child: Child | null = null;
  let out = "";
  const drain = async (s: ReadableStream<Uint8Array>) => { const d = new TextDecoder(); for await (const c of s) out += d.decode(c); };
  const etcd: LabEtcd = {
    url,
    async put(key, value) {
      const r = await etcdctl(["put", key, value]);
      if (r.code !== 0) throw new Error(`etcdctl put ${key}: ${r.stderr.trim()}`);
    },
    async get(key) {
      const r = await etcdctl(["get", "--print-value-only", key]);
      if (r.code !== 0) throw new Error(`etcdctl get ${key}: ${r.stderr.trim()}`);
      return r.stdout === "" ? null : r.stdout.replace(/\n$/, "");
    },
    async start() {
      child = lab.spawn(node, args);
      drain(child.stdout).catch(() => {});
      drain(child.stderr).catch(() => {});
      // Bounded: up to 15 s (a loaded 2-core machine) for the member to answer.
      for (let i = 0; i < 30; i++) {
        if ((await etcdctl(["endpoint", "health"])).code === 0) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`etcd in ${node} did not start within 15 s:\n${out}`);
    },
    async kill() {
      const c = child;
      child = null;
      if (!c) return;
      c.kill("SIGKILL");
      await c.exited;
    },
    async remove() {
      await etcd.kill();
      rmSync(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
  await etcd.start();
  return etcd;
}
