// The upstream call as the request's observers see it: the request id header and, with tracing
// on, a client span whose W3C context replaces the client's `traceparent` (the upstream's parent
// is the gateway's call). Nothing is allocated here when tracing is off.
import { currentRequest, type RequestContext } from '../request/context.js';
import { REQUEST_ID_HEADER } from '../request/id.js';
import type { ActiveTracing, Span } from '../tracing.js';
import type { ProxyState } from './proxy.js';

export interface UpstreamTrace { readonly span: Span; readonly tracing: ActiveTracing; ended: boolean }

/**
 * The request id goes upstream; with tracing on, so does a client span's traceparent (the
 * client's own traceparent is replaced: the upstream's parent is the gateway's call).
 */
export function traceUpstream(headers: Record<string, string | string[]>, method: string, state: ProxyState, request: RequestContext | null): UpstreamTrace | null {
  // The innermost context where one is current; else the request's own: before Node 24 the
  // context ends with the request's synchronous part, and a decision that waited (a first-seen
  // token on the thread pool, a key fetch) resumes outside it.
  const ctx = currentRequest() ?? request;
  if (ctx === null) return null;
  headers[REQUEST_ID_HEADER] = ctx.id;
  if (ctx.span === null || ctx.tracing === null) return null;
  const span = ctx.tracing.childSpan(ctx.span, method, 'client', {
    'http.request.method': method, 'server.address': state.forward.upstreamHost, 'cdf_gateway.upstream': state.route.upstream.name,
  });
  ctx.tracing.inject(span, headers);
  return { span, tracing: ctx.tracing, ended: false };
}

export function endTrace(t: UpstreamTrace | null, status: number | null, err?: unknown): void {
  if (t === null || t.ended) return;
  t.ended = true;
  if (status !== null) t.span.setAttribute('http.response.status_code', status);
  if (err !== undefined) t.tracing.fail(t.span, err);
  t.span.end();
}
