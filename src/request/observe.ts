// What every request gets on arrival and at its end, whatever answers it: a request id (kept from
// `X-Request-Id` or made) echoed on the response, the request context (log lines and spans find
// it), the in-flight gauge, and at the end the access line, the duration histogram, the refusal
// counter and the server span's end. The decision itself is not made here; the refusals made here
// are a Host that is missing (on arrival: what Node's parser would otherwise answer), twice sent
// or malformed (a route hook, on the routes that do not ask decide(), which checks it itself).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { AccessLine } from '../log.js';
import type { Metrics } from '../metrics.js';
import { newOutcome, type Outcome } from '../http/respond.js';
import type { ActiveTracing } from '../tracing.js';
import { clientIp } from './client-ip.js';
import { hostRefusal, missingHost } from './host.js';
import { REQUEST_ID_HEADER, requestId } from './id.js';
import { runInRequest, type RequestContext } from './context.js';

declare module 'fastify' {
  interface FastifyRequest { observed: RequestContext | null }
  interface FastifyContextConfig {
    /** The route's handler asks decide(), which refuses a bad Host itself: no Host hook on it. */
    readonly decidesHost?: boolean;
  }
}

/**
 * Two Host headers (Node's `headers.host` shows only the first) or a malformed one: 400 bad_host,
 * as decide() answers it. A route hook, so the proxy's requests (decide() checks those) pay
 * nothing for it; server.ts also runs it before the not-found handler.
 */
export function refuseBadHost(request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  const refused = hostRefusal(request.raw.rawHeaders, request.raw.httpVersion);
  if (refused === null) done(); else done(refused);
}

export interface ObserveDeps {
  readonly metrics: Metrics;
  /** Writes an access line; called while `accessLog()` (log.accessLog; a reload may change it). */
  readonly writeAccess: (line: AccessLine) => void;
  accessLog(): boolean;
  readonly isTrustedProxy: (address: string) => boolean;
  /** The started tracer, or null (tracing off or not started yet). */
  tracing(): ActiveTracing | null;
}

/** Registers the arrival and end hooks; call before any other hook so everything runs in the request context. */
export function observeRequests(app: FastifyInstance, deps: ObserveDeps): void {
  const { metrics, writeAccess } = deps;
  // One listener function for every response (no closure per request): 'close' comes for
  // finished and abandoned responses alike, 'finish' (onResponse) only for the former.
  const onClose = function (this: ServerResponse) { metrics.inFlight(-1); };
  app.decorateRequest('observed', null);

  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    const id = requestId(raw);
    // Fastify's answers carry it from here; the proxy adds it to the upstream's headers itself.
    // (Not on the raw response: one header set there before writeHead sends every response
    // header through setHeader, measured at ~5 % of a proxied request.)
    void reply.header(REQUEST_ID_HEADER, id);
    const tracing = deps.tracing();
    const ctx: RequestContext = { id, span: tracing === null ? null : tracing.serverSpan(raw.method!, raw.headers), tracing };
    request.observed = ctx;
    metrics.inFlight(1);
    reply.raw.on('close', onClose); // a response closes once: `on` spares once()'s wrapper
    // No Host (HTTP/1.1): Node is told not to refuse it (its bare 400 has no id and no access
    // line); refused here, before any endpoint, so every path answers it alike.
    const noHost = missingHost(raw.headers, raw.httpVersion);
    if (noHost !== null) { runInRequest(ctx, () => done(noHost)); return; }
    runInRequest(ctx, done);
  });

  // Every route added from here on that does not ask decide() (login, logout, callback, userinfo,
  // CDP's /login/url, back-channel logout, any endpoint added later) judges the Host before its
  // handler builds a URL or a cookie from the request. Opt-out, so a new endpoint is covered.
  // First among the route's own hooks: a route answered on arrival answers from one of them.
  app.addHook('onRoute', (route) => {
    if (route.config?.decidesHost === true) return;
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [refuseBadHost, ...own];
  });

  app.addHook('onResponse', (request, reply, done) => {
    const o = request.outcome ?? newOutcome(request);
    const status = reply.statusCode;
    const { reason } = o;
    const elapsedMs = reply.elapsedTime; // a clock read: once for the histogram and the line
    metrics.request(o.route, status, o.decision);
    metrics.requestDuration(o.route, status, elapsedMs / 1000);
    if (reason !== null && status >= 300) metrics.refusal(o.route, reason);
    const ctx = request.observed;
    const raw = request.raw;
    const logged = deps.accessLog();
    const ip = logged || ctx?.span ? clientIp(raw.socket.remoteAddress ?? '', raw.headers['x-forwarded-for'], deps.isTrustedProxy) : '';
    if (ctx !== null && ctx.span !== null) endServerSpan(ctx, raw.method!, o, status, ip);
    if (logged) {
      writeAccess({
        requestId: ctx?.id ?? null, ip, method: o.method, path: o.path, route: o.route, decision: o.decision,
        reason, sub: o.sub, status, ms: Math.round(elapsedMs * 100) / 100,
      });
    }
    done();
  });
}

// Semantic-convention attribute names, written out: importing the conventions package would load
// it with tracing off too.
const ATTR_HTTP_ROUTE = 'http.route';
const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
const ATTR_URL_PATH = 'url.path';
const ATTR_CLIENT_ADDRESS = 'client.address';

function endServerSpan(ctx: RequestContext, method: string, o: Outcome, status: number, ip: string): void {
  const span = ctx.span!;
  if (span.isRecording()) {
    span.setAttribute(ATTR_HTTP_ROUTE, o.route);
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (o.path !== null) span.setAttribute(ATTR_URL_PATH, o.path);
    span.setAttribute(ATTR_CLIENT_ADDRESS, ip);
    span.setAttribute('cdf_gateway.decision', o.decision);
    span.setAttribute('cdf_gateway.request_id', ctx.id);
    if (o.reason) span.setAttribute('cdf_gateway.reason', o.reason);
    if (o.sub !== null) span.setAttribute('enduser.id', o.sub);
    // Semantic conventions: `{method} {route}`; the route id, never the raw path (cardinality).
    if (o.route !== '-') span.updateName(`${method} ${o.route}`);
    if (status >= 500) ctx.tracing!.fail(span, { name: 'http', message: `HTTP ${status}`, reason: o.reason ?? String(status) });
  }
  span.end();
}
