// AF_UNIX datagram addresses (sockaddr_un): what systemd's $NOTIFY_SOCKET is. A leading "@"
// names the abstract namespace (a NUL first byte), as systemd writes it.
const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export { AF_UNIX };

export function sockaddrUn(path: string): Uint8Array {
  const name = new TextEncoder().encode(path.startsWith("@") ? `\0${path.slice(1)}` : path);
  if (name.length > 107) throw new Error(`unix socket path too long: ${path}`);
  // An abstract name is exactly its bytes; a path is NUL-terminated.
  const out = new Uint8Array(2 + name.length + (path.startsWith("@") ? 0 : 1));
  new DataView(out.buffer).setUint16(0, AF_UNIX, true);
  out.set(name, 2);
  return out;
}
