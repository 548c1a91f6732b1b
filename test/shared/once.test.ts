// onceAcrossReplicas and revocations against a real redis-server: one computation however many
// callers race for it, a failed or vanished holder hands over, revocations reach another
// connection (a stand-in for another replica) and survive its reconnection.
import t, { type Test } from 'tap';
import pino from 'pino';
import { connectSharedRedis, type SharedRedis } from '../../src/shared/redis.js';
import { onceAcrossReplicas } from '../../src/shared/once.js';
import { createRevocations } from '../../src/session/revocations.js';
import { startRedis } from '../fixtures/redis.js';
import { waitFor } from '../fixtures/tokens.js';
import type { Session } from '../../src/session/store.js';

const logger = pino({ level: 'silent' });

async function connect(t: Test, url: string): Promise<SharedRedis> {
  const r = await connectSharedRedis({ url, password: null, keyPrefix: 'u:', lockTtlMs: 1000, shareClientCredentials: true, secret: null }, logger);
  t.teardown(() => r.close());
  return r;
}

t.test('one computation for many callers on several connections', async (t) => {
  const server = await startRedis(t);
  const conns = [await connect(t, server.url), await connect(t, server.url), await connect(t, server.url)];
  let computed = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const run = (redis: SharedRedis) => onceAcrossReplicas<string>({
    redis, lockKey: 'u:lock', resultKey: 'u:result', lockTtlMs: 5000, waitMs: 6000,
    read: (v) => v,
    async compute() { computed++; await gate; return { value: 'fresh', store: 'fresh', ttlMs: 60_000 }; },
  });
  const all = Promise.all(Array.from({ length: 9 }, (_, i) => run(conns[i % 3]!)));
  await waitFor(() => computed === 1);
  release();
  t.same(await all, Array(9).fill('fresh'));
  t.equal(computed, 1, 'computed once');
  t.equal(await conns[0]!.get('u:lock'), null, 'lock released');
});

t.test('a failing holder hands over; a vanished holder\'s lock expires', async (t) => {
  const server = await startRedis(t);
  const redis = await connect(t, server.url);
  const attempt = (compute: () => Promise<string>, resultKey: string) => onceAcrossReplicas<string>({
    redis, lockKey: `u:lock:${resultKey}`, resultKey, lockTtlMs: 300, waitMs: 2000, read: (v) => v,
    compute: async () => { const value = await compute(); return { value, store: value, ttlMs: 60_000 }; },
  });
  await t.rejects(attempt(async () => { throw new Error('idp down'); }, 'u:r1'), /idp down/);
  t.equal(await attempt(async () => 'second', 'u:r1'), 'second', 'the next caller computes after a failure');

  // A replica that died holding the lock: the others wait for its expiry, then take over.
  t.ok(await redis.set('u:lock:u:r2', 'dead-owner', 300, true));
  t.equal(await attempt(async () => 'after-expiry', 'u:r2'), 'after-expiry');
});

t.test('revocations reach another replica, and one that connects later', async (t) => {
  const server = await startRedis(t);
  const session = (over: Partial<Session> = {}): Session => ({
    id: 'AAAAAAAAAAAAAAAAAAAAAA', project: 'demo', sub: 'alice', name: null, email: null, groups: [],
    accessToken: 'x', accessTokenExp: 0, refreshToken: null, idToken: null, idpSid: 'sid-1',
    createdAt: Date.now() - 1000, expiresAt: Date.now() + 3_600_000, lastSeenAt: Date.now(), ...over,
  });
  const deps = { maxAgeMs: 3_600_000, clock: Date.now, logger };
  const a = createRevocations({ ...deps, redis: await connect(t, server.url) });
  const b = createRevocations({ ...deps, redis: await connect(t, server.url) });
  await Promise.all([a.ready, b.ready]);
  t.notOk(b.isRevoked(session()));
  await a.revoke(['sid:demo:sid-1']);
  await waitFor(() => b.isRevoked(session()));
  t.pass('b heard a\'s revocation');
  t.notOk(b.isRevoked(session({ idpSid: 'sid-2', sub: 'bob' })), 'other IdP sessions unaffected');
  await a.revoke(['sub:demo:bob']);
  await waitFor(() => b.isRevoked(session({ idpSid: null, sub: 'bob' })));
  t.notOk(b.isRevoked(session({ idpSid: null, sub: 'bob', createdAt: Date.now() + 1000 })), 'a session created after the logout lives');

  const c = createRevocations({ ...deps, redis: await connect(t, server.url) });
  await c.ready;
  await waitFor(() => c.isRevoked(session()) && c.isRevoked(session({ idpSid: null, sub: 'bob' })));
  t.pass('a replica started later caught up from the shared set');

  const local = createRevocations({ ...deps, redis: null });
  await local.revoke([`id:${session().id}`]);
  t.ok(local.isRevoked(session()), 'without redis: this process only');
});
