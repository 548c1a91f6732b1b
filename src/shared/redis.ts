// The connection to the redis that replicas share (the top-level `redis:` section): a command
// client plus, on demand, a subscriber (pub/sub needs a connection of its own). Like the
// session store's, commands fail fast and typed while redis is away; the client reconnects in
// the background and never crashes the process.
import type { Logger } from 'pino';
import type { SharedRedisConfig } from '../config/types.js';
import { SharedStateUnavailable } from '../errors.js';
import { reconnectDelayMs } from '../session/store.js';

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

const MAX_QUEUE = 1000;
const CONNECT_TIMEOUT_MS = 2000;
const COMMAND_TIMEOUT_MS = 1000;

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

type Client = ReturnType<typeof import('redis').createClient>;

/** Connects (or rejects with SharedStateUnavailable within the connect timeout, stopping the start). */
export async function connectSharedRedis(cfg: SharedRedisConfig, logger: Logger): Promise<SharedRedis> {
  // Loaded only when configured: node-redis costs ~20 MB of RSS.
  const { createClient } = await import('redis');
  const make = (role: string): { client: Client; lastError: () => unknown } => {
    const client = createClient({
      url: cfg.url,
      ...(cfg.password === null ? {} : { password: cfg.password }),
      socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: (retries: number) => reconnectDelayMs(retries) },
      disableOfflineQueue: true,
      commandsQueueMaxLength: MAX_QUEUE,
    });
    let last: unknown = null;
    let down = false;
    client.on('error', (err: unknown) => {
      last = err;
      if (!down) { down = true; logger.warn({ role, err: errorText(err) }, 'shared redis: connection lost'); }
    });
    client.on('ready', () => {
      if (down) logger.info({ role }, 'shared redis: connection restored');
      down = false;
    });
    return { client, lastError: () => last };
  };
  const main = make('commands');
  await open(main.client, main.lastError);
  let sub: { client: Client; lastError: () => unknown } | null = null;

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
      if (sub === null) {
        sub = make('subscriber');
        // node-redis resubscribes after a reconnect; 'ready' then tells the listener to catch up.
        sub.client.on('ready', onReady);
        await open(sub.client, sub.lastError);
      } else {
        sub.client.on('ready', onReady);
      }
      await sub.client.subscribe(channel, (message: string) => onMessage(message));
      onReady();
    },
    async close() {
      for (const x of [sub?.client, c]) {
        if (x === undefined || !x.isOpen) continue;
        if (x.isReady) await withTimeout(x.close(), COMMAND_TIMEOUT_MS, 'close').catch(() => x.destroy());
        else x.destroy();
      }
    },
  };
}

async function open(client: Client, lastError: () => unknown): Promise<void> {
  const connecting = client.connect();
  connecting.catch(() => {});
  try {
    await withTimeout(connecting, CONNECT_TIMEOUT_MS, 'connect');
    await withTimeout(client.ping(), CONNECT_TIMEOUT_MS, 'PING');
  } catch (err) {
    client.destroy();
    const cause = lastError() ?? err;
    throw new SharedStateUnavailable(`redis: cannot connect: ${errorText(cause)}`, cause);
  }
}

function errorText(err: unknown): string {
  if (err === null || err === undefined) return 'unknown error';
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
