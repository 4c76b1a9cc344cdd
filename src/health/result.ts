// What a checker reports: pass or fail, a short reason an operator can act on, and, for checkers
// that let a server state its own capacity (script with dynamic weight, agent), a weight.

/** A weight a check asks for: absolute (misc_dynamic exit code, agent "weight:N"), a percentage of
 * the configured weight (agent "75%"), or back to the configured weight (agent "ready"). */
export type WeightRequest = { absolute: number } | { percent: number } | "configured";

export interface CheckResult {
  ok: boolean;
  /** e.g. "HTTP 503, expected 200-399" or "TCP connect refused". */
  detail: string;
  /** Absent: the weight stays as it is. */
  weight?: WeightRequest;
}

export const pass = (detail: string, weight?: WeightRequest): CheckResult =>
  weight === undefined ? { ok: true, detail } : { ok: true, detail, weight };

export const fail = (detail: string, weight?: WeightRequest): CheckResult =>
  weight === undefined ? { ok: false, detail } : { ok: false, detail, weight };

/** Where a check is sent: the server's address, with the check's own port when it has one. */
export interface CheckTarget {
  host: string;
  port: number;
}

/** A check's timeout, as its probe sees it. Lighter than an AbortSignal, which matters at a
 * thousand checks a second. */
export class Deadline {
  expired = false;
  private handler: (() => void) | null = null;

  /** `reason` names the timeout for reasons, e.g. "after 1s". */
  constructor(readonly reason: string) {}

  /** Sets what runs when time is up (null: nothing). Runs at once if it already is. */
  onExpire(handler: (() => void) | null): void {
    this.handler = handler;
    if (handler && this.expired) handler();
  }

  expire(): void {
    if (this.expired) return;
    this.expired = true;
    const h = this.handler;
    this.handler = null;
    h?.();
  }
}

/** One run of a check. It must settle as soon as its deadline expires. */
export type Probe = (deadline: Deadline) => Promise<CheckResult>;

/** "1s", "250ms": how timeouts are named in reasons. */
export function formatTimeout(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** A socket error as a short reason: "refused", "reset", else the code or message. */
export function socketErrorText(e: unknown): string {
  const code = (e as { code?: string }).code;
  switch (code) {
    case "ECONNREFUSED": return "refused";
    case "ECONNRESET": return "reset by the server";
    case "EHOSTUNREACH": return "host unreachable";
    case "ENETUNREACH": return "network unreachable";
    case "ENOTFOUND": case "EAI_NONAME": return "host name not found";
  }
  return code ?? (e instanceof Error ? e.message : String(e));
}
