// The refresh coordinator against a real redis-server: one refresh for several replicas (each its
// own connection), the others get the sealed result; redis gone → the replica refreshes alone.
import t, { type Test } from 'tap';
import pino from 'pino';
import { connectSharedRedis, type SharedRedis } from '../../src/shared/redis.js';
import { createRefreshCoordinator } from '../../src/session/refresh-lock.js';
import { Sealer } from '../../src/session/seal.js';
import { newSessionId, type Session } from '../../src/session/store.js';
import { startRedis } from '../fixtures/redis.js';

const logger = pino({ level: 'silent' });
const sealer = new Sealer(['refresh-lock-test-secret-0123456789abcdef']);

async function connect(t: Test, url: string): Promise<SharedRedis> {
  const r = await connectSharedRedis({ url, password: null, keyPrefix: 'r:', lockTtlMs: 2000, shareClientCredentials: true, secret: null }, logger);
  t.teardown(() => r.close());
  return r;
}

const session = (): Session => ({
  id: newSessionId(), project: 'demo', sub: 'alice', name: null, email: null, groups: [],
  accessToken: 'old-access-token-0123456789abcdefghij', accessTokenExp: 0, refreshToken: 'rt-1', idToken: null, idpSid: null,
  createdAt: Date.now(), expiresAt: Date.now() + 3_600_000, lastSeenAt: Date.now(),
});

t.test('one refresh across three replicas; the others use its sealed result', async (t) => {
  const server = await startRedis(t);
  const replicas = await Promise.all([1, 2, 3].map(async () => createRefreshCoordinator({ redis: await connect(t, server.url), sealer, lockTtlMs: 2000, clock: Date.now, logger })));
  const s = session();
  let refreshes = 0;
  const refresh = async (): Promise<Session> => {
    refreshes++;
    await new Promise((r) => setTimeout(r, 50));
    return { ...s, accessToken: 'new-access-token-0123456789abcdefghij', refreshToken: 'rt-2' };
  };
  const results = await Promise.all(replicas.flatMap((c) => [c.run(s, refresh), c.run(s, refresh)]));
  t.equal(refreshes, 1, 'the IdP was asked once');
  for (const r of results) t.match(r, { id: s.id, refreshToken: 'rt-2' });

  const ended = await replicas[0]!.run({ ...s, accessToken: 'another-token-0123456789abcdefghijklmn' }, async () => 'ended');
  t.equal(ended, 'ended', 'a refused refresh is reported, not stored');
});

t.test('redis unreachable: the replica refreshes alone', async (t) => {
  const server = await startRedis(t);
  const c = createRefreshCoordinator({ redis: await connect(t, server.url), sealer, lockTtlMs: 2000, clock: Date.now, logger });
  await server.stop();
  const s = session();
  t.equal(await c.run(s, async () => 'unavailable'), 'unavailable');
  const r = await c.run(s, async () => ({ ...s, refreshToken: 'rt-3' }));
  t.match(r, { refreshToken: 'rt-3' });
});

t.test('a lock held past the wait: unavailable, the session keeps its token', async (t) => {
  const server = await startRedis(t);
  const redis = await connect(t, server.url);
  const c = createRefreshCoordinator({ redis, sealer, lockTtlMs: 100, clock: Date.now, logger });
  const s = session();
  // Another replica holds the lock and keeps renewing it (it never finishes).
  const hold = setInterval(() => { void redis.set(`r:refresh-lock:${s.id}`, 'other', 1000); }, 20);
  t.teardown(() => clearInterval(hold));
  await redis.set(`r:refresh-lock:${s.id}`, 'other', 1000);
  let called = false;
  t.equal(await c.run(s, async () => { called = true; return s; }), 'unavailable');
  t.notOk(called, 'no second refresh while another replica holds the lock');
});
