// Where decisions and errors become responses: the one error handler (CDF's JSON shape), the
// refusal of a decision (cookies to clear, login redirect), and what every request reports on
// its access line and metrics (the Outcome).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { BadRequestError, GatewayError, errorBody, type Reason } from '../errors.js';
import type { Refused } from '../pipeline/decide.js';
import { isLoginEndpoint, pageFor, pageHeaders, wantsPage, type PageDeps } from './pages.js';

/** What the access line and the request metrics report. */
export interface Outcome {
  route: string;
  decision: string;
  sub: string | null;
  path: string | null;
  /** The method decided on (forward-auth: the forwarded method). */
  method: string | null;
  /** The refusal's stable reason code, or null. */
  reason: Reason | null;
}

declare module 'fastify' {
  interface FastifyRequest { outcome: Outcome }
}

export function newOutcome(request: FastifyRequest, route = '-'): Outcome {
  const o: Outcome = { route, decision: 'pending', sub: null, path: null, method: request.raw.method ?? null, reason: null };
  request.outcome = o;
  return o;
}

export function decisionFor(status: number): string {
  switch (status) {
    case 400: return 'invalid';
    case 401: return 'unauthenticated';
    case 403: return 'deny';
    case 404: return 'not_found';
    case 405: return 'not_allowed';
    case 408: return 'timeout';
    case 413: case 431: return 'too_large';
    default: return status >= 500 ? 'error' : 'invalid';
  }
}

export function sendError(reply: FastifyReply, gw: GatewayError): void {
  void reply.code(gw.status).headers(gw.headers).type('application/json').send(errorBody(gw.status, gw.message));
}

/**
 * Answers a refused decision: a login redirect for a browser, else the error (through the error
 * handler). Cookies the decision wants cleared or renewed go out either way.
 */
export function refuse(reply: FastifyReply, v: Refused): FastifyReply {
  const o = reply.request.outcome;
  o.reason = v.error.code;
  if (v.setCookies !== null) void reply.header('set-cookie', v.setCookies);
  if (v.location !== null) {
    o.decision = 'login_redirect';
    return reply.code(302).header('location', v.location).header('cache-control', 'no-store').send();
  }
  // Sent, not thrown: Fastify hands an Error payload to the error handler without an unwind.
  return reply.send(v.error);
}

/** The one error handler: every error, thrown anywhere, leaves in CDF's shape. */
export function installErrorHandling(app: FastifyInstance, logger: Logger, pages: (() => PageDeps) | null = null): void {
  // Synchronous unless a page is rendered: an API client's refusal builds no promise.
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const outcome = request.outcome ?? newOutcome(request);
    // Named here: an error met after an await may arrive outside the request's context.
    const requestId = request.observed?.id;
    let gw: GatewayError;
    if (err instanceof GatewayError) {
      gw = err;
    } else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      gw = new GatewayError(err.statusCode, 'Bad request', { detail: err.message });
    } else {
      gw = new GatewayError(500, 'Internal error', { detail: err.message });
      logger.error({ requestId, err, route: outcome.route }, 'unexpected error');
    }
    if (outcome.decision === 'pending') outcome.decision = decisionFor(gw.status);
    outcome.reason = gw.code;
    if (gw.status >= 500 && gw.detail) logger.warn({ requestId, route: outcome.route, status: gw.status, reason: gw.code, detail: gw.detail }, 'request failed');
    else if (gw.detail && logger.isLevelEnabled('debug')) logger.debug({ requestId, route: outcome.route, status: gw.status, reason: gw.code, detail: gw.detail }, 'request refused');
    // People get a page, API clients CDF's JSON (DESIGN: "Browsers see pages").
    if (pages !== null && wantsPage(request.raw.headers, gw.status, isLoginEndpoint(outcome.path))) {
      const raw = request.raw;
      return pageFor(pages(), { method: raw.method!, url: raw.url!, headers: raw.headers, path: outcome.path, sub: outcome.sub }, gw.status, gw.message)
        .then((html) => reply.code(gw.status).headers(gw.headers).headers(pageHeaders()).send(html));
    }
    sendError(reply, gw);
    return undefined;
  });
}

/** Fastify's own parse errors (a malformed target it could not route). */
export function frameworkError(err: Error, request: FastifyRequest, reply: FastifyReply): void {
  const o = newOutcome(request);
  o.decision = 'invalid';
  o.reason = 'ambiguous_path';
  sendError(reply, new BadRequestError('Bad request: malformed request target', err.message, 'ambiguous_path'));
}
