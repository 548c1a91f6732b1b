// Forward-auth (/auth/verify) decides CDF-aware rules exactly as the proxy does: reads and writes
// told apart on the forwarded URI, capabilities asked of CDF, 503 when CDF is down.
import t from 'tap';
import { startCdfStandin, type CdfStandin } from '../fixtures/cdf-standin.js';
import { startJwksServer, type JwksServer } from '../fixtures/jwks-server.js';
import { startGateway, secret } from '../fixtures/gateway.js';
import { claims, generateKey, mint, AUDIENCE, type TestKey } from '../fixtures/tokens.js';

let cdf: CdfStandin;
let jwks: JwksServer;
let key: TestKey;
t.before(async () => {
  key = await generateKey('RS256', 'k1');
  [cdf, jwks] = await Promise.all([startCdfStandin(), startJwksServer({ keys: [key.jwk] })]);
  cdf.grants.set('alice', { projects: ['demo'], acls: { assetsAcl: ['READ'] } });
});
t.teardown(async () => { await Promise.all([cdf?.close(), jwks?.close()]); });

t.test('/auth/verify with cdf, project and capabilities', async (t) => {
  const gw = await startGateway(t, {
    server: { trustedProxies: ['127.0.0.1'] },
    tokens: { jwksTimeoutMs: 10000 },  // generous: shared CI machines stall
    issuers: [{ issuer: jwks.url, jwksUri: jwks.jwksUri, audiences: [AUDIENCE] }],
    cdf: { baseUrl: cdf.url },
    upstreams: { cdf: { url: cdf.url, credentials: { type: 'user-token' } } },
    routes: [
      { prefix: '/api/v1/projects/demo', upstream: 'cdf', allow: [{ groups: ['readers'], cdf: { access: 'read' } }] },
      { prefix: '/apps/assets', upstream: 'cdf', allow: [{ project: 'demo', capabilities: ['assetsAcl:READ'] }] },
    ],
  });
  const token = (sub: string, groups: string[]) => mint(claims(jwks.url, AUDIENCE, Date.now(), { sub, groups }), { key }).then(secret);
  const ask = async (tok: string, method: string, uri: string) => (await fetch(`${gw.url}/auth/verify`, {
    headers: { authorization: `Bearer ${tok}`, 'x-forwarded-method': method, 'x-forwarded-uri': uri },
  })).status;
  const reader = await token('alice', ['readers']);
  t.equal(await ask(reader, 'POST', '/api/v1/projects/demo/assets/list'), 200, 'a read');
  t.equal(await ask(reader, 'POST', '/api/v1/projects/demo/assets/delete'), 403, 'a write');
  t.equal(await ask(reader, 'GET', '/apps/assets/'), 200, 'assetsAcl:READ in demo, from CDF');
  t.equal(await ask(await token('bob', ['readers']), 'GET', '/apps/assets/'), 403, 'unknown to CDF');
  cdf.inspectStatus = 500;
  t.teardown(() => { cdf.inspectStatus = null; });
  t.equal(await ask(await token('carol', []), 'GET', '/apps/assets/'), 503, 'CDF down: 503');
});
