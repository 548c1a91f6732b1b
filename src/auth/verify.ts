// Forward-auth (/auth/verify) for nginx `auth_request`, Traefik `forwardAuth`, Caddy
// `forward_auth` and Envoy: the front end asks about a request it holds, and the gateway answers
// with the same decision the proxy would make. 200 carries X-Auth-Request-User/-Email/-Groups.
//
// Which request is asked about comes from X-Forwarded-Method + X-Forwarded-Uri (Traefik, Caddy)
// or X-Original-Method + X-Original-URI (nginx), believed only from server.trustedProxies.
// Without them only authentication is checked. A browser without a session on a `login:` route
// gets 302 to the login when asked Traefik-style (those front ends pass the answer on); asked
// nginx-style it gets 401 with the login URL in X-Auth-Login-Url (auth_request passes on only
// 2xx, 401 and 403), which the nginx recipe redirects to: the gateway encodes the page's URI
// there, which nginx cannot.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { BadRequestError, InsufficientScopeError } from '../errors.js';
import { decide, type Refused } from '../pipeline/decide.js';
import type { GatewayState, StateHolder } from '../state.js';
import type { CompiledRoute } from '../policy/rules.js';
import { requireValidHost } from '../request/host.js';
import { parseTarget } from '../request/target.js';
import { isPreflight, originAllowed, OriginNotAllowedError, preflightHeaders } from '../http/cors.js';
import { newOutcome, refuse } from '../http/respond.js';
import { answerOnArrival } from '../http/answer-on-arrival.js';

const METHOD = /^[A-Z]{1,16}$/;
/** The login URL on an nginx-style 401 for a browser on a `login:` route. */
const LOGIN_URL_HEADER = 'x-auth-login-url';

interface Forwarded { method: string; uri: string; traefik: boolean }

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The forwarded method and URI, or null (none sent, or not from a trusted proxy). */
function forwarded(h: IncomingHttpHeaders): Forwarded | null {
  const traefik = h['x-forwarded-method'] !== undefined || h['x-forwarded-uri'] !== undefined;
  const m = first(traefik ? h['x-forwarded-method'] : h['x-original-method']);
  const u = first(traefik ? h['x-forwarded-uri'] : h['x-original-uri']);
  if ((m === undefined) !== (u === undefined)) throw new BadRequestError('Bad request: forwarded method and URI must come together');
  if (m === undefined || u === undefined) return null;
  if (!METHOD.test(m)) throw new BadRequestError('Bad request: malformed forwarded method');
  return { method: m, uri: u, traefik };
}

/** Where a browser comes back to after logging in: the original URL when the front end says where it was. */
function returnUrl(h: IncomingHttpHeaders, uri: string): string {
  const host = first(h['x-forwarded-host']);
  const proto = first(h['x-forwarded-proto']);
  return host !== undefined && (proto === 'http' || proto === 'https') ? `${proto}://${host}${uri}` : uri;
}

/** The route of a forwarded URI when it has `cors`, else null (decide() refuses bad targets). */
function corsRoute(state: GatewayState, uri: string): CompiledRoute | null {
  let route: CompiledRoute | null;
  try { route = state.routes.match(parseTarget(uri).path); } catch { return null; }
  return route !== null && route.cors !== null ? route : null;
}

export function registerForwardAuth(app: FastifyInstance, holder: StateHolder): void {
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: '/auth/verify',
    config: { decidesHost: true }, // decide() judges the Host (request/observe.ts)
    // Answered on arrival: a forwarded request's Content-Type (an ext_authz call keeps the
    // original's) is no reason for a 415 before the decision.
    ...answerOnArrival(async (request: FastifyRequest, reply: FastifyReply) => {
      const state = holder.current;
      const raw = request.raw;
      const outcome = newOutcome(request, '/auth/verify');
      outcome.path = '/auth/verify';
      // Its own query is refused like any other's (an access_token there → 400): Caddy's
      // forward_auth, for one, passes the original request's query along.
      parseTarget(raw.url!);
      const fwd = state.isTrustedProxy(raw.socket.remoteAddress ?? '') ? forwarded(raw.headers) : null;
      if (fwd !== null) outcome.method = fwd.method;
      // A CORS preflight is decided without credentials, as the proxy would (http/cors.ts).
      const route = fwd !== null && isPreflight(fwd.method, raw.headers) ? corsRoute(state, fwd.uri) : null;
      if (route !== null) {
        // Answered without decide(): its Host check first, as decide() would make it.
        requireValidHost(raw.rawHeaders, raw.httpVersion);
        const origin = raw.headers.origin;
        outcome.route = `/auth/verify ${route.id}`;
        outcome.decision = originAllowed(route.cors!, origin) ? 'preflight' : 'cors_denied';
        if (!originAllowed(route.cors!, origin)) { void reply.header('vary', 'Origin'); throw new OriginNotAllowedError(origin ?? ''); }
        return reply.code(200).headers(preflightHeaders(route.cors!, origin)).header('cache-control', 'no-store').send();
      }
      const v = await decide(state, {
        entry: 'verify',
        method: fwd?.method ?? raw.method!,
        target: fwd?.uri ?? null,
        headers: raw.headers,
        rawHeaders: raw.rawHeaders,
        httpVersion: raw.httpVersion,
        loginReturn: fwd === null ? null : fwd.traefik ? returnUrl(raw.headers, fwd.uri) : fwd.uri,
      });
      if (v.path !== null) outcome.path = v.path;
      if (v.route !== null) outcome.route = `/auth/verify ${v.route.id}`;
      if (v.principal !== null) outcome.sub = v.principal.sub;
      void reply.header('cache-control', 'no-store');
      if (!v.ok) {
        // The front end asked about a URI no route serves: not ours to allow.
        const refusal: Refused = v.error.code === 'no_route' ? { ...v, error: new InsufficientScopeError('no_route') } : v;
        if (refusal.location !== null && fwd !== null && !fwd.traefik) {
          // nginx would turn a 302 into 500: the 401 carries where its error_page sends the browser.
          outcome.decision = 'login_redirect';
          void reply.header(LOGIN_URL_HEADER, refusal.location);
          return refuse(reply, { ...refusal, location: null });
        }
        return refuse(reply, refusal);
      }
      outcome.decision = v.route !== null && v.principal === null ? 'public' : 'allow';
      if (v.setCookies !== null) void reply.header('set-cookie', v.setCookies);
      const p = v.principal;
      if (p !== null) {
        void reply.header('x-auth-request-user', p.sub).header('x-auth-request-groups', p.groupsHeader);
        if (p.email !== null) void reply.header('x-auth-request-email', p.email);
      }
      return reply.code(200).send();
    }),
  });
}
