// systemd's notify protocol (Type=notify-reload): READY=1 once serving, RELOADING=1 and READY=1
// around a reload, STOPPING=1 on the way out, each a datagram to $NOTIFY_SOCKET. Without that
// variable (not under systemd) nothing is sent. A failure to notify is logged once, never fatal.
import { runtime } from "../runtime/index.ts";
import { closeSocket, openSocket, sendTo } from "../ffi/socket.ts";
import { AF_UNIX, SOCK_DGRAM, sockaddrUn } from "../ffi/unix.ts";

let fd = -1;
let warned = false;

export function notifySystemd(state: string): Promise<void> {
  const path = runtime.env("NOTIFY_SOCKET");
  if (!path) return Promise.resolve();
  try {
    if (fd < 0) fd = openSocket(AF_UNIX, SOCK_DGRAM, 0);
    sendTo(fd, new TextEncoder().encode(state), sockaddrUn(path));
  } catch (e) {
    if (!warned) console.error(`fulcrum: cannot notify systemd at ${path}: ${(e as Error).message}`);
    warned = true;
    if (fd >= 0) { closeSocket(fd); fd = -1; }
  }
  return Promise.resolve();
}
