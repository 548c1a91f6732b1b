// The timing policy (decide) edge by edge, and JWK → KeyEntry conversion.
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, type JWK } from 'jose';
import t from 'tap';
import { decide, jwkToEntry, keyFitsAlg, type KeyState, type TimingPolicy } from '../../src/token/keys.js';
import { generateKey } from '../fixtures/tokens.js';

const P: TimingPolicy = { cacheMaxAgeMs: 600_000, maxStaleMs: 3_600_000, cooldownMs: 30_000 };
const T0 = 1_000_000_000;
const st = (lastSuccessAt: number | null, lastAttemptAt: number | null, fetching = false): KeyState => ({ lastSuccessAt, lastAttemptAt, fetching });

t.test('never fetched', async (t) => {
  t.same(decide(st(null, null), T0, P, false), { usable: false, refresh: 'await' }, 'first request waits for the first fetch');
  t.same(decide(st(null, null, true), T0, P, false), { usable: false, refresh: 'await' }, 'joins the fetch in flight');
});

t.test('failed first fetch', async (t) => {
  const s = st(null, T0);
  t.same(decide(s, T0, P, false), { usable: false, refresh: 'none' }, 'right after: 503 without fetching');
  t.same(decide(s, T0 + P.cooldownMs - 1, P, false), { usable: false, refresh: 'none' }, 'inside cooldown');
  t.same(decide(s, T0 + P.cooldownMs, P, false), { usable: false, refresh: 'await' }, 'cooldown over (exactly): fetch');
  t.same(decide(st(null, T0, true), T0 + 1, P, false), { usable: false, refresh: 'await' }, 'a fetch in flight is joined even in cooldown');
});

t.test('fresh keys', async (t) => {
  const s = st(T0, T0);
  t.same(decide(s, T0, P, true), { usable: true, refresh: 'none' });
  t.same(decide(s, T0 + P.cacheMaxAgeMs, P, true), { usable: true, refresh: 'none' }, 'exactly at cacheMaxAge: not yet old');
});

t.test('past cacheMaxAge: background refresh, subject to cooldown', async (t) => {
  t.same(decide(st(T0, T0), T0 + P.cacheMaxAgeMs + 1, P, true), { usable: true, refresh: 'background' });
  t.same(decide(st(T0, T0, true), T0 + P.cacheMaxAgeMs + 1, P, true), { usable: true, refresh: 'none' }, 'already refreshing');
  const failedRecently = st(T0, T0 + P.cacheMaxAgeMs + 1);
  t.same(decide(failedRecently, T0 + P.cacheMaxAgeMs + 2, P, true), { usable: true, refresh: 'none' }, 'a failed background fetch starts the cooldown');
  t.same(decide(failedRecently, T0 + P.cacheMaxAgeMs + 1 + P.cooldownMs, P, true), { usable: true, refresh: 'background' }, 'after the cooldown: retry in background');
});

t.test('maxStale edge', async (t) => {
  const s = st(T0, T0 + P.maxStaleMs - 5_000);
  t.same(decide(s, T0 + P.maxStaleMs, P, true), { usable: true, refresh: 'none' }, 'exactly at maxStale: still usable');
  t.same(decide(s, T0 + P.maxStaleMs + 1, P, true), { usable: false, refresh: 'none' }, '1 ms past, inside cooldown: 503');
  t.same(decide(st(T0, T0), T0 + P.maxStaleMs + 1, P, true), { usable: false, refresh: 'await' }, 'past, outside cooldown: fetch and wait');
  t.same(decide(st(T0, T0, true), T0 + P.maxStaleMs + 1, P, true), { usable: false, refresh: 'await' }, 'past, fetch in flight: join it');
});

t.test('unknown kid', async (t) => {
  t.same(decide(st(T0, T0), T0 + 1, P, false), { usable: true, refresh: 'none' }, 'inside cooldown: answer 401 now');
  t.same(decide(st(T0, T0), T0 + P.cooldownMs - 1, P, false), { usable: true, refresh: 'none' }, '1 ms before the cooldown ends');
  t.same(decide(st(T0, T0), T0 + P.cooldownMs, P, false), { usable: true, refresh: 'await' }, 'cooldown over: one refetch');
  t.same(decide(st(T0, T0 + 10), T0 + P.cooldownMs, P, false), { usable: true, refresh: 'none' }, 'cooldown counts from the last attempt, not the last success');
  t.same(decide(st(T0, T0 + 10, true), T0 + 20, P, false), { usable: true, refresh: 'await' }, 'a fetch in flight (maybe the rotation) is joined');
});

t.test('cooldown 0 allows a fetch every time', async (t) => {
  t.same(decide(st(T0, T0), T0, { ...P, cooldownMs: 0 }, false), { usable: true, refresh: 'await' });
});

t.test('clock going backwards does not make keys unusable or fetches frequent', async (t) => {
  t.same(decide(st(T0, T0), T0 - 10_000, P, true), { usable: true, refresh: 'none' });
  t.same(decide(st(T0, T0), T0 - 10_000, P, false), { usable: true, refresh: 'none' });
});

t.test('jwkToEntry: skips what must not verify', async (t) => {
  const rs = await generateKey('RS256', 'rs');
  t.ok(jwkToEntry(rs.jwk), 'a normal RSA signing key');
  t.equal(jwkToEntry({ ...rs.jwk, use: 'enc' }), null, 'use: enc');
  t.ok(jwkToEntry({ ...rs.jwk, use: undefined }), 'no use');
  t.equal(jwkToEntry({ ...rs.jwk, key_ops: ['encrypt'] }), null, 'key_ops without verify');
  t.ok(jwkToEntry({ ...rs.jwk, key_ops: ['verify'] }), 'key_ops with verify');
  t.equal(jwkToEntry({ kty: 'oct', k: 'c2VjcmV0', kid: 'h' }), null, 'symmetric');
  const priv = await exportJWK(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  t.equal(jwkToEntry({ ...priv, kid: 'p' }), null, 'private key (has d)');
  const weak = await exportJWK(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey);
  t.equal(jwkToEntry({ ...weak, kid: 'w' }), null, 'RSA 1024');
  const secp256k1 = await exportJWK(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey).catch(() => null);
  if (secp256k1) t.equal(jwkToEntry({ ...secp256k1, kid: 'k' }), null, 'unsupported curve');
  const x25519 = await exportJWK(generateKeyPairSync('x25519').publicKey);
  t.equal(jwkToEntry({ ...x25519, kid: 'x' } as JWK), null, 'X25519 (not a signing key)');
  t.equal(jwkToEntry({ kty: 'RSA', n: 'AQAB', e: 'AQAB' }), null, 'garbage material');
  t.equal(jwkToEntry({ kty: 'RSA', kid: 'x' }), null, 'missing parameters');
  t.equal(jwkToEntry({ ...rs.jwk, kid: 5 as unknown as string }), null, 'non-string kid');
});

t.test('jwkToEntry: reuses the entry for unchanged material only', async (t) => {
  const rs = await generateKey('RS256', 'rs');
  const first = jwkToEntry(rs.jwk)!;
  const prev = new Map([[first.fingerprint, first]]);
  t.equal(jwkToEntry({ ...rs.jwk }, prev), first, 'same JWK → same entry (same KeyObject)');
  t.not(jwkToEntry({ ...rs.jwk, kid: 'other' }, prev), first, 'other kid → new entry');
  t.not(jwkToEntry({ ...rs.jwk, alg: 'PS256' }, prev), first, 'other alg → new entry');
  const other = await generateKey('RS256', 'rs');
  t.not(jwkToEntry(other.jwk, prev), first, 'same kid, new material → new entry');
});

t.test('keyFitsAlg', async (t) => {
  const [rs, es, ed] = await Promise.all([generateKey('RS256', 'a', { jwkAlg: false }), generateKey('ES256', 'b'), generateKey('EdDSA', 'c')]);
  const r = jwkToEntry(rs.jwk)!;
  t.ok(keyFitsAlg(r, 'RS256')); t.ok(keyFitsAlg(r, 'PS512')); t.notOk(keyFitsAlg(r, 'ES256'));
  const rAlg = jwkToEntry({ ...rs.jwk, alg: 'RS256' })!;
  t.notOk(keyFitsAlg(rAlg, 'PS256'), 'JWK alg restricts the key');
  const e = jwkToEntry(es.jwk)!;
  t.ok(keyFitsAlg(e, 'ES256')); t.notOk(keyFitsAlg(e, 'ES384')); t.notOk(keyFitsAlg(e, 'RS256'));
  const d = jwkToEntry(ed.jwk)!;
  t.ok(keyFitsAlg(d, 'EdDSA')); t.notOk(keyFitsAlg(d, 'ES256'));
});
