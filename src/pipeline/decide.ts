// The one decision: who is calling, and may they do this? Every way in (the proxy handler,
// forward-auth, WebSocket upgrades, /login/token) asks here, so they can never disagree.
//
//   method → request target → route → identity (bearer, else session) → cross-site check
//     → allow rules → credential
//
// decide() never throws a GatewayError: it returns a refusal carrying the error (status, public
// text, stable reason code) and whatever the transport must still send (cookies to clear, a login
// redirect). Transports turn a decision into a response; they decide nothing themselves.
import type { IncomingHttpHeaders } from 'node:http';
import {
  BadRequestError, CrossSiteError, GatewayError, InsufficientScopeError, MethodNotAllowedError, MissingTokenError,
  NotFoundError, isAllowedMethod,
} from '../errors.js';
import { authorize } from '../policy/authorize.js';
import type { CompiledRoute } from '../policy/rules.js';
import { requireValidHost } from '../request/host.js';
import { parseTarget } from '../request/target.js';
import { sameOriginAllowed } from '../session/origin.js';
import type { Session } from '../session/store.js';
import type { GatewayState } from '../state.js';
import { bearerCandidate, requireToken68 } from '../token/bearer.js';
import type { Principal } from '../token/principal.js';
import type { Credential } from '../upstream/credentials.js';

export type Entry = 'proxy' | 'verify' | 'upgrade' | 'token';

/** What an entry point knows about the request it asks about. */
export interface Ask {
  readonly entry: Entry;
  /** The method of the request decided on (forward-auth: the forwarded method). */
  readonly method: string;
  /** Raw request-target (path and query); null: authentication only, no route (forward-auth without forwarded headers, /login/token). */
  readonly target: string | null;
  /** Headers carrying the caller's credentials and the browser hints (Accept, Origin, Referer, Cookie). */
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  /** The request's HTTP version (`1.0`, `1.1`): an HTTP/1.0 request may come without Host. Absent: 1.1. */
  readonly httpVersion?: string;
  /**
   * Where to send a browser without a session on a `login:` route: the URL to come back to, or
   * null to answer 401 instead (API clients, nginx-style forward-auth).
   */
  readonly loginReturn: string | null;
}

export interface Allowed {
  readonly ok: true;
  /** null when the ask had no target (authentication only). */
  readonly route: CompiledRoute | null;
  readonly path: string | null;
  /** null on public routes. */
  readonly principal: Principal | null;
  readonly session: Session | null;
  /** The upstream credential (proxy and upgrade entries on non-public routes), else null. */
  readonly credential: Credential | null;
  readonly setCookies: string[] | null;
}

export interface Refused {
  readonly ok: false;
  readonly error: GatewayError;
  readonly route: CompiledRoute | null;
  readonly path: string | null;
  readonly principal: Principal | null;
  readonly setCookies: string[] | null;
  /** Send the browser here (to log in) instead of answering the error. */
  readonly location: string | null;
}

export type Decision = Allowed | Refused;

/** Who the caller is: their principal, and the session it came from (null for a bearer token). */
export interface Identity {
  readonly principal: Principal;
  readonly session: Session | null;
  /** The verified access token (the bearer token, or the session's): for this request only, never cached. */
  readonly token: string;
}

const MATRIX_PARAMS = /;[^/]*/g;

/** `/auth` and `/login` (and everything under them) belong to the gateway. */
export function isReservedPath(path: string): boolean {
  for (const r of ['/auth', '/login']) {
    if (path.startsWith(r) && (path.length === r.length || path.charCodeAt(r.length) === 0x2f)) return true;
  }
  return false;
}

const TEXT_HTML = /text\/html/i;

/**
 * DESIGN: a browser is a request that accepts HTML and presents no Authorization. Media types
 * are case-insensitive (RFC 9110 §8.3.1): `TEXT/HTML` counts; the common lower-case spelling is
 * found without the regular expression.
 */
export function isBrowser(headers: IncomingHttpHeaders): boolean {
  const accept = headers.accept;
  return headers.authorization === undefined && accept !== undefined && (accept.includes('text/html') || TEXT_HTML.test(accept));
}

/**
 * Where the session is not read (public routes, bearer-only routes, a bearer token presented), a
 * session cookie that came twice is still cleared (DESIGN: treated as having none, cookies
 * cleared). Requests whose Cookie header lacks the session cookie's name pay one substring check.
 */
function clearAmbiguousSession(state: GatewayState, headers: IncomingHttpHeaders, p: { setCookies: string[] | null }): void {
  const sessions = state.login?.sessions;
  if (sessions === undefined || headers.cookie === undefined) return;
  const clear = sessions.clearIfAmbiguous(headers.cookie);
  if (clear !== null) p.setCookies = clear;
}

/** Mutable while deciding; frozen into the verdict. */
interface Progress {
  route: CompiledRoute | null;
  path: string | null;
  principal: Principal | null;
  setCookies: string[] | null;
}

/** A step that finishes at once (a cached token, a plain rule) or, when it must wait, later. */
type Maybe<T> = T | Promise<T>;
const isPromise = <T>(x: Maybe<T>): x is Promise<T> => x instanceof Promise;
/** `then` for a step that may already be done: a request that never waits builds no promise. */
function andThen<T, U>(x: Maybe<T>, next: (value: T) => Maybe<U>): Maybe<U> {
  return isPromise(x) ? x.then(next) : next(x);
}

/**
 * The decision, synchronous when nothing has to wait (the common case: a cached bearer token,
 * rules without token/inspect, a credential at hand), else a promise. Every transport awaits it.
 */
export function decide(state: GatewayState, ask: Ask): Maybe<Decision> {
  const p: Progress = { route: null, path: null, principal: null, setCookies: null };
  let d: Maybe<Decision>;
  try {
    d = decideInner(state, ask, p);
  } catch (err) {
    return refusal(err, p);
  }
  return isPromise(d) ? d.catch((err: unknown) => refusal(err, p)) : d;
}

/** A GatewayError becomes a refusal; anything else is a bug and propagates. */
function refusal(err: unknown, p: Progress): Refused {
  if (!(err instanceof GatewayError)) throw err;
  return { ok: false, error: err, route: p.route, path: p.path, principal: p.principal, setCookies: p.setCookies, location: null };
}

function decideInner(state: GatewayState, ask: Ask, p: Progress): Maybe<Decision> {
  // RFC 9112 §3.2: exactly one Host, a valid host[:port] (it goes upstream as X-Forwarded-Host).
  requireValidHost(ask.rawHeaders, ask.httpVersion ?? '1.1');
  // Only the methods the gateway forwards (TRACE would echo the request the upstream got,
  // injected credential included): any other is 405 wherever it is sent, forward-auth included.
  if (!isAllowedMethod(ask.method)) throw new MethodNotAllowedError(ask.method);
  let route: CompiledRoute | null = null;
  if (ask.target !== null) {
    route = routeOf(state, ask.target, p);
    if (ask.entry === 'upgrade' && !route.websockets) throw new BadRequestError('Bad request: WebSockets are not enabled on this route', undefined, 'websockets_disabled');
    if (route.isPublic) {
      clearAmbiguousSession(state, ask.headers, p);
      return allowed(p, null, null, null);
    }
  }
  return andThen(identify(state, ask.headers, ask.rawHeaders, route, p),
    (identity) => identity instanceof GatewayError ? refusal(identity, p) : decideFor(state, ask, p, route, identity));
}

/** Given who is calling: the login redirect, the cross-site check, the allow rules, the credential. */
function decideFor(state: GatewayState, ask: Ask, p: Progress, route: CompiledRoute | null, identity: Identity | null): Maybe<Decision> {
  if (identity === null) {
    const login = route?.login ?? null;
    if (login !== null && ask.loginReturn !== null && isBrowser(ask.headers) && (ask.method === 'GET' || ask.method === 'HEAD')) {
      const back = new URLSearchParams({ project: login, redirect: ask.loginReturn });
      const base = ask.entry === 'verify' ? state.config.server.publicUrl : '';
      return { ok: false, error: new MissingTokenError(), route, path: p.path, principal: null, setCookies: p.setCookies, location: `${base}/auth/login?${back.toString()}` };
    }
    throw new MissingTokenError();
  }
  p.principal = identity.principal;
  if (identity.session !== null) {
    // Cookies ride along on cross-site requests (SameSite=Lax still allows some): state changes
    // need proof that the page is ours. An upgrade is checked like a POST (browsers send Origin).
    const method = ask.entry === 'upgrade' ? 'POST' : ask.method;
    const allowedOrigins = state.config.login?.allowedRedirectOrigins ?? [];
    if (!sameOriginAllowed(method, ask.headers.origin, ask.headers.referer, state.config.server.publicUrl, allowedOrigins)) {
      throw new CrossSiteError();
    }
  }
  if (route === null) return allowed(p, identity.principal, identity.session, null);
  // Allow rules: synchronous unless a rule needs CDF's token/inspect or Graph (groups overage).
  return andThen(authorize(route, ask.method, p.path!, identity.principal, state.policy, identity.token), (verdict) => {
    if (verdict !== 'allow') throw new InsufficientScopeError(verdict);
    if (ask.entry !== 'proxy' && ask.entry !== 'upgrade') return allowed(p, identity.principal, identity.session, null);
    return andThen(state.credentials.get(route.upstream.name)!.get(identity.principal, identity.token),
      (credential) => allowed(p, identity.principal, identity.session, credential));
  });
}

function allowed(p: Progress, principal: Principal | null, session: Session | null, credential: Credential | null): Allowed {
  return { ok: true, route: p.route, path: p.path, principal, session, credential, setCookies: p.setCookies };
}

/** The route of a request target, or a refusal (400 ambiguous, 404 reserved or unmatched). */
function routeOf(state: GatewayState, rawTarget: string, p: Progress): CompiledRoute {
  const target = parseTarget(rawTarget);
  p.path = target.path;
  if (isReservedPath(target.path)) throw new NotFoundError();
  const route = state.routes.match(target.path);
  // `;` is an ordinary character here, but servlet-style upstreams drop `;params` from segments:
  // refuse a path whose route would change if they did (so `/admin;x/…` can't dodge `/admin`).
  if (target.path.includes(';') && state.routes.match(target.path.replace(MATRIX_PARAMS, '')) !== route) {
    throw new BadRequestError('Bad request: ambiguous request path', 'matrix parameters change the route', 'ambiguous_path');
  }
  if (route === null) throw new NotFoundError();
  p.route = route;
  return route;
}

/**
 * The caller: a bearer token if one is presented (it always wins), else the session cookie,
 * accepted only on routes of that session's login project (route null: any project). Cookies
 * of a dead session are recorded in `p.setCookies` to be cleared.
 */
export function identify(
  state: GatewayState, headers: IncomingHttpHeaders, rawHeaders: readonly string[], route: CompiledRoute | null,
  p: { setCookies: string[] | null },
): Maybe<Identity | null | GatewayError> {
  const token = bearerCandidate(headers, rawHeaders);
  if (token !== null) {
    clearAmbiguousSession(state, headers, p);
    // A token seen before is answered from the cache without a promise: its principal, or the
    // refusal it got (returned as a value, not thrown). Only a token not seen before is scanned
    // for its syntax (400 when it is no token68).
    const checked = state.verifier.check(token, requireToken68);
    if (checked instanceof GatewayError) return checked;
    if (checked instanceof Promise) return checked.then((principal) => ({ principal, session: null, token }));
    return { principal: checked, session: null, token };
  }
  const sessions = state.login?.sessions;
  const cookie = headers.cookie;
  if (sessions === undefined || cookie === undefined) return null;
  if (route !== null && route.login === null) {
    clearAmbiguousSession(state, headers, p);
    return null;
  }
  return sessions.authenticate(sessions.cookies(cookie), route?.login ?? null).then((r) => {
    p.setCookies = r.setCookies;
    if (r.session === null) return null;
    return { principal: r.principal, session: r.session, token: r.session.accessToken };
  });
}
