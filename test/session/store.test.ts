// Both session stores against the same contract, plus what only redis has: opaque cookie
// values, sealed records at rest, and failing fast (503) while redis is down.
import t, { type Test } from 'tap';
import type { Logger } from 'pino';
import { createClient } from 'redis';
import { Sealer } from '../../src/session/seal.js';
import {
  SessionStoreUnavailable, createCookieStore, createRedisStore, newSessionId, type Session, type SessionStore,
} from '../../src/session/store.js';
import { startRedis } from '../fixtures/redis.js';
import { waitFor } from '../fixtures/wait.js';

const SECRET = 'store-test-secret-store-test-secret-32+';
const IDLE = 30 * 60_000;
const TTL = 8 * 3600_000;
const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.ACCESS-TOKEN-SIGNATURE-abcdefghijklmnop';
const REFRESH_TOKEN = 'REFRESH-TOKEN-0123456789abcdefghijklmnopqrstuvwxyz';

function session(now: number, over: Partial<Session> = {}): Session {
  return {
    id: newSessionId(), project: 'demo', sub: 'alice', name: 'Alice', email: 'alice@example.com',
    groups: ['readers', 'writers'], accessToken: ACCESS_TOKEN, accessTokenExp: Math.floor(now / 1000) + 3600,
    refreshToken: REFRESH_TOKEN, idToken: 'ID-TOKEN', idpSid: 'idp-sid-1', createdAt: now, expiresAt: now + TTL, lastSeenAt: now, ...over,
  };
}

function tamper(v: string): string {
  const i = v.length - 5;
  return v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1);
}

const reject = (p: Promise<unknown>) => p.then(() => { throw new Error('resolved'); }, (e: unknown) => e);

interface Made {
  store: SessionStore;
  sealer: Sealer;
  /** Another store over the same backing (same redis), e.g. with rotated keys. */
  reopen(sealer: Sealer): Promise<SessionStore>;
}
type Maker = (t: Test) => Promise<Made>;

const makeCookie: Maker = async (t) => {
  const sealer = new Sealer([SECRET]);
  const open = async (sealer: Sealer) => {
    const store = createCookieStore({ sealer, idleTimeoutMs: IDLE });
    t.teardown(() => store.close());
    return store;
  };
  return { store: await open(sealer), sealer, reopen: open };
};

const makeRedis: Maker = async (t) => {
  const redis = await startRedis(t);
  const sealer = new Sealer([SECRET]);
  const open = async (sealer: Sealer) => {
    const store = await createRedisStore({ sealer, idleTimeoutMs: IDLE, url: redis.url, password: null, keyPrefix: 'test:' });
    t.teardown(() => store.close());
    return store;
  };
  return { store: await open(sealer), sealer, reopen: open };
};

t.test('newSessionId: 128 random bits, base64url', async (t) => {
  const ids = new Set(Array.from({ length: 1000 }, newSessionId));
  t.equal(ids.size, 1000);
  for (const id of ids) t.match(id, /^[A-Za-z0-9_-]{22}$/);
});

for (const [kind, make] of [['cookie', makeCookie], ['redis', makeRedis]] as const) {
  t.test(`${kind} store`, async (t) => {
    const { store, sealer, reopen } = await make(t);
    t.equal(store.kind, kind);

    t.test('save/load round trip', async (t) => {
      const now = Date.now();
      const s = session(now);
      const v = await store.save(s);
      t.match(v, /^[A-Za-z0-9_.-]+$/, 'cookie-safe');
      t.same(await store.load(v, now), s);
      t.same(await store.load(v, now + 1000), s);
      const noOptional = session(now, { name: null, email: null, refreshToken: null, idToken: null, groups: [] });
      t.same(await store.load(await store.save(noOptional), now), noOptional);
    });

    t.test('only Session fields are stored', async (t) => {
      const now = Date.now();
      const s = { ...session(now), extra: 'not-a-session-field' } as Session;
      const loaded = await store.load(await store.save(s), now);
      t.notOk(loaded !== null && 'extra' in loaded);
    });

    t.test('idle timeout: expires IDLE after lastSeenAt; saving again slides it', async (t) => {
      const now = Date.now();
      const s = session(now);
      const v = await store.save(s);
      t.not(await store.load(v, now + IDLE - 1), null, 'just before');
      t.equal(await store.load(v, now + IDLE), null, 'at the idle timeout');
      const touched: Session = { ...s, lastSeenAt: now + IDLE - 1000 };
      const v2 = await store.save(touched);
      t.same(await store.load(v2, now + IDLE + 1000), touched, 'touched session lives on');
      t.equal(await store.load(v2, now + 2 * IDLE - 1000), null, 'until its own idle timeout');
    });

    t.test('absolute expiry wins over a recent lastSeenAt', async (t) => {
      const now = Date.now();
      const s = session(now, { expiresAt: now + 10_000 });
      const v = await store.save({ ...s, lastSeenAt: now + 9000 });
      t.not(await store.load(v, now + 9999), null);
      t.equal(await store.load(v, now + 10_000), null, 'at expiresAt');
      t.equal(await store.load(v, now + 20_000), null);
    });

    t.test('revoke: every earlier cookie value of the session is refused', async (t) => {
      const now = Date.now();
      const s = session(now);
      const v1 = await store.save(s);
      const v2 = await store.save({ ...s, lastSeenAt: now + 1000 });
      const other = session(now);
      const vo = await store.save(other);
      await store.revoke(s);
      t.equal(await store.load(v1, now + 2000), null, 'first cookie');
      t.equal(await store.load(v2, now + 2000), null, 'later cookie');
      t.same(await store.load(vo, now + 2000), other, 'other sessions untouched');
      await store.revoke(s); // twice is fine
    });

    t.test('tampered, foreign and garbage cookie values → null', async (t) => {
      const now = Date.now();
      const s = session(now);
      const v = await store.save(s);
      const otherKey = new Sealer(['another-secret-another-secret-another!!']);
      const cases: Array<[string, string]> = [
        ['tampered', tamper(v)],
        ['truncated', v.slice(0, -3)],
        ['empty', ''],
        ['garbage', 'not a cookie'],
        ['sealed with another key', otherKey.seal(kind === 'cookie' ? 'session' : 'sid', kind === 'cookie' ? s : { id: s.id }, now + TTL)],
        ['sealed for another purpose', sealer.seal('flow', kind === 'cookie' ? s : { id: s.id }, now + TTL)],
        ['right purpose, wrong shape', sealer.seal(kind === 'cookie' ? 'session' : 'sid', { id: 42 }, now + TTL)],
      ];
      for (const [name, bad] of cases) t.equal(await store.load(bad, now), null, name);
      t.same(await store.load(v, now), s, 'the original still loads');
    });

    t.test('key rotation: new key first still loads old cookies; a dropped key does not', async (t) => {
      const now = Date.now();
      const s = session(now);
      const v = await store.save(s);
      const NEW = 'rotated-secret-rotated-secret-rotated!!';
      const rotated = await reopen(new Sealer([NEW, SECRET]));
      t.same(await rotated.load(v, now), s, 'old cookie, old record');
      const v2 = await rotated.save({ ...s, lastSeenAt: now + 1 });
      t.same(await (await reopen(new Sealer([NEW]))).load(v2, now + 2), { ...s, lastSeenAt: now + 1 }, 'resealed with the new key');
      t.equal(await (await reopen(new Sealer([NEW]))).load(v, now), null, 'old key dropped: old cookie refused');
    });

    t.test('save refuses a malformed session', async (t) => {
      const now = Date.now();
      await t.rejects(store.save(session(now, { id: 'chosen-by-attacker' })), TypeError);
      await t.rejects(store.save({ ...session(now), groups: 'readers' } as unknown as Session), TypeError);
    });
  });
}

t.test('cookie store: the value is the sealed session, tokens not readable', async (t) => {
  const { store } = await makeCookie(t);
  const v = await store.save(session(Date.now()));
  t.notMatch(v, /ACCESS-TOKEN|REFRESH-TOKEN|alice/);
  t.ok(v.length > ACCESS_TOKEN.length, 'carries the session');
});

t.test('redis store', async (t) => {
  const redis = await startRedis(t);
  const sealer = new Sealer([SECRET]);
  const open = (prefix = 'gw:') => createRedisStore({ sealer, idleTimeoutMs: IDLE, url: redis.url, password: null, keyPrefix: prefix });
  const store = await open();
  t.teardown(() => store.close());
  const raw = createClient({ url: redis.url });
  raw.on('error', () => {});
  await raw.connect();
  t.teardown(() => raw.close());

  t.test('the cookie value is small and opaque', async (t) => {
    const now = Date.now();
    const s = session(now);
    const v = await store.save(s);
    t.ok(v.length < 200, `${v.length} chars`);
    t.notMatch(v, /ACCESS|REFRESH|alice|eyJ/);
    t.notOk(v.includes(s.id), 'not even the session id in clear');
  });

  t.test('the record at rest is sealed, with a TTL matching the expiry', async (t) => {
    const now = Date.now();
    const s = session(now);
    await store.save(s);
    const record = await raw.get(`gw:session:${s.id}`);
    t.type(record, 'string');
    t.notMatch(record!, /ACCESS-TOKEN|REFRESH-TOKEN|eyJ|alice|readers/);
    const ttl = await raw.pTTL(`gw:session:${s.id}`);
    t.ok(ttl > IDLE - 60_000 && ttl <= IDLE, `TTL ${ttl} ms ≈ idle timeout`);
    const short = session(now, { expiresAt: now + 60_000 });
    await store.save(short);
    const ttl2 = await raw.pTTL(`gw:session:${short.id}`);
    t.ok(ttl2 > 0 && ttl2 <= 60_000, `TTL ${ttl2} ms ≈ absolute expiry when it comes first`);
  });

  t.test('revoke deletes the record; an already expired save stores nothing', async (t) => {
    const now = Date.now();
    const s = session(now);
    const v = await store.save(s);
    await store.revoke(s);
    t.equal(await raw.exists(`gw:session:${s.id}`), 0);
    t.equal(await store.load(v, now), null);
    const gone = session(now - TTL - 1);
    await store.save(gone);
    t.equal(await raw.exists(`gw:session:${gone.id}`), 0);
  });

  t.test('a record moved under another id, or corrupted, is refused', async (t) => {
    const now = Date.now();
    const a = session(now);
    const b = session(now, { sub: 'mallory' });
    const va = await store.save(a);
    await store.save(b);
    await raw.set(`gw:session:${a.id}`, (await raw.get(`gw:session:${b.id}`))!);
    t.equal(await store.load(va, now), null, 'b\'s record under a\'s id');
    await raw.set(`gw:session:${a.id}`, 'garbage');
    t.equal(await store.load(va, now), null, 'garbage record');
  });

  t.test('key prefixes keep gateways apart', async (t) => {
    const other = await open('other:');
    t.teardown(() => other.close());
    const now = Date.now();
    const v = await store.save(session(now));
    t.equal(await other.load(v, now), null);
  });
});

t.test('redis down: fail fast with SessionStoreUnavailable, recover when it is back', async (t) => {
  const redis = await startRedis(t);
  const sealer = new Sealer([SECRET]);
  const store = await createRedisStore({
    sealer, idleTimeoutMs: IDLE, url: redis.url, password: null, keyPrefix: 'gw:', connectTimeoutMs: 500, commandTimeoutMs: 500,
  });
  t.teardown(() => store.close());
  const now = Date.now();
  const s = session(now);
  const v = await store.save(s);

  await redis.stop();
  for (const [what, op] of [
    ['load', () => store.load(v, now)],
    ['save', () => store.save(s)],
    ['revoke', () => store.revoke(s)],
  ] as const) {
    const err = await reject(op());
    t.ok(err instanceof SessionStoreUnavailable, `${what}: ${String(err)}`);
    t.equal((err as SessionStoreUnavailable).status, 503);
  }
  t.equal(await store.load('garbage', now), null, 'an unreadable cookie needs no redis');

  // Back on the same port (data is gone: no persistence): the client reconnects by itself.
  await startRedis(t, { port: redis.port });
  let v2: string | null = null;
  await waitFor(async () => (v2 = await store.save(s).catch(() => null)) !== null, { everyMs: 50, what: 'a save after the reconnect' });
  t.type(v2, 'string', 'save works again after reconnect');
  t.same(await store.load(v2!, now), s);
});

t.test('createRedisStore rejects when redis cannot be reached', async (t) => {
  const redis = await startRedis(t);
  await redis.stop();
  const err = await reject(createRedisStore({
    sealer: new Sealer([SECRET]), idleTimeoutMs: IDLE, url: redis.url, password: null, keyPrefix: 'gw:', connectTimeoutMs: 300,
  }));
  t.ok(err instanceof SessionStoreUnavailable, String(err));
});

t.test('cookie store: revocation is remembered until the absolute expiry only', async (t) => {
  let clock = Date.now();
  const store = createCookieStore({ sealer: new Sealer([SECRET]), idleTimeoutMs: IDLE, clock: () => clock });
  t.teardown(() => store.close());
  const now = Date.now();
  const expired = session(now - TTL, { expiresAt: now - 1, lastSeenAt: now - 2 });
  await store.revoke(expired); // nothing to remember: it cannot load anyway
  const s = session(now);
  const v = await store.save(s);
  await store.revoke(s);
  clock += 1000;
  t.equal(await store.load(v, now + 1000), null);
});

t.test('redis with a password: the right one works, a wrong one stops the start', async (t) => {
  const redis = await startRedis(t, { args: ['--requirepass', 'sesame-sesame'] });
  const sealer = new Sealer([SECRET]);
  const base = { sealer, idleTimeoutMs: IDLE, url: redis.url, keyPrefix: 'gw:', connectTimeoutMs: 500 };
  const store = await createRedisStore({ ...base, password: 'sesame-sesame' });
  t.teardown(() => store.close());
  const now = Date.now();
  const s = session(now);
  t.same(await store.load(await store.save(s), now), s);
  for (const password of ['wrong', null]) {
    const err = await reject(createRedisStore({ ...base, password }));
    t.ok(err instanceof SessionStoreUnavailable, `password ${String(password)}: ${String(err)}`);
    t.match((err as SessionStoreUnavailable).detail, /WRONGPASS|NOAUTH|invalid/i, 'the detail says why');
  }
});

t.test('redis hung (accepts, never answers): commands time out with SessionStoreUnavailable', async (t) => {
  const redis = await startRedis(t);
  const store = await createRedisStore({
    sealer: new Sealer([SECRET]), idleTimeoutMs: IDLE, url: redis.url, password: null, keyPrefix: 'gw:', commandTimeoutMs: 300,
  });
  t.teardown(() => store.close());
  const now = Date.now();
  const s = session(now);
  const v = await store.save(s);
  redis.pause();
  const err = await reject(store.load(v, now));
  t.ok(err instanceof SessionStoreUnavailable, String(err));
  t.match((err as SessionStoreUnavailable).detail, /timed out/);
  redis.resume();
  t.same(await store.load(v, now), s, 'answers again once redis does');
});

t.test('an outage is logged once, and its end once', async (t) => {
  const redis = await startRedis(t);
  const lines: string[] = [];
  const logger = {
    warn: (_o: unknown, msg: string) => { lines.push(`warn ${msg}`); },
    info: (o: unknown, msg?: string) => { lines.push(`info ${msg ?? String(o)}`); }, // pino's (obj, msg) or (msg)
  } as unknown as Logger;
  const store = await createRedisStore({
    sealer: new Sealer([SECRET]), idleTimeoutMs: IDLE, url: redis.url, password: null, keyPrefix: 'gw:', logger,
  });
  t.teardown(() => store.close());
  await redis.stop();
  const s = session(Date.now());
  await waitFor(() => lines.length > 0, { what: 'the outage being noticed' });
  // Several operations fail during the outage (reconnect attempts go on meanwhile): still one line.
  let failed = 0;
  await waitFor(async () => (await store.save(s).catch(() => null)) === null && ++failed >= 5, { everyMs: 50, what: 'five failed saves' });
  await startRedis(t, { port: redis.port });
  await waitFor(async () => (await store.save(s).catch(() => null)) !== null, { everyMs: 50, what: 'a save after the reconnect' });
  t.same(lines, ['warn session store: redis connection lost', 'info session store: redis connection restored']);
});
