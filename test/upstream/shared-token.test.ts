// Client-credentials tokens shared by replicas through redis: two gateways, one real IdP, one
// redis-server. One token request serves both; the token rests in redis sealed.
import t, { type Test } from 'tap';
import { createClient } from 'redis';
import { startGateway, secret } from '../fixtures/gateway.js';
import { RESOURCE, SVC_SECRET, startIdp, type Idp } from '../fixtures/idp.js';
import { startRedis } from '../fixtures/redis.js';
import { startUpstream, type Upstream } from '../fixtures/upstream.js';

async function setup(t: Test): Promise<{ idp: Idp; upstream: Upstream; config: (extra?: Record<string, unknown>) => Record<string, unknown> }> {
  const idp = await startIdp();
  t.teardown(() => idp.close());
  const upstream = await startUpstream();
  t.teardown(() => upstream.close());
  const config = (extra: Record<string, unknown> = {}) => ({
    issuers: [{ issuer: idp.issuer, audiences: [RESOURCE] }],
    tokens: { jwksTimeoutMs: 10_000 },
    upstreams: {
      cdf: {
        url: upstream.url,
        credentials: {
          type: 'client-credentials', tokenUrl: idp.tokenUrl, clientId: 'svc', clientSecret: secret(SVC_SECRET),
          resource: RESOURCE, scopes: ['user_impersonation'],
        },
      },
    },
    routes: [{ prefix: '/api', upstream: 'cdf', allow: [{ groups: ['readers'] }] }],
    ...extra,
  });
  return { idp, upstream, config };
}

t.test('two replicas, one token request; sealed at rest', async (t) => {
  const { idp, upstream, config } = await setup(t);
  const redis = await startRedis(t);
  const shared = { redis: { url: redis.url, keyPrefix: 'gw:', secret: secret('shared-state-seal-secret-0123456789abcdef') } };
  const a = await startGateway(t, config(shared));
  const b = await startGateway(t, config(shared));
  const user = await idp.userToken('alice');
  const before = idp.grants.client_credentials ?? 0;

  const answers = await Promise.all([a, b, a, b].map((g) => fetch(`${g.url}/api/x`, { headers: { authorization: `Bearer ${user}` } })));
  t.same(answers.map((r) => r.status), [200, 200, 200, 200]);
  t.equal((idp.grants.client_credentials ?? 0) - before, 1, 'one token request for both replicas');
  const sent = new Set(upstream.requests.map((r) => r.headers.authorization));
  t.equal(sent.size, 1, 'both replicas sent the same token');
  const token = [...sent][0]!.slice('Bearer '.length);
  secret(token);

  const client = createClient({ url: redis.url });
  await client.connect();
  t.teardown(() => client.destroy());
  const keys = await client.keys('gw:cc:*');
  t.equal(keys.length, 1, 'one shared token');
  const stored = (await client.get(keys[0]!))!;
  t.notOk(stored.includes(token) || stored.includes(token.split('.')[1]!), 'sealed: the token is not readable in redis');
  const ttl = await client.pTTL(keys[0]!);
  t.ok(ttl > 3_000_000 && ttl <= 3_600_000, `expires with the token (${ttl} ms)`);
  t.same(await client.keys('gw:cc-lock:*'), [], 'the lock was released');

  // A third replica starting later uses the stored token too.
  const c = await startGateway(t, config(shared));
  t.equal((await fetch(`${c.url}/api/y`, { headers: { authorization: `Bearer ${user}` } })).status, 200);
  t.equal((idp.grants.client_credentials ?? 0) - before, 1, 'still one token request');
});

t.test('without redis each replica asks for its own token', async (t) => {
  const { idp, config } = await setup(t);
  const a = await startGateway(t, config());
  const b = await startGateway(t, config());
  const user = await idp.userToken('alice');
  const before = idp.grants.client_credentials ?? 0;
  for (const g of [a, b]) t.equal((await fetch(`${g.url}/api/x`, { headers: { authorization: `Bearer ${user}` } })).status, 200);
  t.equal((idp.grants.client_credentials ?? 0) - before, 2, 'one token request per replica');
});
