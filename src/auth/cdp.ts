// CDP's legacy login pair, answering in CDP's {"data":{…}} shape:
//   /login/url   → {"data":{"url":"<gateway login URL>"}}
//   /login/token → {"data":{"loggedIn":…,"user":…,"project":…,"expiresAt":…}}
// /login/token asks the pipeline (authentication only); an invalid token or dead session is an
// answer here ("not logged in"), not an error, while outages still are.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BadRequestError, NotFoundError, isAuthenticationFailure } from '../errors.js';
import { decide } from '../pipeline/decide.js';
import { parseTarget } from '../request/target.js';
import { safeRedirect } from '../session/redirect.js';
import { sessionExpiry } from '../session/store.js';
import type { StateHolder } from '../state.js';
import { newOutcome, refuse } from '../http/respond.js';

export function sendData(reply: FastifyReply, data: unknown, setCookies: readonly string[] | null = null): FastifyReply {
  if (setCookies !== null && setCookies.length > 0) void reply.header('set-cookie', [...setCookies]);
  return reply.header('cache-control', 'no-store').type('application/json').send(JSON.stringify({ data }));
}

export function registerCdpLogin(app: FastifyInstance, holder: StateHolder): void {
  app.get('/login/url', async (request, reply) => {
    const { config } = holder.current;
    const outcome = newOutcome(request, '/login/url');
    const target = parseTarget(request.raw.url!);
    outcome.path = target.path;
    const q = new URLSearchParams(target.query);
    const login = config.login;
    // As /auth/login: the project may be left out when there is only one.
    const names = login === null ? [] : Object.keys(login.projects);
    const name = q.get('project') ?? (names.length === 1 ? names[0]! : null);
    if (name === null || name === '') throw new BadRequestError('Bad request: project is required');
    if (login === null || !Object.hasOwn(login.projects, name)) throw new NotFoundError();
    const { publicUrl } = config.server;
    const params = new URLSearchParams({ project: name, redirect: safeRedirect(q.get('redirectUrl'), publicUrl, login.allowedRedirectOrigins) });
    const errorUrl = q.get('errorRedirectUrl');
    if (errorUrl !== null) params.set('errorRedirect', safeRedirect(errorUrl, publicUrl, login.allowedRedirectOrigins));
    outcome.decision = 'public';
    return sendData(reply, { url: `${publicUrl}/auth/login?${params.toString()}` });
  });

  // decide() judges the Host (request/observe.ts).
  app.get('/login/token', { config: { decidesHost: true } }, async (request, reply) => {
    const state = holder.current;
    const raw = request.raw;
    const outcome = newOutcome(request, '/login/token');
    outcome.path = parseTarget(raw.url!).path;
    const v = await decide(state, { entry: 'token', method: 'GET', target: null, headers: raw.headers, rawHeaders: raw.rawHeaders, httpVersion: raw.httpVersion, loginReturn: null });
    if (!v.ok && !isAuthenticationFailure(v.error)) return refuse(reply, v);
    if (!v.ok || v.principal === null) {
      outcome.decision = 'unauthenticated';
      outcome.reason = v.ok ? null : v.error.code;
      return sendData(reply, { loggedIn: false, user: null, project: null, expiresAt: null }, v.setCookies);
    }
    const p = v.principal;
    outcome.decision = 'allow';
    outcome.sub = p.sub;
    const login = state.config.login;
    // A session's project and expiry; a bearer token's exp and the login project its issuer signs for.
    const project = v.session?.project
      ?? (login === null ? null : Object.values(login.projects).find((lp) => lp.issuer === p.issuer)?.name ?? null);
    const expiresAt = v.session === null ? p.expiresAt : sessionExpiry(v.session, login!.idleTimeoutSec * 1000);
    return sendData(reply, { loggedIn: true, user: p.sub, project, expiresAt }, v.setCookies);
  });
}
