// Timing guards against a real, misbehaving JWKS server and an injected clock. Assertions are
// about outcomes and fetch counts, never about elapsed time.
import t from 'tap';
import type { TokensConfig } from '../../src/config/types.js';
import { InvalidTokenError, KeysUnavailableError } from '../../src/errors.js';
import { TokenVerifier } from '../../src/token/verify.js';
import { startJwksServer, type JwksServer } from '../fixtures/jwks-server.js';
import {
  AUDIENCE, RecordingMetrics, TestClock, claims, issuerConfig, mint, standardKeys, tokensConfig, waitFor, type TestKey,
} from '../fixtures/tokens.js';

const { rs, rs2 } = await standardKeys();

const COOLDOWN = 10_000;
// Real timeouts, kept apart by a wide margin so a loaded CI machine cannot blur them: a normal
// fetch always finishes within TIMEOUT_MS, a slow one never does.
const TIMEOUT_MS = 1000;
const SLOW_MS = 4000;
const MAX_AGE = 60_000;
const MAX_STALE = 300_000;

async function setup(t: { teardown(fn: () => unknown): void }, opts: { keys?: TestKey[]; tokens?: Partial<TokensConfig>; discovery?: boolean } = {}) {
  const server = await startJwksServer({ keys: (opts.keys ?? [rs]).map((k) => k.jwk), delayMs: SLOW_MS });
  const clock = new TestClock();
  const metrics = new RecordingMetrics();
  const verifier = new TokenVerifier({
    issuers: [issuerConfig(server.issuer, opts.discovery ? null : server.jwksUri)],
    tokens: tokensConfig({
      jwksTimeoutMs: TIMEOUT_MS, jwksCooldownMs: COOLDOWN, jwksCacheMaxAgeMs: MAX_AGE, jwksMaxStaleMs: MAX_STALE, ...opts.tokens,
    }),
    clock: clock.fn,
    metrics,
  });
  t.teardown(async () => { verifier.close(); await server.close(); });
  let n = 0;
  // A distinct token each call (distinct sub), so the verified-token cache never answers.
  const token = (key: TestKey = rs, kid?: string | null) =>
    mint(claims(server.issuer, AUDIENCE, clock.now, { sub: `user-${++n}` }), { key, kid: kid === undefined ? key.kid : kid });
  return { server, clock, metrics, verifier, token };
}

const reject = (p: Promise<unknown>) => p.then(() => { throw new Error('resolved'); }, (e: unknown) => e);

t.test('slow JWKS beyond the timeout, no keys → 503, timeout recorded, not ready', async (t) => {
  const { server, metrics, verifier, token } = await setup(t);
  await server.setMode('slow', SLOW_MS);
  const err = await reject(verifier.verify(await token()));
  t.ok(err instanceof KeysUnavailableError, '503');
  t.equal((err as KeysUnavailableError).status, 503);
  t.same(metrics.fetchOutcomes(), ['timeout']);
  t.same(metrics.verifications, ['unavailable']);
  const r = verifier.readiness();
  t.equal(r.ready, false);
  t.match(r.issuers[0], { issuer: server.issuer, ready: false, keys: 0, ageMs: null, lastError: /timeout/ });
});

for (const mode of ['down', 'refused', 'garbage', 'not-jwks'] as const) {
  t.test(`IdP ${mode}, no keys → 503 with an error fetch`, async (t) => {
    const { server, metrics, verifier, token } = await setup(t);
    await server.setMode(mode);
    const err = await reject(verifier.verify(await token()));
    t.ok(err instanceof KeysUnavailableError);
    t.same(metrics.fetchOutcomes(), ['error']);
    t.equal(verifier.readiness().ready, false);
    t.type(verifier.readiness().issuers[0]!.lastError, 'string');
  });
}

t.test('warmUp fetches once, never throws, and makes the verifier ready', async (t) => {
  const { server, metrics, verifier, clock } = await setup(t);
  t.equal(verifier.readiness().ready, false, 'not ready before any fetch');
  await verifier.warmUp();
  t.same(metrics.fetchOutcomes(), ['ok']);
  clock.advance(1234);
  t.match(verifier.readiness(), { ready: true, issuers: [{ ready: true, keys: 1, ageMs: 1234, lastError: null }] });
  await server.setMode('down');
  clock.advance(COOLDOWN);
  await verifier.warmUp();
  t.same(metrics.fetchOutcomes(), ['ok', 'error'], 'a failed warmUp resolves');
});

t.test('refreshDue (readiness probes): a failing IdP is asked at most once per cooldown; a fresh set is not refetched', async (t) => {
  const { server, clock, metrics, verifier } = await setup(t);
  await server.setMode('down');
  for (let i = 0; i < 10; i++) await verifier.refreshDue();
  t.equal(server.requests.jwks, 1, 'ten probes, one fetch');
  t.same(metrics.fetchOutcomes(), ['error']);
  t.equal(verifier.readiness().ready, false);
  clock.advance(COOLDOWN - 1);
  await verifier.refreshDue();
  t.equal(server.requests.jwks, 1, 'still inside the cooldown of the failed fetch');
  clock.advance(1);
  await verifier.refreshDue();
  await verifier.refreshDue();
  t.equal(server.requests.jwks, 2, 'one more once the cooldown has passed');

  await server.setMode('normal');
  clock.advance(COOLDOWN);
  await verifier.refreshDue();
  t.equal(verifier.readiness().ready, true, 'ready after the first allowed fetch succeeds');
  for (let i = 0; i < 5; i++) await verifier.refreshDue();
  t.equal(server.requests.jwks, 3, 'a usable, fresh set is not fetched again');
  t.same(metrics.fetchOutcomes(), ['error', 'error', 'ok']);
});

t.test('refreshDue joins a fetch in flight instead of starting another', async (t) => {
  const { server, verifier } = await setup(t);
  await server.setMode('slow', SLOW_MS);
  await Promise.all([verifier.refreshDue(), verifier.refreshDue(), verifier.refreshDue()]);
  t.equal(server.requests.jwks, 1);
  t.equal(verifier.readiness().ready, false, 'the timed-out fetch left no keys');
});

t.test('keys cached, IdP down: verifies until maxStale, then 503; readiness flips and recovers', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await verifier.warmUp();
  const t0 = clock.now;
  await server.setMode('down');

  clock.advance(MAX_AGE + 1);
  t.equal((await verifier.verify(await token())).sub !== '', true, 'served from the old keys');
  await waitFor(() => metrics.fetches.length === 2);
  t.same(metrics.fetchOutcomes(), ['ok', 'error'], 'the background refresh failed');

  clock.now = t0 + MAX_STALE;
  await verifier.verify(await token());
  t.equal(verifier.readiness().ready, true, 'exactly at maxStale: still ready');
  await waitFor(() => metrics.fetches.length === 3);

  clock.now = t0 + MAX_STALE + 1;
  t.equal(verifier.readiness().ready, false, 'past maxStale: not ready');
  const err = await reject(verifier.verify(await token()));
  t.ok(err instanceof KeysUnavailableError, '503 past maxStale');
  t.equal(metrics.verifications.at(-1), 'unavailable');

  await server.setMode('normal');
  const again = await reject(verifier.verify(await token()));
  t.ok(again instanceof KeysUnavailableError, 'still 503 inside the cooldown of the last failed attempt');
  const fetchesBefore = metrics.fetches.length;
  clock.advance(COOLDOWN);
  await verifier.verify(await token());
  t.equal(metrics.fetches.length, fetchesBefore + 1, 'one fetch after the cooldown');
  t.equal(verifier.readiness().ready, true, 'recovered');
});

t.test('past cacheMaxAge: the request is served from the old keys while one fetch runs in the background', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await verifier.warmUp();
  t.equal(server.requests.jwks, 1);
  await server.setMode('slow', SLOW_MS);
  clock.advance(MAX_AGE);
  await verifier.verify(await token());
  t.equal(metrics.fetches.length, 1, 'exactly at cacheMaxAge: no refresh');
  clock.advance(1);
  const tokens = await Promise.all([token(), token(), token()]);
  for (const tok of tokens) await verifier.verify(tok);
  t.equal(metrics.fetches.length, 1, 'requests answered before the (slow) refresh finished');
  await waitFor(() => metrics.fetches.length === 2);
  t.same(metrics.fetchOutcomes(), ['ok', 'timeout']);
  t.equal(server.requests.jwks, 2, 'one background fetch for three requests');
  t.equal(verifier.readiness().ready, true, 'a failed refresh does not unready fresh-enough keys');
});

t.test('background refresh picks up a new key set', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await verifier.warmUp();
  server.setKeys([rs.jwk, rs2.jwk]);
  clock.advance(MAX_AGE + 1);
  await verifier.verify(await token());
  await waitFor(() => metrics.fetches.length === 2);
  t.same(metrics.fetchOutcomes(), ['ok', 'ok']);
  t.equal(verifier.readiness().issuers[0]!.keys, 2);
  t.ok(await verifier.verify(await token(rs2)), 'new key usable without an unknown-kid refetch');
  t.equal(metrics.fetches.length, 2);
});

t.test('concurrent verifies with an empty key cache → exactly one fetch', async (t) => {
  const { server, metrics, verifier, token } = await setup(t);
  const tokens = await Promise.all(Array.from({ length: 25 }, () => token()));
  const principals = await Promise.all(tokens.map((tok) => verifier.verify(tok)));
  t.equal(principals.length, 25);
  t.equal(server.requests.jwks, 1);
  t.same(metrics.fetchOutcomes(), ['ok']);
});

t.test('concurrent verifies against a slow IdP → one fetch, all 503', async (t) => {
  const { server, metrics, verifier, token } = await setup(t);
  await server.setMode('slow', SLOW_MS);
  const tokens = await Promise.all(Array.from({ length: 10 }, () => token()));
  const errs = await Promise.all(tokens.map((tok) => reject(verifier.verify(tok))));
  t.ok(errs.every((e) => e instanceof KeysUnavailableError));
  t.equal(server.requests.jwks, 1);
  t.same(metrics.fetchOutcomes(), ['timeout']);
});

t.test('unknown kid: one refetch, then cooldown; the next refetch only after the cooldown', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await verifier.warmUp();
  const unknown = async (kid: string) => {
    const err = await reject(verifier.verify(await token(rs2, kid)));
    t.ok(err instanceof InvalidTokenError, kid);
    t.equal((err as InvalidTokenError).reason, 'unknown_kid', kid);
  };
  await unknown('nope-1');
  t.equal(server.requests.jwks, 2, 'one refetch (the successful warm-up started no cooldown)');
  await unknown('nope-2');
  await unknown('nope-3');
  clock.advance(COOLDOWN - 1);
  await unknown('nope-4');
  t.equal(server.requests.jwks, 2, 'no refetch inside the cooldown');
  clock.advance(1);
  await unknown('nope-5');
  t.equal(server.requests.jwks, 3, 'one more after it');
  t.same(metrics.fetchOutcomes(), ['ok', 'ok', 'ok']);
  t.ok(await verifier.verify(await token()), 'known kids keep working throughout');
});

t.test('a key rotated in right after the start-up fetch is picked up at once', async (t) => {
  const { server, verifier, token } = await setup(t);
  await verifier.warmUp();
  server.setKeys([rs.jwk, rs2.jwk]);
  t.ok(await verifier.verify(await token(rs2)), 'accepted, no 401 for a cooldown');
  t.equal(server.requests.jwks, 2);
});

t.test('a successful routine refresh does not start the cooldown: a key rotated in right after it is picked up at once', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await verifier.warmUp();
  clock.advance(MAX_AGE + 1);
  await verifier.verify(await token());
  await waitFor(() => metrics.fetches.length === 2);
  t.same(metrics.fetchOutcomes(), ['ok', 'ok'], 'the routine background refresh');
  clock.advance(200);
  server.setKeys([rs.jwk, rs2.jwk]); // the IdP rotates 0.2 s after it
  t.ok(await verifier.verify(await token(rs2)), 'the new kid is accepted at once');
  t.equal(server.requests.jwks, 3, 'one unknown-kid refetch');
  const err = await reject(verifier.verify(await token(rs2, 'made-up')));
  t.equal((err as InvalidTokenError).reason, 'unknown_kid');
  t.equal(server.requests.jwks, 3, 'that unknown-kid refetch started the cooldown');
  clock.advance(COOLDOWN);
  await reject(verifier.verify(await token(rs2, 'made-up-2')));
  t.equal(server.requests.jwks, 4, 'one more after it');
});

t.test('a failed routine refresh starts the cooldown', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await verifier.warmUp();
  await server.setMode('down');
  clock.advance(MAX_AGE + 1);
  await verifier.verify(await token());
  await waitFor(() => metrics.fetches.length === 2);
  await server.setMode('normal');
  server.setKeys([rs.jwk, rs2.jwk]);
  const err = await reject(verifier.verify(await token(rs2)));
  t.equal((err as InvalidTokenError).reason, 'unknown_kid', 'inside the cooldown of the failed fetch: no refetch');
  t.equal(server.requests.jwks, 2);
  clock.advance(COOLDOWN);
  t.ok(await verifier.verify(await token(rs2)), 'after it: refetched');
});

t.test('a key set with no usable key is a failed fetch: the last good keys stay', async (t) => {
  const weak = { ...rs2.jwk, e: 'AQ' };
  for (const [name, keys] of [['empty', []], ['only keys we refuse', [weak, { ...rs2.jwk, use: 'enc' }]]] as const) {
    await t.test(name, async (t) => {
      const { server, clock, metrics, verifier, token } = await setup(t);
      await verifier.warmUp();
      server.setKeys([...keys]);
      clock.advance(MAX_AGE + 1);
      t.ok(await verifier.verify(await token()), 'served from the old keys');
      await waitFor(() => metrics.fetches.length === 2);
      t.same(metrics.fetchOutcomes(), ['ok', 'error']);
      t.ok(await verifier.verify(await token()), 'the old keys still verify after the refresh');
      t.match(verifier.readiness(), { ready: true, issuers: [{ keys: 1, lastError: /no usable key/ }] });
      t.ok((await reject(verifier.verify(await token(rs2)))) instanceof InvalidTokenError, 'the failed fetch started the cooldown');
      t.equal(server.requests.jwks, 2);
    });
  }
  await t.test('on the first fetch: 503, not ready', async (t) => {
    const { server, metrics, verifier, token } = await setup(t);
    server.setKeys([]);
    t.ok((await reject(verifier.verify(await token()))) instanceof KeysUnavailableError);
    t.same(metrics.fetchOutcomes(), ['error']);
    t.equal(verifier.readiness().ready, false);
  });
});

t.test('a key set larger than jwksMaxBytes is a failed fetch, cut off while it is read', async (t) => {
  const MAX_BYTES = 65_536;
  const HUGE = 20 * 1024 * 1024;
  for (const declareLength of [false, true]) {
    await t.test(declareLength ? 'with Content-Length' : 'chunked, no Content-Length', async (t) => {
      const { server, clock, metrics, verifier, token } = await setup(t, { tokens: { jwksMaxBytes: MAX_BYTES } });
      await verifier.warmUp();
      server.padTo = HUGE;
      server.declareLength = declareLength;
      clock.advance(MAX_AGE + 1);
      t.ok(await verifier.verify(await token()), 'served from the old keys');
      await waitFor(() => metrics.fetches.length === 2);
      t.same(metrics.fetchOutcomes(), ['ok', 'error']);
      t.match(verifier.readiness().issuers[0], { keys: 1, lastError: /too large/ });
      t.equal(server.padded.finished, false, 'the gateway stopped reading: the 20 MB were never all sent');
      t.ok(server.padded.sent < HUGE, `sent ${server.padded.sent} of ${HUGE} bytes`);
      t.ok(await verifier.verify(await token()), 'the last good keys stay');
    });
  }
  await t.test('just under the limit (whitespace-padded): accepted', async (t) => {
    const { server, metrics, verifier, token } = await setup(t, { tokens: { jwksMaxBytes: MAX_BYTES } });
    server.padTo = MAX_BYTES;
    t.ok(await verifier.verify(await token()));
    t.same(metrics.fetchOutcomes(), ['ok']);
    t.equal(server.padded.finished, true);
  });
  await t.test('the first fetch too large: 503', async (t) => {
    const { server, metrics, verifier, token } = await setup(t, { tokens: { jwksMaxBytes: MAX_BYTES } });
    server.padTo = MAX_BYTES + 1;
    t.ok((await reject(verifier.verify(await token()))) instanceof KeysUnavailableError);
    t.same(metrics.fetchOutcomes(), ['error']);
  });
});

t.test('concurrent unknown kids coalesce into one refetch', async (t) => {
  const { server, clock, verifier, token } = await setup(t);
  await verifier.warmUp();
  clock.advance(COOLDOWN);
  const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => token(rs2, `nope-${i}`)));
  const errs = await Promise.all(tokens.map((tok) => reject(verifier.verify(tok))));
  t.ok(errs.every((e) => e instanceof InvalidTokenError && e.reason === 'unknown_kid'));
  t.equal(server.requests.jwks, 2);
});

t.test('a failed fetch starts the cooldown (no hammering a down IdP)', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await server.setMode('down');
  for (let i = 0; i < 5; i++) t.ok((await reject(verifier.verify(await token()))) instanceof KeysUnavailableError);
  t.equal(server.requests.jwks, 1, 'one attempt for five requests');
  await server.setMode('normal');
  clock.advance(COOLDOWN - 1);
  t.ok((await reject(verifier.verify(await token()))) instanceof KeysUnavailableError, 'still cooling down');
  t.equal(server.requests.jwks, 1);
  clock.advance(1);
  t.ok(await verifier.verify(await token()), 'fetches after the cooldown');
  t.same(metrics.fetchOutcomes(), ['error', 'ok']);
});

t.test('a failed unknown-kid refetch also starts the cooldown; cached keys keep working', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await verifier.warmUp();
  await server.setMode('refused');
  clock.advance(COOLDOWN);
  const err = await reject(verifier.verify(await token(rs2)));
  t.equal((err as InvalidTokenError).reason, 'unknown_kid', 'usable keys, kid unknown: 401, not 503');
  t.same(metrics.fetchOutcomes(), ['ok', 'error']);
  await reject(verifier.verify(await token(rs2)));
  t.equal(metrics.fetches.length, 2, 'no second attempt inside the cooldown');
  t.ok(await verifier.verify(await token()));
});

t.test('rotation: a token with a new kid is accepted after the refetch', async (t) => {
  const { server, clock, metrics, verifier, token } = await setup(t);
  await verifier.warmUp();
  server.setKeys([rs.jwk, rs2.jwk]);
  clock.advance(COOLDOWN);
  const p = await verifier.verify(await token(rs2));
  t.equal(p.issuer, server.issuer);
  t.equal(server.requests.jwks, 2);
  server.removeKey(rs.kid);
  clock.advance(COOLDOWN);
  t.ok(await verifier.verify(await token(rs)), 'a retired key works until the next refresh (kid found: no refetch)');
  t.equal(server.requests.jwks, 2);
  clock.advance(MAX_AGE);
  t.ok(await verifier.verify(await token(rs)), 'past cacheMaxAge: still served, refresh in the background');
  await waitFor(() => metrics.fetches.length === 3);
  const err = await reject(verifier.verify(await token(rs)));
  t.ok(err instanceof InvalidTokenError, 'gone after the refresh');
  t.equal((err as InvalidTokenError).reason, 'unknown_kid');
  t.same(metrics.fetchOutcomes(), ['ok', 'ok', 'ok', 'ok'], 'the retired kid got one refetch (the background refresh started no cooldown)');
  t.ok(await verifier.verify(await token(rs2)));
});

t.test('no kid: the single compatible key, else unknown_kid', async (t) => {
  const { server, clock, verifier, token } = await setup(t);
  t.ok(await verifier.verify(await token(rs, null)), 'one RS256 key: used');
  server.setKeys([rs.jwk, rs2.jwk]);
  clock.advance(COOLDOWN);
  await verifier.verify(await token(rs2)); // refetch: now two RS256 keys
  const err = await reject(verifier.verify(await token(rs, null)));
  t.equal((err as InvalidTokenError).reason, 'unknown_kid', 'two candidates: ambiguous');
});

t.test('fetch metrics carry the issuer and a duration; failures are logged at warn with issuer and message', async (t) => {
  const logs: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const logger = {
    warn: (obj: Record<string, unknown>, msg: string) => logs.push({ level: 'warn', obj, msg }),
  } as unknown as import('pino').Logger;
  const server = await startJwksServer({ keys: [rs.jwk] });
  t.teardown(() => server.close());
  await server.setMode('down');
  const metrics = new RecordingMetrics();
  const v = new TokenVerifier({ issuers: [issuerConfig(server.issuer, server.jwksUri)], tokens: tokensConfig(), metrics, logger });
  await v.warmUp();
  t.equal(metrics.fetches.length, 1);
  t.equal(metrics.fetches[0]!.issuer, server.issuer);
  t.ok(metrics.fetches[0]!.seconds >= 0 && metrics.fetches[0]!.seconds < 60);
  t.equal(logs.length, 1);
  t.same(Object.keys(logs[0]!.obj).sort(), ['err', 'issuer', 'reason']);
  t.equal(logs[0]!.obj.issuer, server.issuer);
  t.match(logs[0]!.obj.reason, /200/, 'the reason in words');
  t.ok(logs[0]!.obj.err, 'and the error itself, with its cause chain');
});
