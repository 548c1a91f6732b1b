// The login plugin, registered when `login` is configured: the login flow (/auth/login → IdP →
// /auth/callback), logout and userinfo. Forward-auth is src/auth/verify.ts, CDP's legacy pair
// src/auth/cdp.ts. Every handler reads the current gateway state (a reload that removes `login`
// makes these 404). Nothing here ever puts a token in a URL or accepts one from it (parseTarget
// refuses access_token), and no code, state or verifier is ever logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { BadRequestError, CrossSiteError, GatewayError, IdpFailedError, NotFoundError, NotSignedInError } from '../errors.js';
import { parseTarget } from '../request/target.js';
import type { Principal } from '../token/principal.js';
import type { StateHolder, LoginState } from '../state.js';
import { newOutcome } from '../http/respond.js';
import { answerOnArrival } from '../http/answer-on-arrival.js';
import { sendData } from '../auth/cdp.js';
import { simpleCookie } from './cookies.js';
import { describe, idpFailure, IdpUnavailableError, type FlowSecrets, type LoginClient } from './oidc.js';
import { safeRedirect } from './redirect.js';
import { sameOriginAllowed } from './origin.js';
import { sessionExpiry } from './store.js';

export interface LoginRoutesDeps {
  readonly holder: StateHolder;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
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
    super(503, 'Service unavailable: the identity provider cannot be reached', { detail, code: 'idp_unavailable', headers: { 'retry-after': '5' } });
  }
}

class LoginFailedError extends GatewayError {
  constructor(detail: string) { super(400, 'Bad request: login failed', { detail, code: 'login_failed' }); }
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

/** What the handlers need of the current state (taken once per request). */
interface Current {
  readonly ls: LoginState;
  readonly publicUrl: string;
  readonly allowed: readonly string[];
  readonly verifier: import('../token/verify.js').TokenVerifier;
}

function current(holder: StateHolder): Current {
  const s = holder.current;
  if (s.login === null) throw new NotFoundError();
  return { ls: s.login, publicUrl: s.config.server.publicUrl, allowed: s.login.config.allowedRedirectOrigins, verifier: s.verifier };
}

function query(request: FastifyRequest, route: string): URLSearchParams {
  const target = parseTarget(request.raw.url!);
  newOutcome(request, route).path = target.path;
  return new URLSearchParams(target.query);
}

function projectClient(ls: LoginState, name: string | null): LoginClient {
  const names = Object.keys(ls.config.projects);
  const chosen = name ?? (names.length === 1 ? names[0]! : null);
  if (chosen === null) throw new BadRequestError('Bad request: project is required');
  const client = ls.clients.get(chosen);
  if (client === undefined) throw new NotFoundError();
  return client;
}

/**
 * Flow cookies to clear so that, with the one being added, at most MAX_PENDING_FLOWS remain:
 * unreadable or expired ones first, then the oldest.
 */
function staleFlows(ls: LoginState, present: Readonly<Record<string, string>>, now: number): string[] {
  const { sessions, sealer } = ls;
  const prefix = `${sessions.names.stem}-flow-`;
  const flows: Array<{ name: string; t: number }> = [];
  for (const name of Object.keys(present)) {
    if (!name.startsWith(prefix)) continue;
    const f = sealer.open<FlowCookie>(FLOW_PURPOSE, present[name]!, now);
    flows.push({ name, t: f !== null && typeof f.t === 'number' ? f.t : -Infinity });
  }
  flows.sort((a, b) => b.t - a.t);
  return flows.slice(MAX_PENDING_FLOWS - 1).map((f) => f.name);
}

/** Absolute form of a safeRedirect() result (the IdP needs one for post_logout_redirect_uri). */
const absolute = (target: string, publicUrl: string): string => new URL(target, publicUrl).href;

// ---- the login flow --------------------------------------------------------------------------

/** /auth/login: a new flow (PKCE, state, nonce) sealed in its own cookie, then on to the IdP. */
async function startLogin(deps: LoginRoutesDeps, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const q = query(request, '/auth/login');
  const { ls, publicUrl, allowed } = current(deps.holder);
  const { sessions, sealer } = ls;
  const client = projectClient(ls, q.get('project'));
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
  const now = deps.clock();
  const sealed = sealer.seal(FLOW_PURPOSE, {
    p: project.name, s: flow.state, n: flow.nonce, v: flow.verifier, r: target, e: errorTarget, t: now,
  } satisfies FlowCookie, now + ls.config.flowTtlSec * 1000);
  request.outcome.decision = 'login';
  const names = sessions.names;
  const stale = staleFlows(ls, sessions.cookies(request.raw.headers.cookie), now);
  return redirect(reply, 302, url.href, [
    ...stale.map((name) => simpleCookie(names, name, '', 0)),
    simpleCookie(names, names.flow(flow.state), sealed, ls.config.flowTtlSec),
  ]);
}

/** /auth/callback: this browser's flow, the code exchange, a new session, back where it started. */
async function finishLogin(deps: LoginRoutesDeps, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { clock, logger, metrics } = deps;
  const q = query(request, '/auth/callback');
  const { ls, publicUrl, verifier } = current(deps.holder);
  const { sessions, sealer, clients } = ls;
  const callbackUri = `${publicUrl}/auth/callback`;
  const state = q.get('state');
  if (state === null || state === '' || state.length > 512) {
    metrics.login('-', 'no_state');
    throw new LoginFailedError('callback without state');
  }
  const cookies = sessions.cookies(request.raw.headers.cookie);
  const flowName = sessions.names.flow(state);
  const sealed = cookies[flowName];
  const flow = sealed === undefined ? null : sealer.open<FlowCookie>(FLOW_PURPOSE, sealed, clock());
  // Without its flow cookie a callback is someone else's grant (or an expired one): refused.
  if (flow === null || typeof flow.s !== 'string' || !sameSecret(flow.s, state)) {
    metrics.login(flow?.p ?? '-', 'no_flow');
    // A cookie of that name that cannot be used (sent twice, tampered, expired) is cleared.
    if (sealed !== undefined) void reply.header('set-cookie', [simpleCookie(sessions.names, flowName, '', 0)]);
    throw new LoginFailedError(flow === null ? 'no login flow for this state in this browser' : 'state mismatch');
  }
  const clearFlow = simpleCookie(sessions.names, flowName, '', 0);
  const client = clients.get(flow.p);

  const fail = (outcome: string, detail: string, code = 'login_failed', error: GatewayError = new LoginFailedError(detail)): FastifyReply => {
    logger.warn({ project: flow.p, reason: detail }, 'login failed');
    metrics.login(flow.p, outcome);
    request.outcome.decision = 'login_failed';
    if (flow.e !== null) return redirect(reply, 302, withError(flow.e, code), [clearFlow]);
    void reply.header('set-cookie', [clearFlow]);
    throw error;
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
    // The IdP down or failing is not a bad request: 502 (504 on timeout), or error=idp_unavailable.
    const down = idpFailure(err);
    if (down === null) return fail('exchange_failed', describe(err));
    const detail = `identity provider ${down}: ${describe(err)}`;
    return fail('idp_unavailable', detail, 'idp_unavailable', new IdpFailedError(down === 'timeout', detail));
  }
  if (tokens.claims !== null && tokens.claims.sub !== principal.sub) return fail('subject_mismatch', 'ID token and access token name different subjects');

  // A new session id at every login; any earlier session in this browser is revoked.
  const previous = await sessions.read(cookies).catch(() => null);
  if (previous !== null) await sessions.revoke(previous);
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
}

// ---- logout, userinfo --------------------------------------------------------------------------

/** /auth/logout (GET 302, POST 303 with a same-origin check): revoked here, then the IdP's end_session. */
async function logout(deps: LoginRoutesDeps, request: FastifyRequest, reply: FastifyReply, status: 302 | 303): Promise<FastifyReply> {
  const q = query(request, '/auth/logout');
  const { ls, publicUrl, allowed } = current(deps.holder);
  const { sessions, clients } = ls;
  const raw = request.raw;
  if (status === 303 && !sameOriginAllowed('POST', raw.headers.origin, raw.headers.referer, publicUrl, allowed)) {
    throw new CrossSiteError();
  }
  const cookies = sessions.cookies(raw.headers.cookie);
  const session = await sessions.read(cookies);
  const setCookies = await sessions.end(session, cookies);
  const target = safeRedirect(q.get('redirect'), publicUrl, allowed);
  request.outcome.decision = 'logout';
  request.outcome.sub = session?.sub ?? null;
  const client = session === null ? undefined : clients.get(session.project);
  const endSession = client === undefined ? null : await client.endSessionUrl(absolute(target, publicUrl));
  return redirect(reply, status, endSession?.href ?? target, setCookies);
}

/** /auth/userinfo: the session's identity, refreshed like any session request. */
async function userinfo(deps: LoginRoutesDeps, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  query(request, '/auth/userinfo');
  const { ls } = current(deps.holder);
  const { sessions } = ls;
  const r = await sessions.authenticate(sessions.cookies(request.raw.headers.cookie), null);
  if (r.session === null) {
    if (r.setCookies !== null) void reply.header('set-cookie', r.setCookies);
    throw new NotSignedInError();
  }
  const s = r.session;
  request.outcome.decision = 'allow';
  request.outcome.sub = s.sub;
  return sendData(reply, {
    sub: s.sub, name: s.name, email: r.principal.email, groups: r.principal.groups, project: s.project,
    expiresAt: sessionExpiry(s, ls.config.idleTimeoutSec * 1000),
  }, r.setCookies);
}

export function registerLoginRoutes(app: FastifyInstance, deps: LoginRoutesDeps): void {
  app.get('/auth/login', (request, reply) => startLogin(deps, request, reply));
  app.get('/auth/callback', (request, reply) => finishLogin(deps, request, reply));
  app.get('/auth/logout', (request, reply) => logout(deps, request, reply, 302));
  // Answered on arrival: logout reads no body, so a body's Content-Type (even a malformed one,
  // which Fastify would refuse with 415 before any handler) never stands between a user and logout.
  app.route({ method: 'POST', url: '/auth/logout', ...answerOnArrival((request, reply) => logout(deps, request, reply, 303)) });
  app.get('/auth/userinfo', (request, reply) => userinfo(deps, request, reply));
}
