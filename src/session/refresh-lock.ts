// A session's tokens are refreshed by one replica at a time. An IdP that rotates refresh tokens
// accepts each one once (and may revoke the whole grant when it sees one again), so two
// replicas refreshing the same session at once would log the user out. The replica that takes
// the lock refreshes and leaves the new session, sealed, in redis for a minute; the others wait
// for it and write their own cookie from it. Within one process SessionManager already joins
// concurrent refreshes; this is the same across processes.
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { SharedStateUnavailable, type SharedRedis } from '../shared/redis.js';
import { onceAcrossReplicas } from '../shared/once.js';
import type { Sealer } from './seal.js';
import { asSession, type Session } from './store.js';

export type RefreshOutcome = Session | 'ended' | 'unavailable';

export interface RefreshCoordinator {
  /** `refresh` runs on one replica only; every replica gets its new session. */
  run(session: Session, refresh: () => Promise<RefreshOutcome>): Promise<RefreshOutcome>;
}

/** Sealed results are opened only under this purpose (never as a cookie or a store record). */
const PURPOSE = 'refresh-result';
/** Long enough for requests that left with the old cookie to find the new session. */
const RESULT_TTL_MS = 60_000;

export interface RefreshLockDeps {
  readonly redis: SharedRedis;
  readonly sealer: Sealer;
  readonly lockTtlMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

export function createRefreshCoordinator(deps: RefreshLockDeps): RefreshCoordinator {
  const { redis, sealer, lockTtlMs, clock, logger } = deps;
  return {
    async run(session, refresh) {
      // The token being replaced names the result (two refreshes of one session differ by it).
      const tail = session.accessToken.slice(-24);
      try {
        const r = await onceAcrossReplicas<RefreshOutcome>({
          redis,
          lockKey: `${redis.prefix}refresh-lock:${session.id}`,
          resultKey: `${redis.prefix}refresh:${session.id}:${tail}`,
          lockTtlMs,
          waitMs: lockTtlMs + 1000,
          read: (stored) => {
            const s = asSession(sealer.open(PURPOSE, stored, clock()));
            return s !== null && s.id === session.id ? s : null;
          },
          async compute() {
            const value = await refresh();
            if (typeof value === 'string') return { value, store: null, ttlMs: 0 };
            return { value, store: sealer.seal(PURPOSE, value, clock() + RESULT_TTL_MS), ttlMs: RESULT_TTL_MS };
          },
        });
        if (r === 'timeout') {
          logger.warn({ project: session.project }, 'session refresh: another replica holds the lock too long; will retry');
          return 'unavailable';
        }
        return r;
      } catch (err) {
        if (!(err instanceof SharedStateUnavailable)) throw err;
        // Without redis this replica refreshes alone, as a single replica would.
        logger.warn({ project: session.project, err: (err as Error).message }, 'session refresh: shared redis unavailable; refreshing without the lock');
        return refresh();
      }
    },
  };
}
