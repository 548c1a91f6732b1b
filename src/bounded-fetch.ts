// fetch() whose response bodies are cut off at a size limit while they are read: a huge (or
// endless) answer from an IdP costs at most `maxBytes` of memory, never the whole body first.
// A declared Content-Length over the limit fails before any of the body is read.
import { ResponseTooLargeError } from './errors.js';

/** Bound on any other IdP answer (discovery, token endpoint, an ID token's key set): 1 MiB. */
export const IDP_RESPONSE_MAX_BYTES = 1_048_576;

/** Statuses whose Response may not carry a body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** Wraps `base` (default: the global fetch); reading a body past `maxBytes` rejects with ResponseTooLargeError. */
export function boundedFetch(maxBytes: number, base: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const res = await base(input, init);
    const declared = res.headers.get('content-length');
    if (declared !== null && Number(declared) > maxBytes) {
      await res.body?.cancel().catch(() => {});
      throw new ResponseTooLargeError(maxBytes);
    }
    if (res.body === null || NULL_BODY.has(res.status)) return res;
    let seen = 0;
    const counted = res.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        // Erroring the transform cancels the source: the connection is dropped, not drained.
        if (seen > maxBytes) controller.error(new ResponseTooLargeError(maxBytes));
        else controller.enqueue(chunk);
      },
    }));
    const out = new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
    // Keep what callers may read besides the body (openid-client checks `url` and `redirected`).
    Object.defineProperties(out, { url: { value: res.url }, redirected: { value: res.redirected } });
    return out;
  };
}
