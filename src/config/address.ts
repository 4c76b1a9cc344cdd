// Addresses as the config writes them: "host:port", "[v6]:port", ":port" (binds only). Every part
// that names a server or a bind reads them with these, so one spelling means one thing everywhere.
import type { Read } from "./checker.ts";

/** Host without brackets, even for IPv6. */
export interface HostPort {
  host: string;
  port: number;
}

const HOST_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const IPV6_HOST = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?$/;
const BIND_FORMS = `"host:port", "[ipv6]:port" or ":port" with port 1..65535`;
const ADDRESS_FORMS = `"host:port" or "[ipv6]:port" with port 1..65535`;

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** Parses "host:port", "[v6]:port" and (when no host is required) ":port", which binds 0.0.0.0. */
export function parseHostPort(text: string, hostRequired: boolean): HostPort | null {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (match === null) return null;
  const [, bracketed, plain, portText] = match;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  if (bracketed !== undefined) return IPV6_HOST.test(bracketed) ? { host: bracketed, port } : null;
  if (plain === "") return hostRequired ? null : { host: "0.0.0.0", port };
  return HOST_NAME.test(plain) ? { host: plain, port } : null;
}

/** Reads a server address (hostRequired) or a bind address. */
export function hostPort(hostRequired: boolean): Read<HostPort> {
  const what = hostRequired ? ADDRESS_FORMS : BIND_FORMS;
  return (c, value, path) =>
    (typeof value === "string" ? parseHostPort(value, hostRequired) : null) ?? c.expected(path, what, value);
}
