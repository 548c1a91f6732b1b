// One computation across replicas: whoever takes the lock (SET NX PX) computes and stores the
// result; the others poll for that result and use it. Used for session refreshes (an IdP that
// rotates refresh tokens refuses the second use of one) and client-credentials tokens (one
// token request per expiry, not one per replica).
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { SharedRedis } from './redis.js';

export interface OnceOptions<T> {
  readonly redis: SharedRedis;
  readonly lockKey: string;
  readonly resultKey: string;
  /** The lock expires on its own after this long (a replica that died holding it). */
  readonly lockTtlMs: number;
  /** Give up waiting for another replica after this long: 'timeout'. */
  readonly waitMs: number;
  /** A stored result, or null when it is not usable (tampered, stale). */
  read(stored: string): T | null;
  /** Runs under the lock; `store` non-null is kept for `ttlMs` for the other replicas. */
  compute(): Promise<{ readonly value: T; readonly store: string | null; readonly ttlMs: number }>;
}

const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 100;

/**
 * The result: this replica's own computation or another's. Redis failures throw (the caller
 * decides whether to go ahead alone); compute()'s failures propagate after the lock is released.
 */
export async function onceAcrossReplicas<T>(o: OnceOptions<T>): Promise<T | 'timeout'> {
  const deadline = Date.now() + o.waitMs;
  let poll = FIRST_POLL_MS;
  for (;;) {
    const found = await stored(o);
    if (found !== null) return found;
    const owner = randomBytes(12).toString('base64url');
    if (await o.redis.set(o.lockKey, owner, o.lockTtlMs, true)) {
      try {
        // The previous holder may have stored its result between our GET and our SET.
        const late = await stored(o);
        if (late !== null) return late;
        const r = await o.compute();
        if (r.store !== null && r.ttlMs > 0) await o.redis.set(o.resultKey, r.store, r.ttlMs).catch(() => false);
        return r.value;
      } finally {
        await o.redis.delIfEquals(o.lockKey, owner).catch(() => { /* expires on its own */ });
      }
    }
    if (Date.now() >= deadline) return 'timeout';
    await delay(poll);
    poll = Math.min(poll * 2, MAX_POLL_MS);
  }
}

async function stored<T>(o: OnceOptions<T>): Promise<T | null> {
  const v = await o.redis.get(o.resultKey);
  return v === null ? null : o.read(v);
}
