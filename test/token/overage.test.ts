// Entra groups overage against a Graph stand-in: getMemberObjects with the gateway's own
// client-credentials token, paging, throttling (Retry-After), failures → 503, cache per oid; and
// through a gateway: resolved with groupsOverage, refused with reason groups_overage without it.
import t from 'tap';
import { GraphGroups, retryAfterMs } from '../../src/token/overage.js';
import type { GroupsOverageConfig } from '../../src/config/types.js';
import type { Principal } from '../../src/token/principal.js';
import { startGraphStandin, GRAPH_TOKEN, type GraphStandin } from '../fixtures/graph-standin.js';
import { startUpstream, type Upstream } from '../fixtures/upstream.js';
import { startJwksServer, type JwksServer } from '../fixtures/jwks-server.js';
import { startGateway, secret } from '../fixtures/gateway.js';
import { claims, generateKey, mint, AUDIENCE, TestClock, waitFor, type TestKey } from '../fixtures/tokens.js';

/** A partial error pattern for t.rejects (tap's types want a whole Error). */
const err = (o: Record<string, unknown>): Error => o as unknown as Error;

const GROUPS = ['g-1', 'g-2', 'g-readers', 'g-4', 'g-5'];
let graph: GraphStandin;
let app: Upstream;
let jwks: JwksServer;
let key: TestKey;
t.before(async () => {
  key = await generateKey('RS256', 'k1');
  [graph, app, jwks] = await Promise.all([startGraphStandin(), startUpstream(), startJwksServer({ keys: [key.jwk] })]);
  graph.members.set('oid-alice', GROUPS);
  secret(GRAPH_TOKEN);
});
t.teardown(async () => { await Promise.all([graph?.close(), app?.close(), jwks?.close()]); });

const cfg = (over: Partial<GroupsOverageConfig> = {}): GroupsOverageConfig => ({
  graphUrl: graph.url, tokenUrl: `${graph.url}/token`, clientId: 'gw', clientSecret: secret('graph-client-secret-xyz'),
  scopes: ['https://graph.microsoft.com/.default'], cacheTtlMs: 600000, timeoutMs: 5000, securityEnabledOnly: true, ...over,
});
const alice: Principal = {
  sub: 'pairwise-sub', email: null, groups: [], scopes: new Set(), issuer: 'https://sts.windows.net/t/', expiresAt: Date.now() + 3_600_000,
  groupsHeader: '', groupsOverage: true, oid: 'oid-alice',
};

function resolver(over: Partial<GroupsOverageConfig> = {}, clock = new TestClock()) {
  const sleeps: number[] = [];
  const g = new GraphGroups('https://sts.windows.net/t/', cfg(over), { clock: clock.fn, sleep: async (ms) => { sleeps.push(ms); } });
  t.teardown(() => g.close());
  return { g, sleeps, clock };
}

t.test('all pages, with the gateway\'s token; cached per oid; one request chain however many wait', async (t) => {
  graph.pageSize = 2;
  t.teardown(() => { graph.pageSize = 100; });
  const { g, clock } = resolver({ cacheTtlMs: 60_000 });
  const before = graph.memberRequests.length;
  const answers = await Promise.all(Array.from({ length: 10 }, () => g.groups(alice)));
  t.strictSame(answers[0], GROUPS, 'three pages joined');
  t.ok(answers.every((a) => a === answers[0]));
  const reqs = graph.memberRequests.slice(before);
  t.equal(reqs.length, 3, 'one chain of three pages for ten waiting requests');
  t.equal(reqs[0]!.url, '/v1.0/users/oid-alice/getMemberObjects');
  t.match(reqs[1]!.url, /\$skiptoken=2$/);
  t.ok(reqs.every((r) => r.authorization === `Bearer ${GRAPH_TOKEN}`));
  t.same(JSON.parse(reqs[0]!.body), { securityEnabledOnly: true });
  t.notOk(g.groups(alice) instanceof Promise, 'cached: synchronous');
  clock.advance(60_001);
  await g.groups(alice);
  t.equal(graph.memberRequests.length - before, 6, 'asked again after cacheTtlMs');
});

t.test('throttling: waits as Retry-After says, then succeeds; too long a wait → 503', async (t) => {
  const { g, sleeps } = resolver();
  graph.throttle = 2;
  graph.retryAfter = '3';
  t.strictSame(await g.groups(alice), GROUPS);
  t.strictSame(sleeps, [3000, 3000], 'Retry-After: 3 honoured twice');
  const slow = resolver({ timeoutMs: 1000 });
  graph.throttle = 1;
  graph.retryAfter = '120';
  await t.rejects(Promise.resolve(slow.g.groups(alice)), err({ status: 503, code: 'groups_unavailable' }));
  t.strictSame(slow.sleeps, [], 'not waited');
  graph.throttle = 0;
  t.equal(retryAfterMs(null), 1000);
  t.equal(retryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10_000);
});

t.test('Graph failing → 503, not remembered; a next link elsewhere is not followed', async (t) => {
  const { g } = resolver();
  graph.failStatus = 503;
  await t.rejects(Promise.resolve(g.groups(alice)), err({ status: 503, code: 'groups_unavailable' }));
  graph.failStatus = null;
  t.strictSame(await g.groups(alice), GROUPS, 'asked again');
  const other = resolver();
  graph.pageSize = 2;
  graph.nextLinkOrigin = 'http://127.0.0.1:1';
  t.teardown(() => { graph.pageSize = 100; graph.nextLinkOrigin = null; });
  await t.rejects(Promise.resolve(other.g.groups(alice)), err({ status: 503 }));
  await t.rejects(Promise.resolve(other.g.groups({ ...alice, oid: 'oid-unknown' })), err({ status: 503 }), 'unknown user (404)');
});

t.test('through the gateway', async (t) => {
  const overageClaims = (sub: string, oid: string) => claims(jwks.url, AUDIENCE, Date.now(), {
    sub, oid, ver: '1.0',
    _claim_names: { groups: 'src1' },
    _claim_sources: { src1: { endpoint: `https://graph.windows.net/t/users/${oid}/getMemberObjects` } },
  });
  const routes = [{ prefix: '/apps/x', upstream: 'app', allow: [{ groups: ['g-readers'] }] }];
  const issuer = { issuer: jwks.url, jwksUri: jwks.jwksUri, audiences: [AUDIENCE], profile: 'entra' };

  await t.test('with groupsOverage: groups from Graph', async (t) => {
    const gw = await startGateway(t, {
      tokens: { jwksTimeoutMs: 10000 },  // generous: shared CI machines stall
    issuers: [{ ...issuer, groupsOverage: { graphUrl: graph.url, tokenUrl: `${graph.url}/token`, clientId: 'gw', clientSecret: 'graph-client-secret-xyz' } }],
      upstreams: { app: { url: app.url, credentials: { type: 'none' } } }, routes,
    });
    const token = secret(await mint(overageClaims('s1', 'oid-alice'), { key }));
    const res = await fetch(`${gw.url}/apps/x/`, { headers: { authorization: `Bearer ${token}` } });
    t.equal(res.status, 200);
    graph.failStatus = 500;
    t.teardown(() => { graph.failStatus = null; });
    const other = secret(await mint(overageClaims('s2', 'oid-bob'), { key }));
    const down = await fetch(`${gw.url}/apps/x/`, { headers: { authorization: `Bearer ${other}` } });
    t.equal(down.status, 503, 'Graph failing: 503');
  });

  await t.test('without it: groups unknown, reason groups_overage logged and counted', async (t) => {
    const gw = await startGateway(t, { tokens: { jwksTimeoutMs: 10000 }, issuers: [issuer], upstreams: { app: { url: app.url, credentials: { type: 'none' } } }, routes });
    const token = secret(await mint(overageClaims('s1', 'oid-alice'), { key }));
    const res = await fetch(`${gw.url}/apps/x/`, { headers: { authorization: `Bearer ${token}` } });
    t.equal(res.status, 403);
    await waitFor(() => gw.entries().some((e) => e.reason === 'groups_overage'));
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    t.match(metrics, /cdf_gateway_refusals_total\{route="\/apps\/x",reason="groups_overage"\} 1/);
    const hasgroups = secret(await mint(claims(jwks.url, AUDIENCE, Date.now(), { sub: 's3', hasgroups: true }), { key }));
    t.equal((await fetch(`${gw.url}/apps/x/`, { headers: { authorization: `Bearer ${hasgroups}` } })).status, 403, 'hasgroups: true too');
  });
});
