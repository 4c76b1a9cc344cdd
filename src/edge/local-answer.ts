// A request Fulcrum answers itself (a redirect or respond route, an access refusal): the work
// that stands where an Exchange would, for the HTTP/1.1 path and HTTP/2 streams alike. It writes
// the answer as HTTP/1.1 bytes to the client's socket (an HTTP/2 stream's socket turns them into
// HEADERS and DATA), once the request body has been read and dropped (so a keep-alive connection
// stays usable; a client that expects 100 Continue is answered at once) and, for a refusal that waited on a password check, once that check is done.
import type { EdgeStats, RouteStats } from "./stats.ts";
import type { TcpSocket } from "../runtime/types.ts";
import type { RequestHead } from "../http1/request-head.ts";
import { latin1Bytes } from "../http1/bytes.ts";
import { type LocalAnswer, STATUS_REASONS } from "./route-actions.ts";

/** What an answer needs of the client (an ExchangeClient does: a ClientConn or an H2Stream). */
export interface AnswerClient {
  readonly socket: TcpSocket;
  readonly stats: EdgeStats;
  readonly route: RouteStats | null;
  readonly retiring: boolean;
  closeAfterResponse: boolean;
  exchangeDone(): void;
}

/** The answer as an HTTP/1.1 response (no body for HEAD; Content-Length either way). */
export function answerBytes(answer: LocalAnswer, method: string, close: boolean): Uint8Array {
  const body = new TextEncoder().encode(answer.body);
  let head = `HTTP/1.1 ${answer.status} ${STATUS_REASONS[answer.status] ?? ""}\r\n`;
  for (const [n, v] of answer.headers) head += `${n}: ${v}\r\n`;
  head += `content-length: ${body.length}\r\n${close ? "connection: close\r\n" : ""}\r\n`;
  const headBytes = latin1Bytes(head);
  if (method === "HEAD" || body.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

/** Writes an answer to a client and ends the request's work: counted, then exchangeDone. */
export function writeAnswer(client: AnswerClient, req: RequestHead, answer: LocalAnswer, bodyUnread = false): void {
  const close = bodyUnread || !req.keepAlive || client.retiring;
  client.closeAfterResponse = close;
  const cls = (answer.status / 100) | 0;
  client.stats.responses[cls]++;
  if (client.route) client.route.responses[cls]++;
  if (answer.error) client.stats.errors[answer.error]++;
  client.socket.write(answerBytes(answer, req.method, close));
  client.exchangeDone();
}

/** How a request goes on (src/edge/access/admission.ts): answered here, to its pool once a
 * password check settles (null: through; else the answer), or to its pool now (null). */
export type Admission = LocalExchange | Promise<LocalAnswer | null> | null;

export class LocalExchange {
  private bodyDone = false;
  /** Answered without waiting for the body (Expect: 100-continue). */
  private bodyUnread = false;
  private started = false;
  private finished = false;
  private answering = false;

  constructor(private readonly client: AnswerClient, private readonly req: RequestHead, private readonly answer: LocalAnswer | Promise<LocalAnswer>) {}

  start(): void {
    this.started = true;
    // A client waiting for 100 Continue gets the final answer instead, at once (RFC 9110
    // §10.1.1); the body it then does not send is not waited for (HTTP/1.1 closes after).
    if (!this.bodyDone && /100-continue/i.test(this.req.get("expect") ?? "")) this.bodyDone = this.bodyUnread = true;
    this.maybeAnswer();
  }

  /** The request body is read and dropped. */
  clientBody(_chunk: Uint8Array, last: boolean): void {
    if (!last) return;
    this.bodyDone = true;
    this.maybeAnswer();
  }

  clientGone(): void { this.finished = true; }
  clientDrain(): void {}
  tunnelData(_chunk: Uint8Array): void {}
  finishTunnel(): void {}

  private maybeAnswer(): void {
    if (!this.started || !this.bodyDone || this.answering) return;
    this.answering = true;
    const answer = this.answer;
    if (answer instanceof Promise) {
      void answer.then((a) => { if (!this.finished) { this.finished = true; writeAnswer(this.client, this.req, a, this.bodyUnread); } });
      return;
    }
    this.finished = true;
    writeAnswer(this.client, this.req, answer, this.bodyUnread);
  }
}
