// TokenVerifier's order of checks and its claim options: jose's rules check the claims on the
// one decode of the payload, before any key or signature work; with several issuers each token
// is held to its own issuer's audiences. Where signatures are checked, and the batched checks.
import t from 'tap';
import { InvalidTokenError } from '../../src/errors.js';
import { cpuBudget } from '../../src/token/cpu-budget.js';
import type { Principal } from '../../src/token/principal.js';
import { TokenVerifier, type SignatureMode } from '../../src/token/verify.js';
import { startJwksServer } from '../fixtures/jwks-server.js';
import { AUDIENCE, RecordingMetrics, TestClock, claims, generateKey, issuerConfig, mint, standardKeys, tokensConfig } from '../fixtures/tokens.js';

const { rs, attacker } = await standardKeys();
const reasonOf = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => (e instanceof InvalidTokenError ? e.reason : String(e)));

t.test('claims are refused before any key lookup or signature check', async (t) => {
  const server = await startJwksServer({ keys: [rs.jwk] });
  const clock = new TestClock();
  const metrics = new RecordingMetrics();
  const verifier = new TokenVerifier({
    issuers: [issuerConfig(server.issuer, server.jwksUri)], tokens: tokensConfig({ jwksCooldownMs: 0 }), clock: clock.fn, metrics,
  });
  t.teardown(async () => { verifier.close(); await server.close(); });
  await verifier.warmUp();
  const sec = Math.floor(clock.now / 1000);
  // Signed by another key under an unknown kid: the kid alone would make the verifier refetch the JWKS.
  const forged = await mint(claims(server.issuer, 'https://cdf.example', clock.now, { exp: sec - 600 }), { key: attacker });
  t.equal(await reasonOf(verifier.verify(forged)), 'expired');
  const foreign = await mint(claims('https://other.example', 'https://cdf.example', clock.now), { key: attacker });
  t.equal(await reasonOf(verifier.verify(foreign)), 'unknown_issuer');
  t.equal(server.requests.jwks, 1, 'no refetch: the keys were never consulted');
  const live = await mint(claims(server.issuer, 'https://cdf.example', clock.now), { key: attacker });
  t.equal(await reasonOf(verifier.verify(live)), 'unknown_kid', 'with valid claims the kid is looked up');
  t.equal(server.requests.jwks, 2);
});

t.test('several issuers: each token is held to its own issuer\'s audiences', async (t) => {
  const a = await startJwksServer({ keys: [rs.jwk] });
  const bKey = await generateKey('RS256', 'b-1');
  const b = await startJwksServer({ keys: [bKey.jwk] });
  const clock = new TestClock();
  const verifier = new TokenVerifier({
    issuers: [issuerConfig(a.issuer, a.jwksUri, { audiences: ['aud-a'] }), issuerConfig(b.issuer, b.jwksUri, { audiences: ['aud-b', 'aud-shared'] })],
    tokens: tokensConfig(), clock: clock.fn,
  });
  t.teardown(async () => { verifier.close(); await a.close(); await b.close(); });
  await verifier.warmUp();
  const tok = (iss: string, aud: string | string[], key = rs) => mint(claims(iss, aud, clock.now), { key });
  t.equal(await reasonOf(verifier.verify(await tok(a.issuer, 'aud-a'))), null);
  t.equal(await reasonOf(verifier.verify(await tok(b.issuer, 'aud-b', bKey))), null);
  t.equal(await reasonOf(verifier.verify(await tok(b.issuer, ['x', 'aud-shared'], bKey))), null);
  t.equal(await reasonOf(verifier.verify(await tok(a.issuer, 'aud-b'))), 'claim:aud', 'issuer A does not accept B\'s audience');
  t.equal(await reasonOf(verifier.verify(await tok(a.issuer, 'aud-shared'))), 'claim:aud');
  t.equal(await reasonOf(verifier.verify(await tok(b.issuer, 'aud-a', bKey))), 'claim:aud', 'nor B A\'s');
  t.equal(await reasonOf(verifier.verify(await tok('https://c.example', 'aud-a'))), 'unknown_issuer');
});

t.test('the place signatures are checked is configurable and reported', async (t) => {
  const mk = (signatures?: SignatureMode) => new TokenVerifier({ issuers: [], tokens: tokensConfig(), ...(signatures ? { signatures } : {}) });
  t.equal(mk('inline').signatures, 'inline');
  t.equal(mk('batched').signatures, 'batched');
  t.equal(mk('thread-pool').signatures, 'thread-pool');
  t.equal(mk().signatures, cpuBudget() > 1 ? 'thread-pool' : 'batched', 'batched on one CPU, the thread pool on more');
});

t.test('batched: the checks asked for in one turn run together at its end, each with its own answer', async (t) => {
  const server = await startJwksServer({ keys: [rs.jwk] });
  const clock = new TestClock();
  const metrics = new RecordingMetrics();
  const verifier = new TokenVerifier({ issuers: [issuerConfig(server.issuer, server.jwksUri)], tokens: tokensConfig(), clock: clock.fn, metrics, signatures: 'batched' });
  t.teardown(async () => { verifier.close(); await server.close(); });
  await verifier.warmUp();
  const other = await generateKey('RS256', rs.kid); // same kid, other material: a forgery
  const toks = await Promise.all([1, 2, 3, 4].map((i) => mint(claims(server.issuer, AUDIENCE, clock.now, { sub: `u${i}` }), { key: i === 3 ? other : rs })));
  const settled: string[] = [];
  const checks = toks.map((tok, i) => {
    const r = verifier.check(tok);
    t.ok(r instanceof Promise, `check ${i + 1} waits for the end of the turn`);
    return Promise.resolve(r).then((p) => { settled.push((p as Principal).sub); }, (e: unknown) => { settled.push((e as InvalidTokenError).reason); });
  });
  await Promise.resolve();
  t.same(settled, [], 'none answered within the turn');
  await new Promise((r) => setImmediate(r)); // queued after the batch: runs once it has
  await Promise.all(checks);
  t.same(settled, ['u1', 'u2', 'signature', 'u4'], 'each its own answer, in order; the forgery refused');
  t.same(metrics.verifications, ['valid', 'valid', 'invalid', 'valid']);
});

t.test('the caller\'s check of an unseen token runs only for a token that is not a compact JWS', async (t) => {
  const server = await startJwksServer({ keys: [rs.jwk] });
  const clock = new TestClock();
  const verifier = new TokenVerifier({ issuers: [issuerConfig(server.issuer, server.jwksUri)], tokens: tokensConfig(), clock: clock.fn });
  t.teardown(async () => { verifier.close(); await server.close(); });
  await verifier.warmUp();
  const seen: string[] = [];
  const unseen = (tok: string) => { seen.push(tok); if (tok.includes(' ')) throw new Error('not a token68'); };
  const settle = async (r: unknown) => (r instanceof InvalidTokenError ? r.reason : r instanceof Promise ? reasonOf(r) : null);
  // A compact JWS is a token68 as well: the caller's check is spared.
  const good = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs });
  t.equal(await settle(verifier.check(good, unseen)), null, 'a valid token verifies');
  const [h, p] = good.split('.');
  t.equal(await settle(verifier.check(`${h}.${p}.AAAA`, unseen)), 'signature', 'a forged signature is refused by the signature check');
  t.same(seen, [], 'neither asked the caller');
  // Not three base64url parts: the caller is asked first, and its refusal comes before ours.
  for (const [tok, reason] of [['abc', 'malformed'], ['a.b', 'malformed'], ['a.b.c.d', 'malformed'], [`${h}.${p}.sig+/`, 'malformed'], [`${h}..sig`, 'malformed']] as const) {
    t.equal(await settle(verifier.check(tok, unseen)), reason, tok.slice(0, 20));
  }
  t.equal(seen.length, 5, 'each malformed token asked the caller');
  t.throws(() => verifier.check('a b.c.d', unseen), /not a token68/, 'the caller\'s refusal is thrown as it was');
});
