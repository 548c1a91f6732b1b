// One redis connection as the gateway uses it (the session store and the replicas' shared state):
// node-redis loaded only when configured, commands failing at once while redis is away (no
// offline queue), reconnects in the background for ever, an outage logged once when lost and
// once when restored, and a first connection that must answer PING within the connect timeout.
import type { Logger } from 'pino';

type Client = ReturnType<typeof import('redis').createClient>;

/** Outstanding commands at most; beyond that (redis not answering) new ones fail at once. */
const MAX_QUEUE = 1000;

/** Reconnect delay after the n-th failed attempt: 50 ms doubling to at most 2 s, for ever. */
export function reconnectDelayMs(retries: number): number {
  return Math.min(50 * 2 ** Math.min(retries, 6), 2000);
}

export function errorText(err: unknown): string {
  if (err === null || err === undefined) return 'unknown error';
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export interface RedisConnection { readonly client: Client; lastError(): unknown }

export interface ConnectOptions {
  readonly url: string;
  readonly password: string | null;
  readonly connectTimeoutMs: number;
  readonly logger?: Logger | undefined;
  /** Log message stem: `<label> connection lost` / `… restored`. */
  readonly label: string;
  /** Extra fields on those two log lines. */
  readonly fields?: Record<string, unknown>;
  /** The typed error a failed first connection rejects with (503 for the caller's feature). */
  unavailable(detail: string, cause: unknown): Error;
}

/** A connected client, or a rejection with `unavailable(…)` (unreachable, or refusing the password). */
export async function connectRedis(o: ConnectOptions): Promise<RedisConnection> {
  const { createClient } = await import('redis'); // ~20 MB of RSS: only when configured
  const client = createClient({
    url: o.url,
    ...(o.password === null ? {} : { password: o.password }),
    socket: { connectTimeout: o.connectTimeoutMs, reconnectStrategy: (retries: number) => reconnectDelayMs(retries) },
    // While reconnecting, commands are rejected at once rather than queued until redis returns.
    disableOfflineQueue: true,
    commandsQueueMaxLength: MAX_QUEUE,
  });
  let lastError: unknown = null;
  let down = false;
  // Without an 'error' listener node-redis's EventEmitter would throw and crash the process.
  client.on('error', (err: unknown) => {
    lastError = err;
    if (!down) {
      down = true;
      o.logger?.warn({ ...o.fields, err: errorText(err) }, `${o.label} connection lost`);
    }
  });
  client.on('ready', () => {
    if (down) o.logger?.info({ ...o.fields }, `${o.label} connection restored`);
    down = false;
  });
  const connecting = client.connect();
  connecting.catch(() => {}); // its failures are reported through 'error' and the race below
  try {
    await withTimeout(connecting, o.connectTimeoutMs, 'connect');
    // A server wanting a password accepts the connection without one: only a command tells.
    await withTimeout(client.ping(), o.connectTimeoutMs, 'PING');
  } catch (err) {
    client.destroy();
    const cause = err instanceof TimeoutError && lastError !== null ? lastError : err;
    throw o.unavailable(`redis: cannot connect: ${errorText(cause)}`, cause);
  }
  return { client, lastError: () => lastError };
}
