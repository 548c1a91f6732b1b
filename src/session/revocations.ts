// Ended sessions, remembered until they could have expired anyway (sessionTtlSec). An entry is a
// key and the time it was revoked; a session is refused when one of its keys was revoked at or
// after it was created:
//   id:<session id>              logout, a new login in the same browser, a refused refresh
//   sid:<project>:<IdP sid>      back-channel logout of one IdP session
//   sub:<project>:<sub>          back-channel logout of every session of a user
// Keys rather than an index of live sessions because a cookie-store session exists only in the
// browser: nothing on the server could be looked up and deleted.
//
// The check is always local (the hot path makes no network call). With the shared redis every
// revocation is also added to a sorted set (score: revoked at; entries older than the session
// lifetime are pruned) and published; each replica applies what it hears, and re-reads the set
// whenever its subscription (re)connects, so nothing said while it was away is lost.
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { SharedRedis } from '../shared/redis.js';
import type { Session } from './store.js';

export const MAX_REVOCATIONS = 100_000;

export interface Revocations {
  /** Ends every session matching one of `keys` created until now; shared when redis is. Throws SharedStateUnavailable after the local record when the shared one fails. */
  revoke(keys: readonly string[]): Promise<void>;
  isRevoked(session: Session): boolean;
  /** Resolves when the subscription is up (immediately without redis). */
  readonly ready: Promise<void>;
}

export function sessionKeys(s: Session): string[] {
  const keys = [`id:${s.id}`, `sub:${s.project}:${s.sub}`];
  if (s.idpSid !== null) keys.push(`sid:${s.project}:${s.idpSid}`);
  return keys;
}

export interface RevocationDeps {
  readonly maxAgeMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly redis: SharedRedis | null;
}

export function createRevocations(deps: RevocationDeps): Revocations {
  const { maxAgeMs, clock, logger, redis } = deps;
  const local = new LRUCache<string, number>({ max: MAX_REVOCATIONS, ttl: maxAgeMs, ttlAutopurge: false });
  const remember = (key: string, at: number): void => {
    const left = at + maxAgeMs - clock();
    if (left <= 0) return;
    const had = local.get(key);
    if (had === undefined || had < at) local.set(key, at, { ttl: Math.ceil(left) });
  };
  const set = redis === null ? '' : `${redis.prefix}revoked`;
  const channel = set;

  let ready: Promise<void> = Promise.resolve();
  if (redis !== null) {
    const catchUp = (): void => {
      redis.rangeFrom(set, clock() - maxAgeMs).then(
        (rows) => { for (const r of rows) remember(r.member, r.score); },
        (err: unknown) => logger.warn({ err: (err as Error).message }, 'revocations: catching up failed; will retry on reconnect'),
      );
    };
    const onMessage = (message: string): void => {
      try {
        const list = JSON.parse(message) as unknown;
        if (!Array.isArray(list)) return;
        for (const e of list) {
          if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number') remember(e[0], e[1]);
        }
      } catch { /* not ours */ }
    };
    ready = redis.subscribe(channel, onMessage, catchUp);
  }

  return {
    ready,
    async revoke(keys) {
      const at = clock();
      for (const k of keys) remember(k, at);
      if (redis === null || keys.length === 0) return;
      const message = JSON.stringify(keys.map((k) => [k, at]));
      await redis.addAndPublish(set, keys, at, at - maxAgeMs, maxAgeMs, channel, message);
    },
    isRevoked(s) {
      for (const k of sessionKeys(s)) {
        const at = local.get(k);
        if (at !== undefined && at >= s.createdAt) return true;
      }
      return false;
    },
  };
}
