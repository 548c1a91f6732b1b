// The connection to the redis that replicas share (the top-level `redis:` section): a command
// client plus, on demand, a subscriber (pub/sub needs a connection of its own). Like the
// session store's, commands fail fast and typed while redis is away; the client reconnects in
// the background and never crashes the process.
import type { Logger } from 'pino';
import type { SharedRedisConfig } from '../config/types.js';
import { SharedStateUnavailable } from '../errors.js';
import { connectRedis, errorText, withTimeout, type RedisConnection } from '../redis-client.js';

export { SharedStateUnavailable };

/** Only what the replica features use; every method fails with SharedStateUnavailable. */
export interface SharedRedis {
  readonly prefix: string;
  get(key: string): Promise<string | null>;
  /** SET with a TTL; `nx`: only if absent. true when written. */
  set(key: string, value: string, ttlMs: number, nx?: boolean): Promise<boolean>;
  /** Deletes `key` only while it still holds `value` (a lock's owner releases only its own lock). */
  delIfEquals(key: string, value: string): Promise<void>;
  /** In one transaction: ZADD the members at `score`, drop members scored below `minScore`, PEXPIRE the set, PUBLISH. */
  addAndPublish(set: string, members: readonly string[], score: number, minScore: number, ttlMs: number, channel: string, message: string): Promise<void>;
  /** Members scored at least `minScore`, with their scores. */
  rangeFrom(set: string, minScore: number): Promise<Array<{ member: string; score: number }>>;
  /**
   * Messages on `channel`; `onReady` runs after every (re)subscription, so a listener can catch
   * up on what it missed while disconnected.
   */
  subscribe(channel: string, onMessage: (message: string) => void, onReady: () => void): Promise<void>;
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 2000;
const COMMAND_TIMEOUT_MS = 1000;
/** A subscription's answer may wait behind the start's other work on a busy host: as long as a connection. */
const SUBSCRIBE_TIMEOUT_MS = CONNECT_TIMEOUT_MS;
const SUBSCRIBE_ATTEMPTS = 2;

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/** Connects (or rejects with SharedStateUnavailable within the connect timeout, stopping the start). */
export async function connectSharedRedis(cfg: SharedRedisConfig, logger: Logger): Promise<SharedRedis> {
  const make = (role: string): Promise<RedisConnection> => connectRedis({
    url: cfg.url, password: cfg.password, connectTimeoutMs: CONNECT_TIMEOUT_MS, logger, label: 'shared redis:', fields: { role },
    unavailable: (detail, cause) => new SharedStateUnavailable(detail, cause),
  });
  const main = await make('commands');
  let sub: RedisConnection | null = null;
  /** close() was called: a subscription under way gives up instead of opening another connection. */
  let closed = false;

  async function run<T>(what: string, command: () => Promise<T>): Promise<T> {
    if (!main.client.isReady) throw new SharedStateUnavailable(`redis: not connected (${what}): ${errorText(main.lastError())}`);
    try {
      return await withTimeout(command(), COMMAND_TIMEOUT_MS, what);
    } catch (err) {
      throw new SharedStateUnavailable(`redis: ${what} failed: ${errorText(err)}`, err);
    }
  }
  const c = main.client;
  return {
    prefix: cfg.keyPrefix,
    get: (key) => run('GET', () => c.get(key)).then((v) => (typeof v === 'string' ? v : null)),
    async set(key, value, ttlMs, nx = false) {
      const r = await run('SET', () => c.set(key, value, {
        expiration: { type: 'PX', value: Math.max(1, Math.ceil(ttlMs)) }, ...(nx ? { condition: 'NX' as const } : {}),
      }));
      return r === 'OK';
    },
    async delIfEquals(key, value) {
      await run('EVAL', () => c.eval(RELEASE, { keys: [key], arguments: [value] }));
    },
    async addAndPublish(set, members, score, minScore, ttlMs, channel, message) {
      await run('MULTI', () => c.multi()
        .zAdd(set, members.map((value) => ({ score, value })))
        .zRemRangeByScore(set, '-inf', `(${minScore}`)
        .pExpire(set, Math.max(1, Math.ceil(ttlMs)))
        .publish(channel, message)
        .exec());
    },
    async rangeFrom(set, minScore) {
      const rows = await run('ZRANGE', () => c.zRangeByScoreWithScores(set, minScore, '+inf'));
      return rows.map((r) => ({ member: String(r.value), score: r.score }));
    },
    async subscribe(channel, onMessage, onReady) {
      // The start waits for this (listen() awaits the revocations' subscription): a SUBSCRIBE that
      // is never answered must not hang it. One replica in a CI run sat forever with both its
      // connections open and no listener. A second try on a new connection, then a clear failure.
      // The one subscription is the revocations', so a connection given up holds no other.
      for (let attempt = 1; ; attempt++) {
        sub ??= await make('subscriber');
        if (closed) {
          sub.client.destroy(); // made while close() ran: nothing else would close it
          sub = null;
          throw new SharedStateUnavailable('redis: closed while subscribing');
        }
        try {
          await withTimeout(sub.client.subscribe(channel, (message: string) => onMessage(message)), SUBSCRIBE_TIMEOUT_MS, 'SUBSCRIBE');
          // node-redis resubscribes after a reconnect; 'ready' then tells the listener to catch up
          // (a reconnect before this line is caught up by the onReady() below).
          sub.client.on('ready', onReady);
          break;
        } catch (err) {
          // close() may have closed it meanwhile (destroying a closed client throws).
          if (sub.client.isOpen) sub.client.destroy();
          sub = null;
          if (closed) throw new SharedStateUnavailable(`redis: closed while subscribing: ${errorText(err)}`, err);
          if (attempt >= SUBSCRIBE_ATTEMPTS) throw new SharedStateUnavailable(`redis: SUBSCRIBE failed: ${errorText(err)}`, err);
          logger.warn({ role: 'subscriber', err: errorText(err) }, 'shared redis: SUBSCRIBE failed; trying a new connection');
        }
      }
      onReady();
    },
    async close() {
      closed = true;
      // The subscriber has nothing to flush, and node-redis's close() would wait for a SUBSCRIBE
      // still unanswered: destroyed at once (which also ends a subscribe() under way).
      if (sub !== null && sub.client.isOpen) sub.client.destroy();
      if (!c.isOpen) return;
      // close() waits for pending commands; once it has begun the client counts as closed and
      // destroy() would throw, so a close that times out leaves the socket to the server.
      if (c.isReady) await withTimeout(c.close(), COMMAND_TIMEOUT_MS, 'close').catch(() => { if (c.isOpen) c.destroy(); });
      else c.destroy();
    },
  };
}
