// What the replicas share, built from the top-level `redis:` section (or, without it, the
// in-memory equivalents a single replica needs). server.ts asks this for the pieces.
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { createRevocations, type Revocations } from '../session/revocations.js';
import { createRefreshCoordinator, type RefreshCoordinator } from '../session/refresh-lock.js';
import { createJtiStore, type JtiStore } from '../session/backchannel.js';
import { Sealer } from '../session/seal.js';
import { createSharedTokens, type SharedTokens } from '../upstream/shared-token.js';
import { connectSharedRedis, type SharedRedis } from './redis.js';

export interface SharedState {
  /** null without a `redis:` section. */
  readonly redis: SharedRedis | null;
  readonly revocations: Revocations | null;
  readonly refresh: RefreshCoordinator | null;
  readonly jti: JtiStore;
  /** Client-credentials tokens shared through redis; null: each replica fetches its own. */
  readonly tokens: SharedTokens | null;
  /** Rejects (with the reason) when redis cannot be reached at start. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/** Every call waits for the connection: createGateway is synchronous, listen() awaits `ready`. */
function deferred(connecting: Promise<SharedRedis>, prefix: string): SharedRedis {
  return {
    prefix,
    get: async (k) => (await connecting).get(k),
    set: async (k, v, ttl, nx) => (await connecting).set(k, v, ttl, nx),
    delIfEquals: async (k, v) => (await connecting).delIfEquals(k, v),
    addAndPublish: async (...a) => (await connecting).addAndPublish(...a),
    rangeFrom: async (s, m) => (await connecting).rangeFrom(s, m),
    subscribe: async (c, m, r) => (await connecting).subscribe(c, m, r),
    close: async () => { await connecting.then((r) => r.close(), () => undefined); },
  };
}

export function createSharedState(config: GatewayConfig, deps: { clock: Clock; logger: Logger }): SharedState {
  const { clock, logger } = deps;
  const cfg = config.redis;
  const login = config.login;
  let redis: SharedRedis | null = null;
  let connected: Promise<unknown> = Promise.resolve();
  if (cfg !== null) {
    const connecting = connectSharedRedis(cfg, logger);
    connecting.catch(() => { /* reported by ready */ });
    connected = connecting;
    redis = deferred(connecting, cfg.keyPrefix);
  }
  const revocations = login === null ? null
    : createRevocations({ maxAgeMs: login.sessionTtlSec * 1000, clock, logger, redis });
  revocations?.ready.catch(() => { /* reported by ready */ });
  const refresh = login === null || redis === null || cfg === null ? null
    : createRefreshCoordinator({ redis, sealer: new Sealer(login.cookieSecrets), lockTtlMs: cfg.lockTtlMs, clock, logger });
  const secret = cfg?.secret ?? login?.cookieSecrets[0] ?? null;
  const tokens = redis === null || cfg === null || !cfg.shareClientCredentials || secret === null ? null
    : createSharedTokens({ redis, sealer: new Sealer([secret, ...(login?.cookieSecrets ?? [])]), lockTtlMs: cfg.lockTtlMs, logger });
  return {
    redis,
    revocations,
    refresh,
    jti: createJtiStore(redis),
    tokens,
    ready: Promise.all([connected, revocations?.ready]).then(() => undefined),
    close: async () => { await redis?.close(); },
  };
}
