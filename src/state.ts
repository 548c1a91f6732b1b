// The gateway state: everything derived from one validated configuration (compiled routes, the
// verifier and its key sets, credential sources, the session manager, proxy pools), built by one
// function into one immutable object. The Fastify glue reads it through one reference
// (StateHolder.current); a reload builds a new state and swaps that reference. In-flight
// requests keep the state they started with. Parts whose configuration did not change are
// carried over, so key sets, cached client-credentials tokens, sessions and pools survive.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { GatewayConfig, LoginConfig } from './config/types.js';
import type { Clock } from './clock.js';
import type { Metrics } from './metrics.js';
import { compileRoutes, type RouteTable } from './policy/rules.js';
import { trustedProxyMatcher } from './request/trust.js';
import { TokenVerifier } from './token/verify.js';
import { createCredentialSource, type CredentialSource } from './upstream/credentials.js';
import { createProxy, type Proxy } from './upstream/proxy.js';
import { Sealer } from './session/seal.js';
import { cookieNames } from './session/cookies.js';
import { createCookieStore, createRedisStore, type SessionStore } from './session/store.js';
import { LoginClient } from './session/oidc.js';
import { SessionManager, deferredStore } from './session/manager.js';
import { createSharedState, type SharedState } from './shared/state.js';
import { createPolicyServices, type PolicyRuntime } from './policy/services.js';
import { onRevoke } from './http/sockets.js';

/** Process-wide parts that outlive any one configuration. */
export interface Runtime {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly fetch?: typeof fetch;
  /** Told about every session revoked (its WebSockets close). */
  readonly onSessionRevoked?: (id: string) => void;
}

export interface LoginState {
  readonly config: LoginConfig;
  readonly sealer: Sealer;
  readonly clients: ReadonlyMap<string, LoginClient>;
  readonly sessions: SessionManager;
  readonly store: SessionStore;
  /** Resolves once the session store is usable (redis connects asynchronously). */
  readonly ready: Promise<void>;
}

export interface GatewayState {
  readonly config: GatewayConfig;
  readonly routes: RouteTable;
  readonly verifier: TokenVerifier;
  readonly credentials: ReadonlyMap<string, CredentialSource>;
  /** Host header each upstream receives (host[:port]). */
  readonly upstreamHosts: ReadonlyMap<string, string>;
  readonly isTrustedProxy: (address: string) => boolean;
  readonly login: LoginState | null;
  readonly proxy: Proxy;
  /** What the replicas share through redis (`redis:`), or its in-memory stand-in. */
  readonly shared: SharedState;
  /** What allow rules may ask: CDF's token/inspect (`cdf:`), Graph for Entra groups overage. */
  readonly policy: PolicyRuntime;
}

const same = (a: unknown, b: unknown): boolean => isDeepStrictEqual(a, b);

/**
 * A state for `config`, reusing from `previous` every part whose inputs are unchanged. Throws
 * only on programmer error (the config was validated).
 */
export function buildState(config: GatewayConfig, rt: Runtime, previous: GatewayState | null = null): GatewayState {
  const p = previous?.config;
  const extra = rt.fetch ? { fetch: rt.fetch } : {};
  const verifier = p && same(p.issuers, config.issuers) && same(p.tokens, config.tokens)
    ? previous!.verifier
    : new TokenVerifier({ issuers: config.issuers, tokens: config.tokens, clock: rt.clock, metrics: rt.metrics, logger: rt.logger, ...extra });

  // Its inputs: the redis section and the login settings it seals and times revocations with.
  const sharedKey = (c: GatewayConfig) => [c.redis, c.login?.cookieSecrets, c.login?.sessionTtlSec];
  const shared = p && same(sharedKey(p), sharedKey(config)) ? previous!.shared : createSharedState(config, { clock: rt.clock, logger: rt.logger });

  const credentials = new Map<string, CredentialSource>();
  const upstreamHosts = new Map<string, string>();
  for (const up of Object.values(config.upstreams)) {
    const old = p && Object.hasOwn(p.upstreams, up.name) && same(p.upstreams[up.name], up) && previous!.shared === shared ? previous!.credentials.get(up.name) : undefined;
    credentials.set(up.name, old ?? createCredentialSource(up, { clock: rt.clock, metrics: rt.metrics, logger: rt.logger, shared: shared.tokens, ...extra }));
    upstreamHosts.set(up.name, new URL(up.url).host);
  }

  const proxyOptions = (c: GatewayConfig) => ({ maxBodyBytes: c.server.maxBodyBytes, bodyIdleTimeoutMs: c.server.bodyIdleTimeoutMs });
  const proxy = p && same(proxyOptions(p), proxyOptions(config))
    ? previous!.proxy
    : createProxy({ ...proxyOptions(config), metrics: rt.metrics, keepAliveTimeoutMs: 30_000, connectTimeoutMs: 10_000 });

  // Kept (with its cached CDF and Graph answers) while `cdf` and the issuers are unchanged.
  const policy = p && same(p.cdf, config.cdf) && same(p.issuers, config.issuers)
    ? previous!.policy
    : createPolicyServices(config, { clock: rt.clock, logger: rt.logger, metrics: rt.metrics, ...extra });

  return Object.freeze({
    config,
    policy,
    routes: compileRoutes(config.routes, config.upstreams),
    verifier,
    credentials,
    upstreamHosts,
    isTrustedProxy: trustedProxyMatcher(config.server.trustedProxies),
    login: buildLogin(config, rt, verifier, shared, previous),
    proxy,
    shared,
  });
}

function buildLogin(config: GatewayConfig, rt: Runtime, verifier: TokenVerifier, shared: SharedState, previous: GatewayState | null): LoginState | null {
  const login = config.login;
  if (login === null) return null;
  const prev = previous?.login ?? null;
  const publicUrl = config.server.publicUrl;
  const samePublic = previous?.config.server.publicUrl === publicUrl;
  // Everything unchanged (the verifier included): the whole login state carries over.
  if (prev !== null && samePublic && same(prev.config, login) && previous!.verifier === verifier && previous!.shared === shared) return prev;

  const sealer = new Sealer(login.cookieSecrets);
  const clients = new Map<string, LoginClient>();
  for (const project of Object.values(login.projects)) {
    const old = prev !== null && samePublic ? prev.clients.get(project.name) : undefined;
    clients.set(project.name, old !== undefined && same(old.project, project)
      ? old
      : new LoginClient(project, { redirectUri: `${publicUrl}/auth/callback`, ...(rt.fetch ? { fetch: rt.fetch } : {}) }));
  }
  // The store keeps sessions (redis) and cookie-store revocations: kept while its inputs hold.
  const storeKey = (l: LoginConfig) => [l.sessionStore, l.redis, l.cookieSecrets, l.idleTimeoutSec];
  let store: SessionStore;
  let ready: Promise<void>;
  if (prev !== null && same(storeKey(prev.config), storeKey(login))) {
    store = prev.store;
    ready = prev.ready;
  } else {
    const storeOpts = { sealer, idleTimeoutMs: login.idleTimeoutSec * 1000, clock: rt.clock };
    if (login.sessionStore === 'redis' && login.redis !== null) {
      const deferred = deferredStore(createRedisStore({ ...storeOpts, ...login.redis, logger: rt.logger }), 'redis');
      store = deferred;
      ready = deferred.ready;
    } else {
      store = createCookieStore(storeOpts);
      ready = Promise.resolve();
    }
    if (rt.onSessionRevoked !== undefined) store = onRevoke(store, rt.onSessionRevoked);
  }
  const sessions = new SessionManager({
    login, names: cookieNames(publicUrl), store, clients, verifier, clock: rt.clock, logger: rt.logger, metrics: rt.metrics,
    revocations: shared.revocations!, coordinator: shared.refresh,
  });
  return Object.freeze({ config: login, sealer, clients, sessions, store, ready });
}

/**
 * Closes the parts of `old` that `next` does not carry over (next null: everything). Pools close
 * gracefully (requests still running on them finish first).
 */
export async function retireState(old: GatewayState, next: GatewayState | null): Promise<void> {
  if (next?.verifier !== old.verifier) old.verifier.close();
  const kept = new Set(next === null ? [] : next.credentials.values());
  for (const c of old.credentials.values()) if (!kept.has(c)) c.close();
  if (old.login !== null && next?.login?.store !== old.login.store) await old.login.sessions.close();
  if (next?.proxy !== old.proxy) await old.proxy.close();
  if (next?.shared !== old.shared) await old.shared.close();
  if (next?.policy !== old.policy) old.policy.close();
}

/** The one reference the transports read. */
export class StateHolder {
  constructor(public current: GatewayState) {}
}
