// The verified-token cache: hits never outlive `exp`, a key change or an unusable key set.
import { createHash } from 'node:crypto';
import t from 'tap';
import type { TokensConfig } from '../../src/config/types.js';
import { InvalidTokenError, KeysUnavailableError } from '../../src/errors.js';
import { TokenVerifier } from '../../src/token/verify.js';
import { startJwksServer } from '../fixtures/jwks-server.js';
import {
  AUDIENCE, RecordingMetrics, TestClock, claims, generateKey, issuerConfig, mint, standardKeys, tokensConfig, waitFor,
} from '../fixtures/tokens.js';

const { rs, rs2 } = await standardKeys();
const COOLDOWN = 10_000;
const MAX_AGE = 60_000;
const MAX_STALE = 300_000;

async function setup(t: { teardown(fn: () => unknown): void }, tokens: Partial<TokensConfig> = {}, extra: { cacheMaxBytes?: number } = {}) {
  const server = await startJwksServer({ keys: [rs.jwk] });
  const clock = new TestClock();
  const metrics = new RecordingMetrics();
  const verifier = new TokenVerifier({
    issuers: [issuerConfig(server.issuer, server.jwksUri)],
    tokens: tokensConfig({ jwksCooldownMs: COOLDOWN, jwksCacheMaxAgeMs: MAX_AGE, jwksMaxStaleMs: MAX_STALE, clockToleranceSec: 30, ...tokens }),
    clock: clock.fn,
    metrics,
    ...extra,
  });
  t.teardown(async () => { verifier.close(); await server.close(); });
  await verifier.warmUp();
  return { server, clock, metrics, verifier };
}

const reject = (p: Promise<unknown>) => p.then(() => { throw new Error('resolved'); }, (e: unknown) => e);

/** Verified twice: the cache takes a token the second time it verifies (see admission.ts). */
async function admit(verifier: TokenVerifier, tok: string): Promise<void> {
  await verifier.verify(tok);
  await verifier.verify(tok);
}

t.test('a repeated token is served from the cache from its second verification, as the same Principal', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs });
  const a = await verifier.verify(tok);
  t.equal(verifier.cacheStats().entries, 0, 'not cached on its first verification');
  const b = await verifier.verify(tok);
  const c = await verifier.verify(tok);
  const d = await verifier.verify(tok);
  t.same(a, b);
  t.equal(b, c);
  t.equal(c, d);
  t.same(metrics.verifications, ['valid', 'valid', 'cached', 'cached']);
});

t.test('tokens seen once are not cached and evict nothing', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t, { cacheSize: 2 });
  const kept = await mint(claims(server.issuer, AUDIENCE, clock.now, { sub: 'kept' }), { key: rs });
  await admit(verifier, kept);
  const once = await Promise.all(Array.from({ length: 30 }, (_, i) => mint(claims(server.issuer, AUDIENCE, clock.now, { sub: `once-${i}` }), { key: rs })));
  for (const tok of once) await verifier.verify(tok);
  t.equal(verifier.cacheStats().entries, 1, 'only the token verified twice is held');
  metrics.verifications.length = 0;
  await verifier.verify(kept);
  t.same(metrics.verifications, ['cached'], 'thirty first-seen tokens did not evict it');
});

t.test('cacheSize 0 disables the cache', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t, { cacheSize: 0 });
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs });
  await verifier.verify(tok);
  await verifier.verify(tok);
  t.same(metrics.verifications, ['valid', 'valid']);
});

t.test('an entry never outlives exp', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const sec = Math.floor(clock.now / 1000);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now, { exp: sec + 100 }), { key: rs });
  await admit(verifier, tok);
  clock.now = (sec + 100) * 1000 - 1;
  await verifier.verify(tok);
  clock.now = (sec + 100) * 1000;
  await verifier.verify(tok); // at exp: not from the cache; re-verified and accepted within the tolerance
  clock.now = (sec + 130) * 1000;
  const err = await reject(verifier.verify(tok));
  t.equal((err as InvalidTokenError).reason, 'expired');
  t.same(metrics.verifications, ['valid', 'valid', 'cached', 'valid', 'expired']);
});

t.test('a token verified within the tolerance after exp is not cached', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const sec = Math.floor(clock.now / 1000);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now, { exp: sec - 10 }), { key: rs });
  await verifier.verify(tok);
  await verifier.verify(tok);
  await verifier.verify(tok);
  t.same(metrics.verifications, ['valid', 'valid', 'valid']);
});

t.test('a key removed by rotation drops its cached tokens', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs });
  await admit(verifier, tok);
  server.setKeys([rs2.jwk]);
  clock.advance(COOLDOWN);
  await verifier.verify(await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs2 })); // unknown kid → refetch
  t.equal(server.requests.jwks, 2);
  const err = await reject(verifier.verify(tok));
  t.ok(err instanceof InvalidTokenError);
  t.equal((err as InvalidTokenError).reason, 'unknown_kid');
  t.same(metrics.verifications, ['valid', 'valid', 'valid', 'invalid']);
});

t.test('new material under the same kid drops cached tokens', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs });
  await admit(verifier, tok);
  const replacement = await generateKey('RS256', rs.kid);
  server.setKeys([replacement.jwk]);
  clock.advance(MAX_AGE + 1);
  await verifier.verify(tok); // hit, but past cacheMaxAge: refresh starts in the background
  await waitFor(() => metrics.fetches.length === 2);
  const err = await reject(verifier.verify(tok));
  t.equal((err as InvalidTokenError).reason, 'signature', 'old signature fails against the new material');
  t.ok(await verifier.verify(await mint(claims(server.issuer, AUDIENCE, clock.now), { key: replacement })));
  t.same(metrics.verifications, ['valid', 'valid', 'cached', 'invalid', 'valid']);
});

t.test('a refresh returning the same keys keeps the cache', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs });
  await admit(verifier, tok);
  server.setKeys([rs.jwk, rs2.jwk]);
  clock.advance(COOLDOWN);
  await verifier.verify(await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs2 }));
  t.equal(server.requests.jwks, 2, 'the key set was refetched (and changed)');
  await verifier.verify(tok);
  t.same(metrics.verifications, ['valid', 'valid', 'valid', 'cached'], 'the unchanged key kept its KeyObject');
});

t.test('no cache hits once the key set is past maxStale', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now, { exp: Math.floor(clock.now / 1000) + 86_400 }), { key: rs });
  await admit(verifier, tok);
  await server.setMode('down');
  clock.advance(MAX_STALE);
  await verifier.verify(tok);
  await waitFor(() => metrics.fetches.length === 2); // the background refresh, failing
  clock.advance(1);
  const err = await reject(verifier.verify(tok));
  t.ok(err instanceof KeysUnavailableError);
  t.same(metrics.verifications, ['valid', 'valid', 'cached', 'unavailable']);
});

t.test('cache hits still trigger the background refresh when the key set is old', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs });
  await admit(verifier, tok);
  clock.advance(MAX_AGE + 1);
  await verifier.verify(tok);
  await waitFor(() => metrics.fetches.length === 2);
  t.equal(server.requests.jwks, 2);
  t.same(metrics.verifications, ['valid', 'valid', 'cached']);
});

t.test('too-large tokens are refused before the cache', async (t) => {
  const { metrics, verifier } = await setup(t, { maxTokenBytes: 100 });
  const err = await reject(verifier.verify('a'.repeat(101)));
  t.equal((err as InvalidTokenError).reason, 'too_large');
  t.same(metrics.verifications, ['invalid']);
});

t.test('the LRU is bounded by cacheSize', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t, { cacheSize: 2 });
  const toks = await Promise.all([1, 2, 3].map((i) => mint(claims(server.issuer, AUDIENCE, clock.now, { sub: `u${i}` }), { key: rs })));
  for (const tok of toks) await admit(verifier, tok);
  metrics.verifications.length = 0;
  await verifier.verify(toks[2]!);
  await verifier.verify(toks[0]!);
  t.same(metrics.verifications, ['cached', 'valid'], 'the oldest was evicted');
});

/** The verifier's LRU (private): only to show what it holds. */
function cacheOf(verifier: TokenVerifier): { keys(): IterableIterator<string>; values(): IterableIterator<unknown> } {
  return (verifier as unknown as { cache: { keys(): IterableIterator<string>; values(): IterableIterator<unknown> } }).cache;
}

t.test('the cache is keyed by the SHA-256 of the token and never holds the token', async (t) => {
  const { server, clock, verifier } = await setup(t);
  const toks = await Promise.all([1, 2, 3].map((i) => mint(claims(server.issuer, AUDIENCE, clock.now, { sub: `u${i}` }), { key: rs })));
  for (const tok of toks) await admit(verifier, tok);
  const keys = [...cacheOf(verifier).keys()];
  t.equal(keys.length, 3);
  const digests = toks.map((tok) => createHash('sha256').update(tok).digest('binary'));
  t.same(new Set(keys), new Set(digests), 'keys are the tokens\' SHA-256 digests');
  const held = JSON.stringify([...cacheOf(verifier).values()], (_k, v: unknown) => (v instanceof Set ? [...v] : v));
  for (const tok of toks) {
    t.notOk(held.includes(tok), 'no cached value holds the token');
    t.notOk(held.includes(tok.split('.')[2]!), 'nor its signature');
  }
});

t.test('the cache is bounded in bytes as well as entries: large tokens evict sooner', async (t) => {
  const maxBytes = 64 * 1024;
  const { server, clock, metrics, verifier } = await setup(t, { cacheSize: 1000 }, { cacheMaxBytes: maxBytes });
  // Entra-sized tokens: 200 group ids each (about 10 KB of token, ~20 KB of Principal).
  const groups = (i: number) => Array.from({ length: 200 }, (_, g) => `${String(i).padStart(8, '0')}-0000-4000-8000-${String(g).padStart(12, '0')}`);
  const toks = await Promise.all(Array.from({ length: 8 }, (_, i) => mint(claims(server.issuer, AUDIENCE, clock.now, { sub: `u${i}`, groups: groups(i) }), { key: rs })));
  t.ok(toks[0]!.length > 9000, `token of ${toks[0]!.length} bytes`);
  for (const tok of toks) await admit(verifier, tok);
  const { entries, bytes } = verifier.cacheStats();
  t.ok(bytes <= maxBytes, `${bytes} estimated bytes within ${maxBytes}`);
  t.ok(entries >= 1 && entries < toks.length, `${entries} of ${toks.length} kept`);
  metrics.verifications.length = 0;
  await verifier.verify(toks[7]!);
  await verifier.verify(toks[0]!);
  t.same(metrics.verifications, ['cached', 'valid'], 'the newest is a hit, the oldest was evicted for its size');

  // Small tokens still fill the cache up to its entry bound.
  const small = await Promise.all(Array.from({ length: 20 }, (_, i) => mint(claims(server.issuer, AUDIENCE, clock.now, { sub: `s${i}` }), { key: rs })));
  for (const tok of small) await admit(verifier, tok);
  t.ok(verifier.cacheStats().entries >= 20, 'twenty small entries fit where three large ones did not');
});

t.test('a token refused for its signature is refused again without a second signature check, until the keys change', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  // Signed with new material published later under the same kid: refused now, valid after the rotation.
  const next = await generateKey('RS256', rs.kid);
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: next });
  const checker = (verifier as unknown as { checker: { check: (...a: unknown[]) => unknown } }).checker;
  const check = checker.check.bind(checker);
  let checks = 0;
  checker.check = (...a: unknown[]) => { checks++; return check(...a); };
  for (let i = 0; i < 3; i++) t.equal(((await reject(verifier.verify(tok))) as InvalidTokenError).reason, 'signature');
  t.equal(checks, 1, 'one signature check for three refusals');
  t.same(metrics.verifications, ['invalid', 'invalid', 'invalid']);
  const remembered = verifier.check(tok);
  t.ok(remembered instanceof InvalidTokenError, 'check() returns the refusal synchronously (no promise, no throw on the 401 path)');
  t.equal((remembered as InvalidTokenError).reason, 'signature');
  const unseen = verifier.check(await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs }));
  t.ok(unseen instanceof Promise, 'an unseen token: the full verification, as a promise');
  t.ok(await unseen);
  metrics.verifications.length = 0;

  server.setKeys([next.jwk]);
  clock.advance(MAX_AGE + 1);
  await verifier.verify(await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs })).catch(() => null); // starts the refresh
  await waitFor(() => metrics.fetches.length === 2);
  checks = 0;
  t.ok(await verifier.verify(tok), 'the new key set verifies the token: the remembered refusal is void');
  t.equal(checks, 1, 'checked again');
});

t.test('cacheSize 0 remembers no refusal either', async (t) => {
  const { server, clock, verifier } = await setup(t, { cacheSize: 0 });
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: await generateKey('RS256', rs.kid) });
  const checker = (verifier as unknown as { checker: { check: (...a: unknown[]) => unknown } }).checker;
  const check = checker.check.bind(checker);
  let checks = 0;
  checker.check = (...a: unknown[]) => { checks++; return check(...a); };
  await reject(verifier.verify(tok));
  await reject(verifier.verify(tok));
  t.equal(checks, 2);
});
