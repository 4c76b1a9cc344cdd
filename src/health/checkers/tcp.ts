// TCP check (keepalived TCP_CHECK): the server is up when a connection opens within the timeout.
import { pass, type CheckResult, type CheckTarget, type Probe } from "../result.ts";
import { CheckConnection, PlainConnector } from "./connection.ts";

const OK: CheckResult = pass("TCP connect ok");

export function tcpProbe(target: CheckTarget): Probe {
  const connector = new PlainConnector(target, "TCP");
  return async (deadline) => {
    const r = await connector.connect(deadline);
    if (!(r instanceof CheckConnection)) return r;
    r.destroy();
    return OK;
  };
}
