// How an upstream attempt failed, read from the error codes along its cause chain (undici nests
// the socket error): what the proxy retries, what becomes 504, and the kind counted in
// cdf_gateway_upstream_failures_total.
import type { UpstreamFailure } from '../metrics.js';

/** Retried once (idempotent requests without a body). */
export const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);
/** Answered 504. */
export const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** Error codes along the cause chain. */
export function codes(err: unknown): string[] {
  const out: string[] = [];
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let i = 0; e && i < 5; i++, e = e.cause as typeof e) if (typeof e.code === 'string') out.push(e.code);
  return out;
}

export function failureKind(chain: readonly string[]): UpstreamFailure {
  if (chain.some((c) => TIMEOUT_CODES.has(c))) return 'timeout';
  if (chain.includes('ECONNREFUSED')) return 'refused';
  if (chain.some((c) => CONNECTION_ERRORS.has(c))) return 'reset';
  return 'other';
}
