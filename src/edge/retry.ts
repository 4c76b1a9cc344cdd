// When a failed attempt may go to another server (nginx proxy_next_upstream): one rule for both
// forwarding paths.
import type { RetryPolicy } from "./options.ts";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

export type FailureKind = "error" | "timeout" | "status";

export interface AttemptState {
  attempts: number;
  startedAt: number;
  method: string;
  /** The whole request can be sent again (no body, or a body small enough to have been kept). */
  replayable: boolean;
  /** Some of the response already reached the client. */
  answered: boolean;
}

export function mayRetry(policy: RetryPolicy, a: AttemptState, kind: FailureKind, now = Date.now()): boolean {
  if (a.answered || !a.replayable || a.attempts >= policy.tries) return false;
  if (policy.timeoutMs > 0 && now - a.startedAt >= policy.timeoutMs) return false;
  if (!IDEMPOTENT.has(a.method) && !policy.nonIdempotent) return false;
  return kind === "status" || policy.on.has(kind);
}
