// The gateway on one screen. Every way in asks one decision function (src/pipeline/decide.ts):
//   method → request target → route → bearer token | session cookie → cross-site check
//     → allow rules → credential
// and thin transports answer: the proxy handler (src/http/proxy-handler.ts), forward-auth
// (src/auth/verify.ts), CDP's legacy pair (src/auth/cdp.ts) and the login plugin
// (src/session/routes.ts, only when `login` is configured). Everything derived from config lives
// in one immutable GatewayState (src/state.ts) read through one reference; reload() swaps it.
// Errors thrown anywhere are GatewayErrors, answered in CDF's shape by src/http/respond.ts.
import type { FastifyInstance } from 'fastify';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { DestinationStream, Logger } from 'pino';
import type { GatewayConfig } from './config/types.js';
import { systemClock, type Clock } from './clock.js';
import { ALLOWED_METHOD_LIST, MethodNotAllowedError, NotFoundError, isAllowedMethod } from './errors.js';
import { createLoggers, type AccessLine } from './log.js';
import { createMetrics, type PromMetrics } from './metrics.js';
import { createAdmin } from './admin.js';
import { buildState, retireState, StateHolder, type GatewayState } from './state.js';
import { decisionFor, installErrorHandling, newOutcome } from './http/respond.js';
import { proxyHandler } from './http/proxy-handler.js';
import { answerOnArrival } from './http/answer-on-arrival.js';
import { createApp } from './http/app.js';
import { pageDepsOf } from './http/pages.js';
import { corsHook } from './http/cors.js';
import { registerForwardAuth } from './auth/verify.js';
import { registerCdpLogin } from './auth/cdp.js';
import { registerLoginRoutes } from './session/routes.js';
import { registerBackchannelLogout } from './session/backchannel.js';
import { keepListeners, listenerChanges } from './reload.js';
import { SocketRegistry } from './http/sockets.js';
import { upgradeHandler } from './http/upgrade.js';
import { decideUpgrade } from './http/upgrade-decide.js';
import { observeRequests, refuseBadHost } from './request/observe.js';
import { clientIp } from './request/client-ip.js';
import { hostRefusal } from './request/host.js';
import { setContextReach } from './request/context.js';
import { startTracing, type ActiveTracing } from './tracing.js';
import { startupSummary } from './startup.js';

export interface GatewayOptions {
  /** Where JSON log lines go (default: stdout). */
  logStream?: DestinationStream;
  clock?: Clock;
  fetch?: typeof fetch;
  /** Tests: export spans here (tracing on even without a `tracing:` section). */
  spanExporter?: import('@opentelemetry/sdk-trace').SpanExporter;
}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly admin: FastifyInstance;
  readonly metrics: PromMetrics;
  readonly logger: Logger;
  /** The state requests are decided on now. */
  readonly state: GatewayState;
  /** Binds both listeners; returns their base URLs. */
  listen(): Promise<{ url: string; adminUrl: string }>;
  /**
   * Applies a new (validated) configuration: the next request is decided on it, in-flight ones
   * finish on the old state. Listener settings need a restart: they are reported, not applied.
   */
  reload(config: GatewayConfig): Promise<void>;
  /** Stops accepting, drains in-flight requests, closes upstream pools. */
  close(): Promise<void>;
}

/** The routes, in the order a request meets them: CORS preflights, methods it does not forward, the gateway's own endpoints, the proxy. */
function registerRoutes(app: FastifyInstance, holder: StateHolder, deps: { clock: Clock; logger: Logger; metrics: PromMetrics; login: boolean }): void {
  // A 404 (a path no route serves) judges the Host first, as every endpoint does.
  app.setNotFoundHandler({ preHandler: refuseBadHost }, (request) => {
    newOutcome(request).decision = 'not_found';
    throw new NotFoundError();
  });
  // CORS preflights are answered before any route handler (http/cors.ts).
  app.addHook('onRequest', corsHook(() => holder.current, (request, route, path, decision) => {
    const o = newOutcome(request, route);
    o.path = path;
    o.decision = decision;
  }));
  // The proxy's routes take only the methods it forwards: any other method (PROPFIND, PURGE,
  // TRACE, QUERY…) gets 405 here, on every path, before Fastify looks at a body: it treats QUERY
  // as a body method and would refuse one without a Content-Type (or with a malformed one) itself.
  app.addHook('onRequest', (request, _reply, done) => {
    const method = request.raw.method!;
    if (isAllowedMethod(method)) { done(); return; }
    const badHost = hostRefusal(request.raw.rawHeaders, request.raw.httpVersion); // 400 first, as everywhere
    if (badHost !== null) { done(badHost); return; }
    newOutcome(request).decision = 'not_allowed';
    done(new MethodNotAllowedError(method));
  });
  registerForwardAuth(app, holder);
  registerCdpLogin(app, holder);
  if (deps.login) {
    registerLoginRoutes(app, { holder, clock: deps.clock, logger: deps.logger, metrics: deps.metrics });
    registerBackchannelLogout(app, { holder, clock: deps.clock, logger: deps.logger });
  }
  // Answered on arrival (http/answer-on-arrival.ts): Fastify's body handling never comes first.
  const route = {
    method: [...ALLOWED_METHOD_LIST],
    config: { decidesHost: true }, // decide() judges the Host (request/observe.ts)
    ...answerOnArrival(proxyHandler(holder)),
  };
  app.route({ ...route, url: '/*' });
  app.route({ ...route, url: '/' });
}

export function createGateway(config: GatewayConfig, opts: GatewayOptions = {}): Gateway {
  const clock = opts.clock ?? systemClock;
  const { logger, access, writeAccess, flushAccess } = createLoggers(config.log, opts.logStream);
  setContextReach(config.log.requestContext, false);
  const metrics = createMetrics();
  const sockets = new SocketRegistry({ clock, metrics });
  // A revoked session (logout, a new login, a refused refresh) closes its WebSockets too.
  const rt = { clock, logger, metrics, onSessionRevoked: (id: string) => sockets.sessionEnded(id), ...(opts.fetch ? { fetch: opts.fetch } : {}) };
  const holder = new StateHolder(buildState(config, rt));
  const { server } = config; // listener settings: fixed for the life of the process
  let accessLog = config.log.accessLog;

  /**
   * One access line and the request metrics for answers made outside Fastify's hooks (CONNECT,
   * client errors, upgrades). `timed` false: no duration is known (a request that timed out has
   * no recorded arrival), so the duration histogram is left out.
   */
  const record = (line: AccessLine, timed = true) => {
    metrics.request(line.route, line.status, line.decision);
    if (line.reason !== null) metrics.refusal(line.route, line.reason);
    if (timed) metrics.requestDuration(line.route, line.status, line.ms / 1000);
    if (accessLog) writeAccess(line);
  };
  /** The access line's client address for a request answered on its raw socket (`headers`: null when none could be parsed). */
  const ipFrom = (peer: string | undefined, headers: IncomingHttpHeaders | null) =>
    clientIp(peer ?? '', headers?.['x-forwarded-for'], (a) => holder.current.isTrustedProxy(a));
  const ipOf = (req: IncomingMessage) => ipFrom(req.socket.remoteAddress, req.headers);
  const app = createApp(server, {
    connect: (req, requestId) => record({
      requestId, ip: ipOf(req), method: req.method, path: null, route: '-', decision: 'not_allowed', reason: 'method_not_allowed', sub: null, status: 405, ms: 0,
    }),
    // Nothing was parsed (method and path unknown), unless a request timed out while in flight.
    clientError: ({ req, peer, requestId, status, reason }) => record({
      requestId, ip: ipFrom(peer, req?.headers ?? null), method: req?.method ?? null, path: null, route: '-', decision: decisionFor(status), reason, sub: null, status, ms: 0,
    }, status !== 408),
    badTarget: (req, requestId) => record({
      requestId, ip: ipOf(req), method: req.method ?? null, path: null, route: '-', decision: 'invalid', reason: 'ambiguous_path', sub: null, status: 400, ms: 0,
    }),
  });
  // First hook of all: request id, request context (log lines, spans), in-flight gauge; at the
  // end the access line and the request metrics.
  let tracing: ActiveTracing | null = null;
  observeRequests(app, { metrics, writeAccess, accessLog: () => accessLog, isTrustedProxy: (a) => holder.current.isTrustedProxy(a), tracing: () => tracing });
  installErrorHandling(app, logger, () => pageDepsOf(holder.current));
  registerRoutes(app, holder, { clock, logger, metrics, login: config.login !== null });
  // WebSockets: decided like a GET on their route, then tunnelled (http/upgrade.ts).
  app.server.on('upgrade', upgradeHandler({
    sockets, server: app.server, decide: decideUpgrade(holder),
    record: (req, o) => record({ requestId: o.requestId, ip: ipOf(req), method: req.method, path: o.path, route: o.route, decision: o.decision, reason: o.reason, sub: o.sub, status: o.status, ms: o.ms, upgrade: 'websocket' }),
    onError: (err) => logger.error({ err }, 'unexpected error in a WebSocket upgrade'),
  }));
  app.addHook('preClose', async () => { sockets.closeAll(); });
  // Upstream pools close once the server has drained (onClose runs after the listener closes).
  app.addHook('onClose', async () => { await retireState(holder.current, null); });

  let closing = false;
  const admin = createAdmin({ config: config.admin, metrics, verifier: () => holder.current.verifier, isClosing: () => closing });

  return {
    app, admin, metrics, logger,
    get state() { return holder.current; },
    async listen() {
      // Tracing first (its SDK loads only when configured), then Redis: loading node-redis blocks the
      // event loop long enough to time out a JWKS fetch started alongside it.
      tracing = await startTracing(config.tracing, opts.spanExporter);
      // Spans need their parent across awaits (a verification, then the upstream call).
      if (tracing !== null) setContextReach(config.log.requestContext, true);
      await holder.current.login?.ready;
      await holder.current.shared.ready;
      void holder.current.verifier.warmUp();
      const url = await app.listen({ host: server.host, port: server.port });
      const adminUrl = await admin.listen({ host: config.admin.host, port: config.admin.port });
      logger.info({ url, adminUrl, ...startupSummary(config) }, 'listening');
      return { url, adminUrl };
    },
    async reload(file) {
      for (const change of listenerChanges(config, file)) logger.warn({ key: change }, 'configuration reload: this setting needs a restart; not applied');
      if ((file.login === null) !== (config.login === null)) logger.warn({ key: 'login' }, 'configuration reload: adding or removing login needs a restart');
      if (JSON.stringify(file.tracing) !== JSON.stringify(config.tracing)) logger.warn({ key: 'tracing' }, 'configuration reload: this setting needs a restart; not applied');
      // What the new state is built from: the listeners as they run (and a derived publicUrl from them).
      const next = keepListeners(config, file);
      const old = holder.current;
      const state = buildState(next, rt, old);
      try {
        await state.login?.ready;
        await state.shared.ready;
      } catch (err) {
        // Not applied: what the new state opened (a redis connection, timers) is closed again.
        await retireState(state, old);
        throw err;
      }
      holder.current = state;
      accessLog = next.log.accessLog;
      logger.level = next.log.level;
      setContextReach(next.log.requestContext, false);
      access.level = next.log.level;
      metrics.configReload('ok');
      logger.info({ routes: next.routes.length, issuers: next.issuers.length }, 'configuration reloaded');
      void state.verifier.warmUp();
      // In-flight requests hold the old state; pools close gracefully, timers stop.
      await retireState(old, state);
    },
    async close() {
      closing = true;
      const closingAt = performance.now();
      // server.close() closes only the connections idle at that moment; keep-alive connections
      // whose request finishes while draining must be closed as they become idle.
      const reaper = setInterval(() => app.server.closeIdleConnections(), 50);
      try { await app.close(); } finally { clearInterval(reaper); }
      await admin.close();
      await tracing?.shutdown();
      flushAccess();
      logger.info({ drainedMs: Math.round(performance.now() - closingAt) }, 'stopped');
      logger.flush();
    },
  };
}
