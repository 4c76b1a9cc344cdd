// What the edge checks before a matched request goes to its pool, the same for HTTP/1.1 and
// HTTP/2: the listener's allow/deny, the route's, the route's basic auth (403, 401), then the
// route's own answer (redirect, respond). Unlike nginx's `return`, which runs before its access
// checks, a redirect or respond route answers only clients its rules let in.
import type { DataPlane } from "../../core/dataplane.ts";
import type { EdgeConfig, RouteConfig } from "../config.ts";
import type { ExchangeClient } from "../http1/exchange.ts";
import type { RequestHead } from "../../http1/request-head.ts";
import type { RouteStats } from "../stats.ts";
import { AccessList, type AccessRules } from "./acl.ts";
import { BasicAuth } from "./basic-auth.ts";
import { actionAnswer, type LocalAnswer } from "../route-actions.ts";
import { type Admission, LocalExchange } from "../local-answer.ts";

export type { Admission };

const FORBIDDEN: LocalAnswer = {
  status: 403, headers: [["content-type", "text/plain; charset=utf-8"], ["x-fulcrum-error", "denied"]],
  body: "403 Forbidden: the access rules do not let this address in\n", error: "denied",
};
const BUSY: LocalAnswer = {
  status: 503, headers: [["content-type", "text/plain; charset=utf-8"], ["x-fulcrum-error", "auth_busy"], ["retry-after", "1"]],
  body: "503 Service Unavailable: too many password checks under way\n", error: "auth_busy",
};

function unauthorized(challenge: string): LocalAnswer {
  return {
    status: 401, headers: [["content-type", "text/plain; charset=utf-8"], ["x-fulcrum-error", "unauthorized"], ["www-authenticate", challenge]],
    body: "401 Unauthorized\n", error: "unauthorized",
  };
}


/** A generation's access rules, compiled (LPM tables in the data plane, htpasswd users). */
export class EdgeAccess {
  private readonly listeners = new Map<string, AccessList>();
  private readonly routes = new Map<RouteConfig, { acl: AccessList | null; auth: BasicAuth | null }>();

  /** `dp` holds the prefix tables; rules without one are an error, never skipped. */
  constructor(config: EdgeConfig, dp: DataPlane | null) {
    const list = (what: string, rules: AccessRules) => {
      if (!dp) throw new Error(`${what}: allow/deny needs the data plane`);
      return new AccessList(dp, rules);
    };
    for (const l of config.listeners) if (l.access) this.listeners.set(l.name, list(`listener ${l.name}`, l.access));
    for (const r of config.routes) {
      if (!r.access && !r.auth) continue;
      this.routes.set(r, { acl: r.access ? list(`route ${r.name}`, r.access) : null, auth: r.auth ? new BasicAuth(r.auth) : null });
    }
  }

  /** Decides what happens to a request `listener` accepted and `route` matched. */
  admit(client: ExchangeClient, req: RequestHead, route: RouteConfig, listener: string, stats: RouteStats | undefined): Admission {
    const address = client.peer.address;
    const rules = this.routes.get(route);
    const listenerAcl = this.listeners.get(listener);
    if ((listenerAcl && !listenerAcl.permits(address)) || (rules?.acl && !rules.acl.permits(address))) {
      if (stats) stats.denied++;
      return new LocalExchange(client, req, FORBIDDEN);
    }
    const action = route.action;
    const answer = () => actionAnswer(action!, req, client.proto, client.socket.localAddress);
    const auth = rules?.auth;
    if (auth) {
      const check = auth.check(req.get("authorization"));
      if (check === "busy") return new LocalExchange(client, req, BUSY);
      if (check === "missing" || check === "wrong") {
        if (stats) stats.unauthorized++;
        return new LocalExchange(client, req, unauthorized(auth.challenge));
      }
      if (check instanceof Promise) {
        const decided = check.then((result) => {
          if (result === "ok") return null;
          if (stats) stats.unauthorized++;
          return unauthorized(auth.challenge);
        });
        return action ? new LocalExchange(client, req, decided.then((refusal) => refusal ?? answer())) : decided;
      }
    }
    return action ? new LocalExchange(client, req, answer()) : null;
  }

  release(): void {
    for (const acl of this.listeners.values()) acl.release();
    for (const r of this.routes.values()) r.acl?.release();
  }
}
