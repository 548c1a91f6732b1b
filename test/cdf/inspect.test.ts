// CDF token/inspect against the stand-in: one request per token however many wait, cached until
// the earlier of exp and inspectTtlMs, 503 when CDF cannot answer, no grants on 401/403; then an
// internal app opened by a CDF capability through a real gateway.
import t from 'tap';
import { CdfInspector, NO_GRANTS } from '../../src/cdf/inspect.js';
import type { CdfConfig } from '../../src/config/types.js';
import type { Principal } from '../../src/token/principal.js';
import { startCdfStandin, type CdfStandin } from '../fixtures/cdf-standin.js';
import { closedPort, startUpstream, type Upstream } from '../fixtures/upstream.js';
import { startJwksServer, type JwksServer } from '../fixtures/jwks-server.js';
import { startGateway, secret } from '../fixtures/gateway.js';
import { claims, generateKey, mint, AUDIENCE, TestClock, waitFor, type TestKey } from '../fixtures/tokens.js';

/** A partial error pattern for t.rejects (tap's types want a whole Error). */
const err = (o: Record<string, unknown>): Error => o as unknown as Error;

let cdf: CdfStandin;
let app: Upstream;
let jwks: JwksServer;
let key: TestKey;
t.before(async () => {
  key = await generateKey('RS256', 'k1');
  [cdf, app, jwks] = await Promise.all([startCdfStandin(), startUpstream(), startJwksServer({ keys: [key.jwk] })]);
  cdf.grants.set('alice', { projects: ['demo'], acls: { timeSeriesAcl: ['READ', 'WRITE'] } });
  cdf.grants.set('bob', { projects: ['demo'], acls: { timeSeriesAcl: ['READ'] } });
});
t.teardown(async () => { await Promise.all([cdf?.close(), app?.close(), jwks?.close()]); });

const cfg = (over: Partial<CdfConfig> = {}): CdfConfig => ({ baseUrl: cdf.url, inspectTtlMs: 300000, timeoutMs: 2000, cacheSize: 100, ...over });

type Caller = Principal & { token: string };
const ask = (c: Caller): [Principal, string] => [c, c.token];
async function principal(sub: string, clock: TestClock, expInSec = 3600): Promise<Caller> {
  const token = await mint(claims(jwks.url, AUDIENCE, clock.now, { sub, exp: Math.floor(clock.now / 1000) + expInSec }), { key });
  const p: Principal = { sub, email: null, groups: [], scopes: new Set(), issuer: jwks.url, expiresAt: (Math.floor(clock.now / 1000) + expInSec) * 1000, groupsHeader: '' };
  return { ...p, token };
}

t.test('one request however many wait; then cached (synchronously) until inspectTtlMs', async (t) => {
  const clock = new TestClock();
  const inspector = new CdfInspector(cfg(), { clock: clock.fn });
  const alice = await principal('alice', clock);
  const before = cdf.inspectCalls;
  const hold = cdf.holdInspect();
  const waiting = Array.from({ length: 25 }, () => inspector.grants(...ask(alice)));
  await waitFor(() => cdf.inspectCalls > before);     // the one request has reached the stand-in
  hold.release();
  const answers = await Promise.all(waiting);
  t.equal(cdf.inspectCalls - before, 1, 'one token/inspect call for 25 waiting requests');
  t.ok(answers.every((a) => a === answers[0]));
  t.ok(answers[0]!.has('demo', 'timeSeriesAcl:WRITE'));
  const again = inspector.grants(...ask(alice));
  t.notOk(again instanceof Promise, 'cached: answered synchronously');
  clock.advance(300_001);
  await inspector.grants(...ask(alice));
  t.equal(cdf.inspectCalls - before, 2, 'asked again after inspectTtlMs');
  const last = cdf.last();
  t.equal(last.method, 'GET');
  t.equal(last.url, '/api/v1/token/inspect');
  t.equal(last.headers.authorization, `Bearer ${alice.token}`, 'with the caller\'s own token');
});

t.test('a token expiring before inspectTtlMs is asked about again after its exp', async (t) => {
  const clock = new TestClock();
  const inspector = new CdfInspector(cfg(), { clock: clock.fn });
  const alice = await principal('alice', clock, 60);
  const before = cdf.inspectCalls;
  await inspector.grants(...ask(alice));
  clock.advance(59_000);
  t.notOk(inspector.grants(...ask(alice)) instanceof Promise);
  clock.advance(2_000);
  await inspector.grants(...ask(alice));
  t.equal(cdf.inspectCalls - before, 2);
});

t.test('CDF refusing the token (401/403): no grants, remembered', async (t) => {
  const clock = new TestClock();
  const inspector = new CdfInspector(cfg(), { clock: clock.fn });
  t.equal(await inspector.grants(...ask(await principal('mallory', clock))), NO_GRANTS, '401: no grants');
  cdf.inspectStatus = 403;
  t.teardown(() => { cdf.inspectStatus = null; });
  t.equal(await inspector.grants(...ask(await principal('alice', clock))), NO_GRANTS, '403: no grants');
});

t.test('CDF down, failing or slow: 503, never remembered', async (t) => {
  const clock = new TestClock();
  const inspector = new CdfInspector(cfg(), { clock: clock.fn });
  const alice = await principal('alice', clock);
  cdf.inspectStatus = 502;
  await t.rejects(Promise.resolve(inspector.grants(...ask(alice))), err({ status: 503, code: 'cdf_unavailable' }));
  cdf.inspectStatus = null;
  t.ok((await inspector.grants(...ask(alice))).has('demo', 'timeSeriesAcl:READ'), 'the failure was not cached');

  const nowhere = new CdfInspector(cfg({ baseUrl: `http://127.0.0.1:${await closedPort()}` }), { clock: clock.fn });
  await t.rejects(Promise.resolve(nowhere.grants(...ask(alice))), err({ status: 503 }), 'unreachable');

  const slow = new CdfInspector(cfg({ timeoutMs: 100 }), { clock: clock.fn });
  const hold = cdf.holdInspect();
  await t.rejects(Promise.resolve(slow.grants(...ask(await principal('bob', clock)))), err({ status: 503 }), 'timeout');
  hold.release();
});

t.test('an app opened by a CDF capability', async (t) => {
  const gw = await startGateway(t, {
    tokens: { jwksTimeoutMs: 10000 },  // generous: shared CI machines stall
    issuers: [{ issuer: jwks.url, jwksUri: jwks.jwksUri, audiences: [AUDIENCE] }],
    cdf: { baseUrl: cdf.url },
    upstreams: { dash: { url: app.url, credentials: { type: 'none' } } },
    routes: [{ prefix: '/apps/dashboards', upstream: 'dash', allow: [{ project: 'demo', capabilities: ['timeSeriesAcl:WRITE'] }] }],
  });
  const get = async (sub: string) => {
    const token = secret(await mint(claims(jwks.url, AUDIENCE, Date.now(), { sub }), { key }));
    return fetch(`${gw.url}/apps/dashboards/`, { headers: { authorization: `Bearer ${token}` } });
  };
  const before = app.requests.length;
  const a = await get('alice');
  t.equal(a.status, 200, 'timeSeriesAcl:WRITE in demo: in');
  t.equal(app.requests.length, before + 1);
  t.equal(app.last().headers['x-auth-request-user'], 'alice');
  const b = await get('bob');
  t.equal(b.status, 403, 'READ only: out');
  t.match(b.headers.get('www-authenticate'), /insufficient_scope/);
  t.equal((await get('mallory')).status, 403, 'unknown to CDF: out');
  cdf.inspectStatus = 503;
  t.teardown(() => { cdf.inspectStatus = null; });
  const down = await get('carol');
  t.equal(down.status, 503, 'CDF down: 503, never allow');
  t.same(await down.json(), { error: { code: 503, message: 'Service unavailable: CDF cannot be asked about this token' } });
  t.equal(app.requests.length, before + 1, 'nothing refused reached the app');
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.match(metrics, /cdf_gateway_refusals_total\{route="\/apps\/dashboards",reason="no_rule"\} 2/);
  t.match(metrics, /cdf_gateway_refusals_total\{route="\/apps\/dashboards",reason="cdf_unavailable"\} 1/);
});
