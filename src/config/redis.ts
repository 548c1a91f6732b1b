// The top-level `redis:` section: state shared by every replica (refresh locks, revocations and
// back-channel logouts, replayed logout-token ids, client-credentials tokens). Absent: each
// replica keeps that state in its own memory, which is right for a single replica.
// login.redis (the session store's own connection) is separate and unchanged.

import { bool, int, object, report, required, secret, str, withDefault, type Context } from './schema.js';
import { redisUrl } from './login.js';

const MIN_SECRET_BYTES = 32;

export const sharedRedisSchema = object({
  url: required(redisUrl),
  password: secret(undefined, true),
  keyPrefix: withDefault(str(), 'cdf-gw:'),
  /** A refresh or token-request lock expires after this long (its holder died). */
  lockTtlMs: withDefault(int({ min: 100, max: 60_000 }), 10_000),
  shareClientCredentials: withDefault(bool(), true),
  /** Seals shared client-credentials tokens; null: login.cookieSecret. */
  secret: secret((s) => (Buffer.byteLength(s) < MIN_SECRET_BYTES ? `must be at least ${MIN_SECRET_BYTES} bytes (e.g. openssl rand -base64 48)` : undefined), true),
});

/** Shared client-credentials tokens are sealed with redis.secret, else login.cookieSecret: one must exist. */
export function checkSharedSecret(
  redis: { shareClientCredentials: boolean; secret: string | null } | null,
  hasLogin: boolean, upstreams: Record<string, { credentials: { type: string } }> | null, ctx: Context,
): void {
  if (redis === null || !redis.shareClientCredentials || redis.secret !== null || hasLogin || upstreams === null) return;
  if (Object.values(upstreams).some((u) => u.credentials.type === 'client-credentials')) {
    report(ctx, 'redis.secret', 'required to seal the client-credentials tokens shared through redis (or set login.cookieSecret, or redis.shareClientCredentials: false)');
  }
}
