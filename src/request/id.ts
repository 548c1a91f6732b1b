// Request ids (DESIGN "Request ids"): a client's or an outer proxy's `X-Request-Id` is kept when
// it is 1-128 printable ASCII characters, else the gateway makes one. The id goes upstream, back
// to the client and onto every log line of the request.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

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

/**
 * The id of a request: its `X-Request-Id` when that is one valid value, else a new one. Node
 * joins two `X-Request-Id` headers into one value (`a, b`); neither is trusted over the other.
 * Only a value with a comma costs the look at the separate headers.
 */
export function requestId(req: Pick<IncomingMessage, 'headers' | 'headersDistinct'>): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  if (typeof incoming === 'string' && incoming.length > 0 && incoming.length <= MAX_LENGTH && isPrintable(incoming)
    && (incoming.indexOf(',') === -1 || req.headersDistinct[REQUEST_ID_HEADER]?.length === 1)) {
    return incoming;
  }
  return randomUUID();
}
