// The timing policy (decide) edge by edge, and JWK → KeyEntry conversion.
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, type JWK } from 'jose';
import t from 'tap';
import { jwkToEntry, keyFitsAlg, weakEd25519 } from '../../src/token/jwk.js';
import { decide, type KeyState, type TimingPolicy } from '../../src/token/keys.js';
import { generateKey } from '../fixtures/tokens.js';

const P: TimingPolicy = { cacheMaxAgeMs: 600_000, maxStaleMs: 3_600_000, cooldownMs: 30_000 };
const T0 = 1_000_000_000;
const st = (lastSuccessAt: number | null, cooldownFrom: number | null, fetching = false): KeyState => ({ lastSuccessAt, cooldownFrom, fetching });

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
  t.same(decide(st(T0, T0 + 10), T0 + P.cooldownMs, P, false), { usable: true, refresh: 'none' }, 'cooldown counts from the fetch that started it, not the last success');
  t.same(decide(st(T0, null), T0 + 1, P, false), { usable: true, refresh: 'await' }, 'after a successful routine fetch (no cooldown started): refetch at once');
  t.same(decide(st(T0, T0 - P.cooldownMs), T0 + 1, P, false), { usable: true, refresh: 'await' }, 'a cooldown older than the last success is over');
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

t.test('jwkToEntry: weak RSA keys (anyone could forge, or too costly)', async (t) => {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = await exportJWK(pair.publicKey);
  t.ok(jwkToEntry({ ...jwk, kid: 'ok' }), 'e = 65537');
  t.ok(jwkToEntry({ ...jwk, e: 'AAEAAQ' }), 'e = 65537 with a leading zero byte');
  const withE = (e: bigint) => jwkToEntry({ ...jwk, e: Buffer.from(e.toString(16).padStart(e.toString(16).length + (e.toString(16).length % 2), '0'), 'hex').toString('base64url') });
  t.equal(withE(1n), null, 'e = 1: the signature is the padded hash');
  t.equal(withE(3n), null, 'e = 3');
  t.equal(withE(65535n), null, 'e = 65535 (odd but below 65537)');
  t.equal(withE(65536n), null, 'e = 65536 (even)');
  t.equal(withE(65538n), null, 'e = 65538 (even)');
  t.ok(withE(65539n), 'e = 65539');
  t.ok(withE((1n << 255n) + 1n), 'e of 256 bits');
  t.equal(withE((1n << 256n) + 1n), null, 'e over 256 bits (costly to verify)');
  const n = Buffer.from(jwk.n!, 'base64url');
  n[n.length - 1]! &= 0xfe;
  t.equal(jwkToEntry({ ...jwk, n: n.toString('base64url') }), null, 'even modulus');
  t.ok(jwkToEntry({ ...jwk, n: Buffer.concat([Buffer.alloc(1), Buffer.from(jwk.n!, 'base64url')]).toString('base64url') }), 'leading zero byte in n: still 2048 bits');
  const bits2040 = await exportJWK(generateKeyPairSync('rsa', { modulusLength: 2040 }).publicKey);
  t.equal(jwkToEntry(bits2040), null, '2040 bits');
});

t.test('jwkToEntry: EC keys only on supported curves, points on the curve', async (t) => {
  for (const crv of ['P-256', 'P-384', 'P-521']) {
    const jwk = await exportJWK(generateKeyPairSync('ec', { namedCurve: crv }).publicKey);
    t.ok(jwkToEntry(jwk), crv);
    const x = Buffer.from(jwk.x!, 'base64url');
    x[3]! ^= 1;
    t.equal(jwkToEntry({ ...jwk, x: x.toString('base64url') }), null, `${crv}: point off the curve`);
  }
  const p256 = await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
  t.equal(jwkToEntry({ ...p256, crv: 'P-384' }), null, 'coordinates of another curve');
  t.equal(jwkToEntry({ ...p256, crv: 'secp256k1' }), null, 'curve name not supported');
});

t.test('jwkToEntry: Ed25519 keys of small order or non-canonical encoding', async (t) => {
  const ed = await exportJWK(generateKeyPairSync('ed25519').publicKey);
  t.ok(jwkToEntry(ed), 'a real Ed25519 key');
  t.equal(weakEd25519(ed.x!), false);
  const p = (1n << 255n) - 19n;
  const y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
  const enc = (y: bigint, sign = false) => {
    const b = Buffer.from(y.toString(16).padStart(64, '0'), 'hex').reverse();
    if (sign) b[31]! |= 0x80;
    return b.toString('base64url');
  };
  for (const [name, y] of [['identity', 1n], ['order 2', p - 1n], ['order 4', 0n], ['order 8', y8], ['order 8 (other)', p - y8]] as const) {
    t.equal(jwkToEntry({ kty: 'OKP', crv: 'Ed25519', x: enc(y) }), null, name);
    t.equal(jwkToEntry({ kty: 'OKP', crv: 'Ed25519', x: enc(y, true) }), null, `${name}, sign bit set`);
  }
  t.equal(jwkToEntry({ kty: 'OKP', crv: 'Ed25519', x: enc(p + 1n) }), null, 'y = p + 1 (non-canonical identity)');
  t.equal(jwkToEntry({ kty: 'OKP', crv: 'Ed25519', x: enc(p + 3n) }), null, 'y ≥ p');
  t.equal(jwkToEntry({ kty: 'OKP', crv: 'Ed25519', x: 'AAAA' }), null, 'wrong length');
});
