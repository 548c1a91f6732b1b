// Client-credentials tokens shared by the replicas: one token request per expiry however many
// replicas there are (the IdP's rate limits and logs see one client, not N). The token rests in
// redis sealed (AES-GCM, seal.ts), so a redis dump holds no usable token; it expires there
// with the token. Redis away or another replica too slow: this replica asks the IdP itself.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ClientCredentials } from '../config/types.js';
import type { Clock } from '../clock.js';
import type { Sealer } from '../session/seal.js';
import { onceAcrossReplicas } from '../shared/once.js';
import { SharedStateUnavailable, type SharedRedis } from '../shared/redis.js';

export interface TokenData {
  readonly token: string;
  /** ms since the epoch. */
  readonly expiresAt: number;
  readonly renewAt: number;
}

export interface SharedTokens {
  /** A token still short of its renewAt: another replica's, or `request()`'s made under the lock. */
  obtain(key: string, clock: Clock, request: () => Promise<TokenData>): Promise<TokenData>;
}

const PURPOSE = 'client-credentials-token';

/** Upstreams asking the same token endpoint for the same client and parameters share a token. */
export function sharedTokenKey(cfg: ClientCredentials): string {
  const id = JSON.stringify([cfg.tokenUrl, cfg.clientId, cfg.scopes, cfg.resource, cfg.audience]);
  return createHash('sha256').update(id).digest('base64url');
}

export function createSharedTokens(deps: { redis: SharedRedis; sealer: Sealer; lockTtlMs: number; logger: Logger }): SharedTokens {
  const { redis, sealer, lockTtlMs, logger } = deps;
  return {
    async obtain(key, clock, request) {
      try {
        const r = await onceAcrossReplicas<TokenData>({
          redis,
          lockKey: `${redis.prefix}cc-lock:${key}`,
          resultKey: `${redis.prefix}cc:${key}`,
          lockTtlMs,
          waitMs: lockTtlMs + 1000,
          read(stored) {
            const now = clock();
            const d = sealer.open<{ t?: unknown; e?: unknown; r?: unknown }>(PURPOSE, stored, now);
            if (d === null || typeof d.t !== 'string' || typeof d.e !== 'number' || typeof d.r !== 'number') return null;
            // Past its renewal time: not good enough, the lock holder fetches the next one.
            return now < d.r ? { token: d.t, expiresAt: d.e, renewAt: d.r } : null;
          },
          async compute() {
            const value = await request();
            const ttlMs = value.expiresAt - clock();
            return { value, store: sealer.seal(PURPOSE, { t: value.token, e: value.expiresAt, r: value.renewAt }, value.expiresAt), ttlMs };
          },
        });
        if (r !== 'timeout') return r;
        logger.warn({}, 'client-credentials: another replica holds the token lock too long; requesting alone');
      } catch (err) {
        if (!(err instanceof SharedStateUnavailable)) throw err;
        logger.warn({ err: err.message }, 'client-credentials: shared redis unavailable; requesting alone');
      }
      return request();
    },
  };
}
