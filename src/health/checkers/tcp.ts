// TCP check (keepalived TCP_CHECK): the server is up when a connection opens within the timeout.
import net from "node:net";
import { fail, pass, socketErrorText, type CheckTarget, type Probe } from "../result.ts";

export function tcpProbe(target: CheckTarget): Probe {
  return (signal) => new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const done = (ok: boolean, detail: string) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(ok ? pass(detail) : fail(detail));
    };
    const onAbort = () => done(false, `TCP connect timed out ${signal.reason}`);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => done(true, "TCP connect ok"));
    socket.once("error", (e) => done(false, `TCP connect ${socketErrorText(e)}`));
  });
}
