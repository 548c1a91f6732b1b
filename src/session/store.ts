// Session stores: where a browser session lives between requests.
//
//   cookie  the cookie value IS the sealed session (tokens included: several KB, chunk it with
//           chunks.ts). Nothing on the server but a revocation list in memory.
//   redis   the cookie holds a sealed opaque id (~120 chars); the session is sealed again at rest
//           in redis under `${keyPrefix}session:<id>` with a TTL, so a redis dump holds no token.
//
// Expiry of a session = min(expiresAt, lastSeenAt + idleTimeoutMs), checked by load() on the
// injected nowMs. The idle window only slides when the caller saves the session again with a
// newer lastSeenAt (and sets the returned cookie value).
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { connectRedis, errorText, withTimeout } from '../redis-client.js';

export { reconnectDelayMs } from '../redis-client.js';
import type { Clock } from '../clock.js';
import { GatewayError } from '../errors.js';
import type { Sealer } from './seal.js';

export interface Session {
  readonly id: string;              // 128-bit random, base64url; new at every login (no fixation)
  readonly project: string;         // login project name
  readonly sub: string;
  readonly name: string | null;
  readonly email: string | null;
  readonly groups: readonly string[];
  readonly accessToken: string;
  readonly accessTokenExp: number;  // epoch seconds
  readonly refreshToken: string | null;
  readonly idToken: string | null;  // always null now (the ID token is not kept); read for the format's sake
  readonly idpSid: string | null;   // the ID token's `sid`: back-channel logout names the IdP session by it
  readonly createdAt: number;       // epoch ms
  readonly expiresAt: number;       // epoch ms: absolute expiry (createdAt + sessionTtlSec)
  readonly lastSeenAt: number;      // epoch ms: for the idle timeout
}

/** The seal purposes used here; callers sealing other things must pick other names. */
export const PURPOSE = Object.freeze({ session: 'session', sid: 'sid', record: 'session-record' });

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;

/** 128 random bits, base64url (22 chars). */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/** When the session ends (epoch ms): the absolute expiry or the idle timeout, whichever is first. */
export function sessionExpiry(s: Session, idleTimeoutMs: number): number {
  return Math.min(s.expiresAt, s.lastSeenAt + idleTimeoutMs);
}

/** The session store cannot be reached: answer 503, do not treat the user as logged out. */
export class SessionStoreUnavailable extends GatewayError {
  constructor(detail: string, cause?: unknown) {
    super(503, 'Service unavailable: session store cannot be reached', { detail, cause, code: 'session_store_unavailable', headers: { 'retry-after': '5' } });
    this.name = 'SessionStoreUnavailable';
  }
}

export interface SessionStore {
  readonly kind: 'cookie' | 'redis';
  /** Persists `s`; returns the sealed cookie value that identifies it (a new one on every call). */
  save(s: Session): Promise<string>;
  /** The session, or null if unreadable, tampered, expired (absolute or idle), revoked or missing. Throws SessionStoreUnavailable when redis cannot be reached. */
  load(cookieValue: string, nowMs: number): Promise<Session | null>;
  /** Afterwards load() of every earlier cookie value for s.id returns null. */
  revoke(s: Session): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  sealer: Sealer;
  idleTimeoutMs: number;
  /** Real time, for redis TTLs and how long revocations are remembered (not for load's checks). Default Date.now. */
  clock?: Clock;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStrOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** Shape check of an opened payload: it is authenticated, but may have been written by another version. */
export function asSession(v: unknown): Session | null {
  if (v === null || typeof v !== 'object') return null;
  const s = v as Record<string, unknown>;
  const ok = isStr(s.id) && SESSION_ID.test(s.id) && isStr(s.project) && isStr(s.sub)
    && isStrOrNull(s.name) && isStrOrNull(s.email) && Array.isArray(s.groups) && s.groups.every(isStr)
    && isStr(s.accessToken) && isNum(s.accessTokenExp) && isStrOrNull(s.refreshToken) && isStrOrNull(s.idToken)
    && (s.idpSid === undefined || isStrOrNull(s.idpSid))
    && isNum(s.createdAt) && isNum(s.expiresAt) && isNum(s.lastSeenAt);
  // Sessions sealed before idpSid existed have none.
  return ok ? (s.idpSid === undefined ? { ...(v as Session), idpSid: null } : (v as Session)) : null;
}

/** Only the Session fields, so nothing a caller spread onto the object ends up sealed. */
function pick(s: Session): Session {
  return {
    id: s.id, project: s.project, sub: s.sub, name: s.name, email: s.email, groups: [...s.groups],
    accessToken: s.accessToken, accessTokenExp: s.accessTokenExp, refreshToken: s.refreshToken, idToken: s.idToken, idpSid: s.idpSid,
    createdAt: s.createdAt, expiresAt: s.expiresAt, lastSeenAt: s.lastSeenAt,
  };
}

function checkSaveable(s: Session): void {
  if (asSession(s) === null) throw new TypeError('SessionStore.save: not a valid Session (id must come from newSessionId())');
}

/** Live at nowMs: neither absolutely expired nor idle. */
function live(s: Session, idleTimeoutMs: number, nowMs: number): boolean {
  return nowMs < sessionExpiry(s, idleTimeoutMs);
}

// ---------------------------------------------------------------------------------------------
// Cookie store.

/** How many revoked ids the cookie store remembers; beyond that the least recently revoked are forgotten. */
export const MAX_REVOKED = 100_000;

/**
 * The session sealed into the cookie value. Revocation is a list of revoked ids kept in this
 * process's memory until each session's absolute expiry: it is per replica and lost on
 * restart, so with several replicas (or after a restart) a revoked cookie is refused only
 * where the logout happened — until it expires on its own (idle or absolute). Deployments that
 * need revocation to hold everywhere use the redis store. At most MAX_REVOKED ids are kept.
 */
export function createCookieStore(opts: StoreOptions): SessionStore {
  const { sealer, idleTimeoutMs } = opts;
  const clock = opts.clock ?? Date.now;
  const revoked = new LRUCache<string, true>({ max: MAX_REVOKED, ttlAutopurge: false });
  return {
    kind: 'cookie',
    async save(s) {
      checkSaveable(s);
      return sealer.seal(PURPOSE.session, pick(s), sessionExpiry(s, idleTimeoutMs));
    },
    async load(cookieValue, nowMs) {
      const s = asSession(sealer.open(PURPOSE.session, cookieValue, nowMs));
      if (s === null || !live(s, idleTimeoutMs, nowMs) || revoked.has(s.id)) return null;
      return s;
    },
    async revoke(s) {
      // Every cookie of this session shares its expiresAt (fixed at login): remember until then.
      const ttl = Math.ceil(s.expiresAt - clock());
      if (ttl > 0) revoked.set(s.id, true, { ttl });
    },
    async close() {
      revoked.clear();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Redis store.

export interface RedisStoreOptions extends StoreOptions {
  url: string;
  password: string | null;
  keyPrefix: string;
  /** Socket connect timeout, also the bound on the first connection at startup (ms). Default 2000. */
  connectTimeoutMs?: number;
  /** Bound on each command (ms): a command outstanding this long fails with SessionStoreUnavailable. Default 1000. */
  commandTimeoutMs?: number;
  /** Connection lost/restored are logged once per outage. */
  logger?: Logger;
}

/**
 * Connects before resolving: rejects with SessionStoreUnavailable when redis cannot be reached
 * (or refuses the password) within connectTimeoutMs, so a misconfiguration stops the start.
 * Afterwards an outage never crashes the process: the client reconnects in the background and
 * load/save/revoke fail at once with SessionStoreUnavailable until it is back.
 */
export async function createRedisStore(opts: RedisStoreOptions): Promise<SessionStore> {
  const { sealer, idleTimeoutMs, keyPrefix, logger } = opts;
  const clock = opts.clock ?? Date.now;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
  const commandTimeoutMs = opts.commandTimeoutMs ?? 1000;
  const { client, lastError: last } = await connectRedis({
    url: opts.url, password: opts.password, connectTimeoutMs, logger, label: 'session store: redis',
    unavailable: (detail, cause) => new SessionStoreUnavailable(detail, cause),
  });

  const key = (id: string) => `${keyPrefix}session:${id}`;

  /** One redis command, failing fast and typed. */
  async function run<T>(what: string, command: () => Promise<T>): Promise<T> {
    if (!client.isReady) throw new SessionStoreUnavailable(`redis: not connected (${what}): ${errorText(last())}`, last());
    try {
      return await withTimeout(command(), commandTimeoutMs, what);
    } catch (err) {
      throw new SessionStoreUnavailable(`redis: ${what} failed: ${errorText(err)}`, err);
    }
  }

  return {
    kind: 'redis',
    async save(s) {
      checkSaveable(s);
      const expiry = sessionExpiry(s, idleTimeoutMs);
      // The record is bound to its id (checked on load), so a record moved to another key is refused.
      const record = sealer.seal(PURPOSE.record, pick(s), expiry);
      const ttl = Math.ceil(expiry - clock());
      if (ttl > 0) {
        await run('SET', () => client.set(key(s.id), record, { expiration: { type: 'PX', value: ttl } }));
      } else {
        await run('DEL', () => client.del(key(s.id)));
      }
      // The absolute expiry: the idle timeout is enforced by the record, so the cookie need not change on each touch.
      return sealer.seal(PURPOSE.sid, { id: s.id }, s.expiresAt);
    },
    async load(cookieValue, nowMs) {
      const ref = sealer.open<{ id?: unknown }>(PURPOSE.sid, cookieValue, nowMs);
      const id = ref !== null && typeof ref === 'object' ? ref.id : undefined;
      if (typeof id !== 'string' || !SESSION_ID.test(id)) return null;
      const record = await run('GET', () => client.get(key(id)));
      if (typeof record !== 'string') return null;
      const s = asSession(sealer.open(PURPOSE.record, record, nowMs));
      if (s === null || s.id !== id || !live(s, idleTimeoutMs, nowMs)) return null;
      return s;
    },
    async revoke(s) {
      await run('DEL', () => client.del(key(s.id)));
    },
    async close() {
      if (!client.isOpen) return;
      // close() waits for pending replies, which never come while redis is down.
      if (client.isReady) await withTimeout(client.close(), commandTimeoutMs, 'close').catch(() => client.destroy());
      else client.destroy();
    },
  };
}
