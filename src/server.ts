// The gateway on one screen: every request passes the stages below in this order.
//   target (canonical path) → route → bearer token | session cookie → verify → authorize
//     → credential → proxy
// The gateway's own endpoints (/auth/*, /login/url, /login/token) are in session/routes.ts.
// Errors thrown anywhere are GatewayErrors, answered in CDF's shape by the one handler here.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import type { GatewayConfig } from './config/types.js';
import { systemClock, type Clock } from './clock.js';
import { ALLOWED_METHODS, BadRequestError, GatewayError, InsufficientScopeError, MethodNotAllowedError, MissingTokenError, NotFoundError, errorBody } from './errors.js';
import { createLoggers } from './log.js';
import { createMetrics, type PromMetrics } from './metrics.js';
import { createAdmin } from './admin.js';
import { parseTarget } from './request/target.js';
import { trustedProxyMatcher } from './request/trust.js';
import { compileRoutes } from './policy/rules.js';
import { isAllowed } from './policy/authorize.js';
import { bearerToken } from './token/bearer.js';
import { TokenVerifier } from './token/verify.js';
import { createCredentialSource, type CredentialSource } from './upstream/credentials.js';
import { createProxy, type ProxyState } from './upstream/proxy.js';
import { Sealer } from './session/seal.js';
import { cookieNames } from './session/cookies.js';
import { createCookieStore, createRedisStore } from './session/store.js';
import { LoginClient } from './session/oidc.js';
import { SessionManager, deferredStore } from './session/manager.js';
import { sameOriginAllowed } from './session/origin.js';
import { registerAuthRoutes, type Identity } from './session/routes.js';
import type { CompiledRoute } from './policy/rules.js';

const MATRIX_PARAMS = /;[^/]*/g;

export interface GatewayOptions {
  /** Where JSON log lines go (default: stdout). */
  logStream?: DestinationStream;
  clock?: Clock;
  fetch?: typeof fetch;
}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly admin: FastifyInstance;
  readonly verifier: TokenVerifier;
  readonly metrics: PromMetrics;
  readonly logger: Logger;
  /** Binds both listeners; returns their base URLs. */
  listen(): Promise<{ url: string; adminUrl: string }>;
  /** Stops accepting, drains in-flight requests, closes upstream pools. */
  close(): Promise<void>;
}

/** What the access log line and the request metric report. */
interface Outcome { route: string; decision: string; sub: string | null; path: string | null }

declare module 'fastify' {
  interface FastifyRequest { outcome: Outcome }
}

export function createGateway(config: GatewayConfig, opts: GatewayOptions = {}): Gateway {
  const clock = opts.clock ?? systemClock;
  const { logger, access } = createLoggers(config.log, opts.logStream);
  const metrics = createMetrics();
  const verifier = new TokenVerifier({
    issuers: config.issuers, tokens: config.tokens, clock, metrics, logger, ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  const routes = compileRoutes(config.routes, config.upstreams);
  const credentials = new Map<string, CredentialSource>();
  const upstreamHosts = new Map<string, string>();
  for (const up of Object.values(config.upstreams)) {
    credentials.set(up.name, createCredentialSource(up, { clock, metrics, logger, ...(opts.fetch ? { fetch: opts.fetch } : {}) }));
    upstreamHosts.set(up.name, new URL(up.url).host);
  }
  const isTrustedProxy = trustedProxyMatcher(config.server.trustedProxies);
  const proxy = createProxy({ maxBodyBytes: config.server.maxBodyBytes, bodyIdleTimeoutMs: config.server.bodyIdleTimeoutMs, metrics, keepAliveTimeoutMs: 30_000, connectTimeoutMs: 10_000 });
  const accessLog = config.log.accessLog;
  const { server, login } = config;

  // Browser login: one OIDC client per project, sessions sealed with the cookie secrets.
  const clients = new Map<string, LoginClient>();
  let sessions: SessionManager | null = null;
  let sealer: Sealer | null = null;
  let storeReady: Promise<void> = Promise.resolve();
  if (login !== null) {
    sealer = new Sealer(login.cookieSecrets);
    for (const p of Object.values(login.projects)) {
      clients.set(p.name, new LoginClient(p, { redirectUri: `${server.publicUrl}/auth/callback`, ...(opts.fetch ? { fetch: opts.fetch } : {}) }));
    }
    const storeOpts = { sealer, idleTimeoutMs: login.idleTimeoutSec * 1000, clock };
    let store;
    if (login.sessionStore === 'redis' && login.redis !== null) {
      const deferred = deferredStore(createRedisStore({ ...storeOpts, ...login.redis, logger }), 'redis');
      storeReady = deferred.ready;
      store = deferred;
    } else {
      store = createCookieStore(storeOpts);
    }
    sessions = new SessionManager({ login, names: cookieNames(server.publicUrl), store, clients, verifier, clock, logger, metrics });
  }
  /**
   * The session cookie's identity, accepted only on routes of that session's login project
   * (route null: any project). Cookies to clear (a dead session) are set on the reply here.
   */
  async function sessionIdentity(request: FastifyRequest, reply: FastifyReply, route: CompiledRoute | null): Promise<Identity | null> {
    const cookie = request.raw.headers.cookie;
    if (sessions === null || (route !== null && route.login === null) || cookie === undefined) return null;
    const r = await sessions.authenticate(sessions.cookies(cookie), route?.login ?? null);
    if (r.session === null) {
      if (r.setCookies !== null) void reply.header('set-cookie', r.setCookies);
      return null;
    }
    return { principal: r.principal, session: r.session, setCookies: r.setCookies };
  }

  /** The caller: a bearer token if one is presented (it always wins), else the session cookie. */
  async function identify(request: FastifyRequest, reply: FastifyReply, route: CompiledRoute | null): Promise<Identity | null> {
    const raw = request.raw;
    const token = bearerToken(raw.headers, raw.rawHeaders);
    if (token !== null) return { principal: await verifier.verify(token), session: null, setCookies: null };
    return sessionIdentity(request, reply, route);
  }

  const app = Fastify({
    logger: false, // one access line per request is written below; Fastify's per-request child loggers are not needed
    http: {
      maxHeaderSize: server.maxHeaderBytes,
      headersTimeout: server.headersTimeoutMs,
      requestTimeout: server.requestTimeoutMs,
      // Node checks the two timeouts above only this often (default 30 s).
      connectionsCheckingInterval: Math.min(1000, server.headersTimeoutMs),
    } as never,
    requestTimeout: server.requestTimeoutMs,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    bodyLimit: 1024 * 1024, // only applies to parsers that buffer; we register none
    routerOptions: { maxParamLength: 65535 },
    frameworkErrors: (err, request, reply) => {
      request.outcome = { route: '-', decision: 'invalid', sub: null, path: null };
      sendError(reply, new BadRequestError('Bad request: malformed request target', err.message));
    },
  });
  app.decorateRequest('outcome', null as unknown as Outcome);
  // Expect: 100-continue — decide first. Node would send 100 Continue before any handler ran;
  // the proxy sends it only once the request is allowed (a refusal is final, body never read).
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res));
  // CONNECT never reaches a route handler (Node hands over the socket): answer 405 on it.
  app.server.on('connect', (req: import('node:http').IncomingMessage, socket: import('node:stream').Duplex) => {
    const body = errorBody(405, 'Method not allowed');
    socket.on('error', () => { /* the client may already be gone */ });
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nAllow: ${ALLOWED_METHODS}\r\nContent-Type: application/json\r\n`
      + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    metrics.request('-', 405, 'method_not_allowed');
    if (accessLog) access.info({ method: req.method, path: null, route: '-', decision: 'method_not_allowed', sub: null, status: 405, ms: 0 }, 'request');
  });
  // Upstream pools close once the server has drained (onClose runs after the listener closes).
  app.addHook('onClose', async () => { await proxy.close(); });

  // Bodies are streamed to the upstream untouched, never parsed or buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const outcome = request.outcome ?? (request.outcome = { route: '-', decision: 'error', sub: null, path: null });
    let gw: GatewayError;
    if (err instanceof GatewayError) {
      gw = err;
    } else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      gw = new GatewayError(err.statusCode, 'Bad request', { detail: err.message });
    } else {
      gw = new GatewayError(500, 'Internal error', { detail: err.message });
      logger.error({ err, route: outcome.route }, 'unexpected error');
    }
    if (outcome.decision === 'pending') outcome.decision = decisionFor(gw.status);
    if (gw.status >= 500 && gw.detail) logger.warn({ route: outcome.route, status: gw.status, detail: gw.detail }, 'request failed');
    else if (gw.detail && logger.isLevelEnabled('debug')) logger.debug({ route: outcome.route, status: gw.status, detail: gw.detail }, 'request refused');
    sendError(reply, gw);
  });

  app.setNotFoundHandler((request, reply) => {
    request.outcome = { route: '-', decision: 'not_found', sub: null, path: null };
    void reply.send(new NotFoundError() as never);
  });

  // Every answer the gateway makes itself (errors, redirects, its endpoints): a request body not
  // (fully) read is never waited for. Answer, then close the connection, so an unread or
  // half-read body can neither hold the connection nor poison its next request.
  app.addHook('onSend', (request, reply, payload, done) => {
    const raw = request.raw;
    if (!raw.complete && hasBody(raw)) void reply.header('connection', 'close');
    done(null, payload);
  });

  app.addHook('onResponse', (request, reply, done) => {
    const o = request.outcome ?? { route: '-', decision: 'error', sub: null, path: null };
    metrics.request(o.route, reply.statusCode, o.decision);
    if (accessLog) {
      access.info({
        method: request.raw.method, path: o.path, route: o.route, decision: o.decision, sub: o.sub,
        status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100,
      }, 'request');
    }
    done();
  });

  async function handle(request: FastifyRequest, reply: FastifyReply) {
    const raw = request.raw;
    const outcome: Outcome = { route: '-', decision: 'pending', sub: null, path: null };
    request.outcome = outcome;

    // TRACE would echo the request the upstream got, injected credential included.
    if (raw.method === 'TRACE' || raw.method === 'CONNECT') throw new MethodNotAllowedError(raw.method);
    const target = parseTarget(raw.url!);
    outcome.path = target.path;
    const route = routes.match(target.path);
    // `;` is an ordinary character here, but servlet-style upstreams drop `;params` from segments:
    // refuse a path whose route would change if they did (so `/admin;x/…` can't dodge `/admin`).
    if (target.path.includes(';') && routes.match(target.path.replace(MATRIX_PARAMS, '')) !== route) {
      throw new BadRequestError('Bad request: ambiguous request path', 'matrix parameters change the route');
    }
    if (route === null) throw new NotFoundError();
    outcome.route = route.id;

    let principal = null;
    let setCookies: string[] | null = null;
    if (!route.isPublic) {
      // Bearer first (the hot path: nothing session-related happens for it).
      const token = bearerToken(raw.headers, raw.rawHeaders);
      if (token !== null) {
        principal = await verifier.verify(token);
      } else {
        const id = await sessionIdentity(request, reply, route);
        if (id === null) {
          // A browser on a login route goes to log in and comes back here; API clients get 401.
          if (route.login !== null && isBrowser(raw.headers) && (raw.method === 'GET' || raw.method === 'HEAD')) {
            outcome.decision = 'login_redirect';
            const back = new URLSearchParams({ project: route.login, redirect: raw.url! });
            return reply.code(302).header('location', `/auth/login?${back.toString()}`).header('cache-control', 'no-store').send();
          }
          throw new MissingTokenError();
        }
        principal = id.principal;
        setCookies = id.setCookies;
        if (setCookies !== null) void reply.header('set-cookie', setCookies);
        // Cookies ride along on cross-site requests (SameSite=Lax still allows some): state
        // changes need proof the page is ours.
        if (!sameOriginAllowed(raw.method!, raw.headers.origin, raw.headers.referer, server.publicUrl, login!.allowedRedirectOrigins)) {
          throw new GatewayError(403, 'Forbidden: cross-site request');
        }
      }
      outcome.sub = principal.sub;
      if (!isAllowed(route, raw.method!, principal)) throw new InsufficientScopeError();
    }
    // RFC 9110 §7.6.2: an OPTIONS with Max-Forwards: 0 is answered here, not forwarded.
    if (raw.method === 'OPTIONS' && raw.headers['max-forwards'] !== undefined) {
      const mf = String(raw.headers['max-forwards']);
      if (!/^[0-9]{1,20}$/.test(mf)) throw new BadRequestError('Bad request: malformed Max-Forwards');
      if (/^0+$/.test(mf)) {
        outcome.decision = principal === null ? 'public' : 'allow';
        if (setCookies !== null) void reply.header('set-cookie', setCookies);
        return reply.code(200).header('allow', ALLOWED_METHODS).header('content-length', '0').send();
      }
    }
    // Public routes get no credential at all: a key holder never lends its key to anonymous callers.
    const source = credentials.get(route.upstream.name)!;
    const credential = principal === null ? null : await source.get(principal);
    outcome.decision = principal === null ? 'public' : 'allow';

    const peer = raw.socket.remoteAddress ?? '';
    const state: ProxyState = {
      route,
      forward: {
        peer, proto: 'http', fromTrustedProxy: isTrustedProxy(peer), principal, credential,
        upstreamHost: upstreamHosts.get(route.upstream.name)!,
      },
      secret: principal === null ? null : source.secret(),
      setCookies,
      startedAt: performance.now(),
      bodyTooLarge: false,
      bodyIdle: false,
    };
    return proxy.forward(request, reply, state, target.path);
  }

  registerAuthRoutes(app, {
    config, sessions, clients, sealer, verifier, routes, isTrustedProxy, clock, logger, metrics, identify,
  });
  app.route({ method: app.supportedMethods as string[], url: '/*', handler: handle });
  app.route({ method: app.supportedMethods as string[], url: '/', handler: handle });

  let closing = false;
  const admin = createAdmin({ config: config.admin, metrics, verifier, isClosing: () => closing });

  return {
    app, admin, verifier, metrics, logger,
    async listen() {
      void verifier.warmUp();
      await storeReady;
      const url = await app.listen({ host: server.host, port: server.port });
      const adminUrl = await admin.listen({ host: config.admin.host, port: config.admin.port });
      logger.info({ url, adminUrl, routes: config.routes.length, issuers: config.issuers.length }, 'listening');
      return { url, adminUrl };
    },
    async close() {
      closing = true;
      // server.close() closes only the connections idle at that moment; keep-alive connections
      // whose request finishes while draining must be closed as they become idle.
      const reaper = setInterval(() => app.server.closeIdleConnections(), 50);
      try { await app.close(); } finally { clearInterval(reaper); }
      await admin.close();
      verifier.close();
      for (const c of credentials.values()) c.close();
      await sessions?.close();
      logger.flush();
    },
  };
}

function sendError(reply: FastifyReply, gw: GatewayError): void {
  void reply.code(gw.status).headers(gw.headers).type('application/json').send(errorBody(gw.status, gw.message));
}

function hasBody(raw: import('node:http').IncomingMessage): boolean {
  const len = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** DESIGN: a browser is a request that accepts HTML and presents no Authorization. */
function isBrowser(headers: import('node:http').IncomingHttpHeaders): boolean {
  const accept = headers.accept;
  return headers.authorization === undefined && accept !== undefined && accept.includes('text/html');
}

function decisionFor(status: number): string {
  switch (status) {
    case 400: return 'invalid';
    case 401: return 'unauthenticated';
    case 403: return 'deny';
    case 404: return 'not_found';
    case 413: return 'too_large';
    default: return status >= 500 ? 'error' : 'invalid';
  }
}
