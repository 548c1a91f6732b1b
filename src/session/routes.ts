// The gateway's own endpoints: the login flow (/auth/login → IdP → /auth/callback), logout,
// userinfo, forward-auth (/auth/verify) and CDP's legacy pair (/login/url, /login/token).
// Nothing here ever puts a token in a URL or accepts one from it (parseTarget refuses
// access_token), and no code, state or verifier is ever logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { GatewayConfig, LoginConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { BadRequestError, GatewayError, InsufficientScopeError, MissingTokenError, NotFoundError } from '../errors.js';
import { parseTarget } from '../request/target.js';
import { isAllowed } from '../policy/authorize.js';
import type { CompiledRoute, RouteTable } from '../policy/rules.js';
import type { Principal } from '../token/principal.js';
import type { TokenVerifier } from '../token/verify.js';
import { simpleCookie } from './cookies.js';
import type { SessionManager } from './manager.js';
import { describe, IdpUnavailableError, type FlowSecrets, type LoginClient } from './oidc.js';
import { safeRedirect } from './redirect.js';
import { sameOriginAllowed } from './origin.js';
import type { Sealer } from './seal.js';
import { sessionExpiry, type Session } from './store.js';

/** Who a request is, by bearer token or session cookie; decided in server.ts. */
export interface Identity {
  readonly principal: Principal;
  /** The session, when the identity came from the session cookie. */
  readonly session: Session | null;
  /** Set-Cookie lines the answer must carry (a refreshed or touched session), or null. */
  readonly setCookies: string[] | null;
}

export interface AuthRoutesDeps {
  readonly config: GatewayConfig;
  readonly sessions: SessionManager | null;
  readonly clients: ReadonlyMap<string, LoginClient>;
  readonly sealer: Sealer | null;
  readonly verifier: TokenVerifier;
  readonly routes: RouteTable;
  readonly isTrustedProxy: (address: string) => boolean;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /**
   * Bearer token first, then (on routes of a login project; route null: any) the session.
   * null: no credentials (cookies of a dead session are cleared on `reply`).
   */
  identify(request: FastifyRequest, reply: FastifyReply, route: CompiledRoute | null): Promise<Identity | null>;
}

/** What the sealed flow cookie holds (short keys: it rides on every request until the callback). t: created (ms). */
interface FlowCookie { p: string; s: string; n: string; v: string; r: string; e: string | null; t: number }

/** Logins pending per browser: each visit adds a flow cookie, so unbounded visits would fill the cookie jar. */
const MAX_PENDING_FLOWS = 3;
/** Longest redirect target kept in a flow cookie (longer ones lose their query, then fall back to /). */
const MAX_REDIRECT_CHARS = 1024;

function boundedTarget(target: string): string {
  if (target.length <= MAX_REDIRECT_CHARS) return target;
  const q = target.search(/[?#]/);
  const path = q === -1 ? target : target.slice(0, q);
  return path.length <= MAX_REDIRECT_CHARS ? path : '/';
}

const FLOW_PURPOSE = 'flow';
const IDP_ERROR = /^[a-z_]{1,64}$/;

class LoginUnavailableError extends GatewayError {
  constructor(detail: string) {
    super(503, 'Service unavailable: the identity provider cannot be reached', { detail, headers: { 'retry-after': '5' } });
  }
}

class LoginFailedError extends GatewayError {
  constructor(detail: string) { super(400, 'Bad request: login failed', { detail }); }
}

function sameSecret(a: string, b: string): boolean {
  // Hashing first gives equal lengths, so the comparison time says nothing about either value.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function withError(target: string, code: string): string {
  const hash = target.indexOf('#');
  const base = hash === -1 ? target : target.slice(0, hash);
  return `${base}${base.includes('?') ? '&' : '?'}error=${encodeURIComponent(code)}`;
}

function redirect(reply: FastifyReply, status: 302 | 303, location: string, setCookies: readonly string[]): FastifyReply {
  if (setCookies.length > 0) void reply.header('set-cookie', [...setCookies]);
  return reply.code(status).header('location', location).header('cache-control', 'no-store').send();
}

function sendData(reply: FastifyReply, data: unknown, setCookies: readonly string[] | null = null): FastifyReply {
  if (setCookies !== null && setCookies.length > 0) void reply.header('set-cookie', [...setCookies]);
  return reply.header('cache-control', 'no-store').type('application/json').send(JSON.stringify({ data }));
}

export function registerAuthRoutes(app: FastifyInstance, deps: AuthRoutesDeps): void {
  const { config, sessions, clients, sealer, verifier, clock, logger, metrics } = deps;
  const login: LoginConfig | null = config.login;
  const publicUrl = config.server.publicUrl;
  const allowed = login?.allowedRedirectOrigins ?? [];
  const callbackUri = `${publicUrl}/auth/callback`;

  function query(request: FastifyRequest, route: string): URLSearchParams {
    const target = parseTarget(request.raw.url!);
    request.outcome = { route, decision: 'pending', sub: null, path: target.path };
    return new URLSearchParams(target.query);
  }

  function projectClient(name: string | null): LoginClient {
    if (login === null) throw new NotFoundError();
    const names = Object.keys(login.projects);
    const chosen = name ?? (names.length === 1 ? names[0]! : null);
    if (chosen === null) throw new BadRequestError('Bad request: project is required');
    const client = clients.get(chosen);
    if (client === undefined) throw new NotFoundError();
    return client;
  }

  /**
   * Flow cookies to clear so that, with the one being added, at most MAX_PENDING_FLOWS remain:
   * unreadable or expired ones first, then the oldest.
   */
  function staleFlows(present: Readonly<Record<string, string>>, now: number): string[] {
    const prefix = `${sessions!.names.stem}-flow-`;
    const flows: Array<{ name: string; t: number }> = [];
    for (const name of Object.keys(present)) {
      if (!name.startsWith(prefix)) continue;
      const f = sealer!.open<FlowCookie>(FLOW_PURPOSE, present[name]!, now);
      flows.push({ name, t: f !== null && typeof f.t === 'number' ? f.t : -Infinity });
    }
    flows.sort((a, b) => b.t - a.t);
    return flows.slice(MAX_PENDING_FLOWS - 1).map((f) => f.name);
  }

  /** Absolute form of a safeRedirect() result (the IdP needs one for post_logout_redirect_uri). */
  const absolute = (target: string): string => new URL(target, publicUrl).href;

  // ---- the login flow --------------------------------------------------------------------------

  app.get('/auth/login', async (request, reply) => {
    const q = query(request, '/auth/login');
    const client = projectClient(q.get('project'));
    const project = client.project;
    const target = boundedTarget(safeRedirect(q.get('redirect'), publicUrl, allowed));
    const errorParam = q.get('errorRedirect');
    const errorTarget = errorParam !== null ? boundedTarget(safeRedirect(errorParam, publicUrl, allowed)) : project.errorRedirect;

    const flow = client.newFlow();
    let url: URL;
    try {
      url = await client.authorizationUrl(flow);
    } catch (err) {
      throw new LoginUnavailableError(err instanceof IdpUnavailableError ? err.message : describe(err));
    }
    const now = clock();
    const sealed = sealer!.seal(FLOW_PURPOSE, {
      p: project.name, s: flow.state, n: flow.nonce, v: flow.verifier, r: target, e: errorTarget, t: now,
    } satisfies FlowCookie, now + login!.flowTtlSec * 1000);
    request.outcome.decision = 'login';
    const names = sessions!.names;
    const stale = staleFlows(sessions!.cookies(request.raw.headers.cookie), now);
    return redirect(reply, 302, url.href, [
      ...stale.map((name) => simpleCookie(names, name, '', 0)),
      simpleCookie(names, names.flow(flow.state), sealed, login!.flowTtlSec),
    ]);
  });

  app.get('/auth/callback', async (request, reply) => {
    const q = query(request, '/auth/callback');
    if (login === null || sessions === null) throw new NotFoundError();
    const state = q.get('state');
    if (state === null || state === '' || state.length > 512) {
      metrics.login('-', 'no_state');
      throw new LoginFailedError('callback without state');
    }
    const cookies = sessions.cookies(request.raw.headers.cookie);
    const flowName = sessions.names.flow(state);
    const sealed = cookies[flowName];
    const flow = sealed === undefined ? null : sealer!.open<FlowCookie>(FLOW_PURPOSE, sealed, clock());
    // Without its flow cookie a callback is someone else's grant (or an expired one): refused.
    if (flow === null || typeof flow.s !== 'string' || !sameSecret(flow.s, state)) {
      metrics.login(flow?.p ?? '-', 'no_flow');
      throw new LoginFailedError(flow === null ? 'no login flow for this state in this browser' : 'state mismatch');
    }
    const clearFlow = simpleCookie(sessions.names, flowName, '', 0);
    const client = clients.get(flow.p);

    const fail = (outcome: string, detail: string, code = 'login_failed'): FastifyReply => {
      logger.warn({ project: flow.p, reason: detail }, 'login failed');
      metrics.login(flow.p, outcome);
      request.outcome.decision = 'login_failed';
      if (flow.e !== null) return redirect(reply, 302, withError(flow.e, code), [clearFlow]);
      void reply.header('set-cookie', [clearFlow]);
      throw new LoginFailedError(detail);
    };

    if (client === undefined) return fail('no_project', 'login project no longer configured');
    const idpError = q.get('error');
    if (idpError !== null) return fail('idp_error', 'identity provider returned an error', IDP_ERROR.test(idpError) ? idpError : 'login_failed');

    const secrets: FlowSecrets = { state: flow.s, nonce: flow.n, verifier: flow.v };
    let principal: Principal;
    let tokens;
    try {
      tokens = await client.exchange(new URL(`${callbackUri}?${q.toString()}`), secrets);
      principal = await verifier.verify(tokens.accessToken);
    } catch (err) {
      return fail('exchange_failed', describe(err));
    }
    if (tokens.claims !== null && tokens.claims.sub !== principal.sub) return fail('subject_mismatch', 'ID token and access token name different subjects');

    // A new session id at every login; any earlier session in this browser is revoked.
    const previous = await sessions.read(cookies).catch(() => null);
    if (previous !== null) await sessions.store.revoke(previous);
    let setCookies: string[];
    try {
      ({ setCookies } = await sessions.establish(flow.p, tokens, principal, cookies));
    } catch (err) {
      // splitCookie's RangeError: tokens too large for cookies (many groups); redis keeps only an id.
      if (err instanceof RangeError) return fail('too_large', 'session too large for cookies: use login.sessionStore: redis');
      throw err;
    }
    request.outcome.decision = 'login_ok';
    metrics.login(flow.p, 'ok');
    request.outcome.sub = principal.sub;
    logger.info({ project: flow.p, sub: principal.sub }, 'login');
    return redirect(reply, 302, flow.r, [clearFlow, ...setCookies]);
  });

  // ---- logout, userinfo --------------------------------------------------------------------------

  async function logout(request: FastifyRequest, reply: FastifyReply, status: 302 | 303) {
    const q = query(request, '/auth/logout');
    if (login === null || sessions === null) throw new NotFoundError();
    const raw = request.raw;
    if (status === 303 && !sameOriginAllowed('POST', raw.headers.origin, raw.headers.referer, publicUrl, allowed)) {
      throw new GatewayError(403, 'Forbidden: cross-site request');
    }
    const cookies = sessions.cookies(raw.headers.cookie);
    const session = await sessions.read(cookies);
    const setCookies = await sessions.end(session, cookies);
    const target = safeRedirect(q.get('redirect'), publicUrl, allowed);
    request.outcome.decision = 'logout';
    request.outcome.sub = session?.sub ?? null;
    const client = session === null ? undefined : clients.get(session.project);
    const endSession = client === undefined ? null : await client.endSessionUrl(session!.idToken, absolute(target));
    return redirect(reply, status, endSession?.href ?? target, setCookies);
  }
  app.get('/auth/logout', (request, reply) => logout(request, reply, 302));
  app.post('/auth/logout', (request, reply) => logout(request, reply, 303));

  app.get('/auth/userinfo', async (request, reply) => {
    query(request, '/auth/userinfo');
    if (sessions === null) throw new NotFoundError();
    const r = await sessions.authenticate(sessions.cookies(request.raw.headers.cookie), null);
    if (r.session === null) {
      if (r.setCookies !== null) void reply.header('set-cookie', r.setCookies);
      throw new MissingTokenError();
    }
    const s = r.session;
    request.outcome.decision = 'allow';
    request.outcome.sub = s.sub;
    return sendData(reply, {
      sub: s.sub, name: s.name, email: r.principal.email, groups: r.principal.groups, project: s.project,
      expiresAt: sessionExpiry(s, login!.idleTimeoutSec * 1000),
    }, r.setCookies);
  });

  // ---- forward-auth ------------------------------------------------------------------------------

  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: '/auth/verify',
    handler: async (request, reply) => {
      query(request, '/auth/verify');
      const raw = request.raw;
      let method: string | null = null;
      let uri: string | null = null;
      // Only a trusted proxy may say which request it is asking about.
      if (deps.isTrustedProxy(raw.socket.remoteAddress ?? '')) {
        const h = raw.headers;
        const fam = h['x-forwarded-method'] !== undefined || h['x-forwarded-uri'] !== undefined
          ? [h['x-forwarded-method'], h['x-forwarded-uri']]
          : [h['x-original-method'], h['x-original-uri']];
        const [m, u] = fam.map((v) => (Array.isArray(v) ? v[0] : v));
        if ((m === undefined) !== (u === undefined)) throw new BadRequestError('Bad request: forwarded method and URI must come together');
        if (m !== undefined && u !== undefined) {
          if (!/^[A-Z]{1,16}$/.test(m)) throw new BadRequestError('Bad request: malformed forwarded method');
          method = m;
          uri = u;
        }
      }
      let route: CompiledRoute | null = null;
      if (uri !== null) {
        const target = parseTarget(uri);
        route = deps.routes.match(target.path);
        request.outcome.path = target.path;
        if (route === null) throw new InsufficientScopeError();
        request.outcome.route = `/auth/verify ${route.id}`;
        if (route.isPublic) {
          request.outcome.decision = 'public';
          return reply.code(200).header('cache-control', 'no-store').send();
        }
      }
      const id = await deps.identify(request, reply, route);
      if (id === null) throw new MissingTokenError();
      if (id.setCookies !== null) void reply.header('set-cookie', id.setCookies);
      request.outcome.sub = id.principal.sub;
      if (route !== null && !isAllowed(route, method!, id.principal)) throw new InsufficientScopeError();
      request.outcome.decision = 'allow';
      const p = id.principal;
      void reply.header('x-auth-request-user', p.sub).header('x-auth-request-groups', p.groupsHeader);
      if (p.email !== null) void reply.header('x-auth-request-email', p.email);
      return reply.code(200).header('cache-control', 'no-store').send();
    },
  });

  // ---- CDP's legacy pair ----------------------------------------------------------------------------

  app.get('/login/url', async (request, reply) => {
    const q = query(request, '/login/url');
    const name = q.get('project');
    if (name === null || name === '') throw new BadRequestError('Bad request: project is required');
    const client = login === null ? undefined : clients.get(name);
    if (client === undefined) throw new NotFoundError();
    const params = new URLSearchParams({ project: name, redirect: safeRedirect(q.get('redirectUrl'), publicUrl, allowed) });
    const errorUrl = q.get('errorRedirectUrl');
    if (errorUrl !== null) params.set('errorRedirect', safeRedirect(errorUrl, publicUrl, allowed));
    request.outcome.decision = 'public';
    return sendData(reply, { url: `${publicUrl}/auth/login?${params.toString()}` });
  });

  app.get('/login/token', async (request, reply) => {
    query(request, '/login/token');
    let id: Identity | null;
    try {
      id = await deps.identify(request, reply, null);
    } catch (err) {
      // An invalid token is an answer here ("not logged in"), not an error; outages still are.
      if (err instanceof GatewayError && err.status === 401) id = null;
      else throw err;
    }
    request.outcome.decision = id === null ? 'unauthenticated' : 'allow';
    if (id === null) return sendData(reply, { loggedIn: false, user: null, project: null, expiresAt: null });
    const p = id.principal;
    request.outcome.sub = p.sub;
    // A session's project and expiry; a bearer token's exp and the login project its issuer signs for.
    const project = id.session?.project ?? (login === null ? null : Object.values(login.projects).find((lp) => lp.issuer === p.issuer)?.name ?? null);
    const expiresAt = id.session === null ? p.expiresAt : sessionExpiry(id.session, login!.idleTimeoutSec * 1000);
    return sendData(reply, { loggedIn: true, user: p.sub, project, expiresAt }, id.setCookies);
  });
}
