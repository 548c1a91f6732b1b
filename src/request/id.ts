// Request ids (DESIGN "Request ids"): a client's or an outer proxy's `X-Request-Id` is kept when
// it is 1-128 printable ASCII characters, else the gateway makes one. The id goes upstream, back
// to the client and onto every log line of the request.
import { randomUUID } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-request-id';
const MAX_LENGTH = 128;

/** Printable ASCII (space to `~`): nothing that could split a log line or a header. */
function isPrintable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** The id to use for a request whose `X-Request-Id` header is `incoming`. */
export function requestId(incoming: string | string[] | undefined): string {
  // Two X-Request-Id headers: neither is trusted over the other.
  if (typeof incoming === 'string' && incoming.length > 0 && incoming.length <= MAX_LENGTH && isPrintable(incoming)) {
    return incoming;
  }
  return randomUUID();
}
