// jwksUri: null → the JWKS URI comes from the issuer's discovery document.
import t from 'tap';
import { KeysUnavailableError } from '../../src/errors.js';
import { TokenVerifier } from '../../src/token/verify.js';
import { startJwksServer } from '../fixtures/jwks-server.js';
import { AUDIENCE, RecordingMetrics, TestClock, claims, issuerConfig, mint, standardKeys, tokensConfig } from '../fixtures/tokens.js';

const { rs, rs2 } = await standardKeys();
const COOLDOWN = 10_000;
// Real timeouts, kept apart by a wide margin so a loaded CI machine cannot blur them: a normal
// fetch always finishes within TIMEOUT_MS, a slow one never does.
const TIMEOUT_MS = 1000;
const SLOW_MS = 4000;

async function setup(t: { teardown(fn: () => unknown): void }) {
  const server = await startJwksServer({ keys: [rs.jwk], delayMs: SLOW_MS });
  const clock = new TestClock();
  const metrics = new RecordingMetrics();
  const verifier = new TokenVerifier({
    issuers: [issuerConfig(server.issuer, null)],
    tokens: tokensConfig({ jwksTimeoutMs: TIMEOUT_MS, jwksCooldownMs: COOLDOWN }),
    clock: clock.fn,
    metrics,
  });
  t.teardown(async () => { verifier.close(); await server.close(); });
  return { server, clock, metrics, verifier };
}

const reject = (p: Promise<unknown>) => p.then(() => { throw new Error('resolved'); }, (e: unknown) => e);

t.test('discovers the JWKS URI once, then reuses it', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  const toks = await Promise.all(Array.from({ length: 5 }, (_, i) => mint(claims(server.issuer, AUDIENCE, clock.now, { sub: `u${i}` }), { key: rs })));
  await Promise.all(toks.map((tok) => verifier.verify(tok)));
  t.same(server.requests, { discovery: 1, jwks: 1, total: 2 }, 'concurrent first requests: one discovery, one JWKS fetch');
  t.same(metrics.fetchOutcomes(), ['ok'], 'discovery + JWKS count as one fetch attempt');
  server.addKey(rs2.jwk);
  clock.advance(COOLDOWN);
  t.ok(await verifier.verify(await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs2 })));
  t.same(server.requests, { discovery: 1, jwks: 2, total: 3 }, 'refetch without rediscovery');
});

t.test('issuer mismatch in the metadata → no keys, 503, not ready', async (t) => {
  const { server, metrics, verifier, clock } = await setup(t);
  server.discoveryIssuer = `${server.issuer}/`;
  const err = await reject(verifier.verify(await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs })));
  t.ok(err instanceof KeysUnavailableError);
  t.equal(server.requests.jwks, 0, 'the JWKS of a mismatched issuer is never fetched');
  t.same(metrics.fetchOutcomes(), ['error']);
  t.match(verifier.readiness(), { ready: false, issuers: [{ lastError: /issuer/ }] });
});

t.test('metadata without a usable jwks_uri → 503', async (t) => {
  const { server, verifier, clock } = await setup(t);
  server.discoveryJwksUri = 'file:///etc/passwd';
  const err = await reject(verifier.verify(await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs })));
  t.ok(err instanceof KeysUnavailableError);
  t.match(verifier.readiness().issuers[0], { lastError: /jwks_uri/ });
});

t.test('slow discovery times out; discovery retried after the cooldown', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  await server.setMode('slow', SLOW_MS);
  await verifier.warmUp();
  t.same(metrics.fetchOutcomes(), ['timeout']);
  await server.setMode('normal');
  const tok = await mint(claims(server.issuer, AUDIENCE, clock.now), { key: rs });
  t.ok((await reject(verifier.verify(tok))) instanceof KeysUnavailableError, 'inside the cooldown');
  clock.advance(COOLDOWN);
  t.ok(await verifier.verify(tok));
  t.equal(server.requests.discovery, 2);
  t.same(metrics.fetchOutcomes(), ['timeout', 'ok']);
});

t.test('discovery answering garbage or an error status → error', async (t) => {
  for (const mode of ['garbage', 'down', 'not-jwks'] as const) {
    const { server, metrics, verifier } = await setup(t);
    await server.setMode(mode);
    await verifier.warmUp();
    t.same(metrics.fetchOutcomes(), ['error'], mode);
    t.equal(verifier.readiness().ready, false, mode);
  }
});
