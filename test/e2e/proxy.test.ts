// The bearer-token path end to end with real parts: oidc-provider issuing RS256 access tokens,
// the gateway on loopback, and a recording upstream standing in for the CDF API.
import t from 'tap';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { decodeJwt } from 'jose';
import { startIdp, RESOURCE, type Idp } from '../fixtures/idp.js';
import { startUpstream, closedPort, cdfLike, type Upstream } from '../fixtures/upstream.js';
import { startGateway, secret, type Running } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/wait.js';

const API_KEY = secret('legacy-api-key-0123456789');
const PROJECT = '/api/v1/projects/demo';

let idp: Idp;
let up: Upstream;
let gw: Running;
let alice: string; // readers
let bob: string;   // readers + writers, scp user_impersonation
let mallory: string; // no groups

function config(idpIssuer: string, jwksUri: string, tokenUrl: string, upstreamUrl: string, downUrl: string) {
  return {
    issuers: [{ issuer: idpIssuer, jwksUri, audiences: [RESOURCE] }],
    upstreams: {
      cdf: { url: upstreamUrl, credentials: { type: 'user-token' } },
      service: {
        url: upstreamUrl,
        credentials: { type: 'client-credentials', tokenUrl, clientId: 'svc', clientSecret: 'svc-secret', scopes: [], resource: RESOURCE },
      },
      legacy: { url: `${upstreamUrl}/legacy-base`, credentials: { type: 'api-key', header: 'api-key', value: API_KEY } },
      plain: { url: upstreamUrl, credentials: { type: 'none' } },
      down: { url: downUrl, timeoutMs: 2000, credentials: { type: 'none' } },
      slow: { url: `${upstreamUrl}/slow`, timeoutMs: 300, credentials: { type: 'none' } },
    },
    routes: [
      {
        prefix: `${PROJECT}/`, upstream: 'cdf',
        allow: [
          { methods: ['GET', 'HEAD'], groups: ['readers'] },
          { methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], groups: ['writers'], scopes: ['user_impersonation'] },
        ],
      },
      { prefix: '/svc/', rewritePrefix: `${PROJECT}/`, upstream: 'service', allow: [{ groups: ['readers'] }] },
      { prefix: '/apps/legacy/', rewritePrefix: '/', upstream: 'legacy', allow: [{ groups: ['legacy-users', 'readers'] }] },
      { prefix: '/plain', upstream: 'plain', allow: [{ subjects: ['alice'] }] },
      { prefix: '/down', upstream: 'down', allow: [{}] },
      { prefix: '/slow', upstream: 'slow', allow: [{}] },
      { prefix: '/status', upstream: 'legacy', public: true },
    ],
  };
}

t.before(async () => {
  idp = await startIdp();
  up = await startUpstream();
  const tokens = await Promise.all(['alice', 'bob', 'mallory'].map((u) => idp.userToken(u).then(secret)));
  [alice, bob, mallory] = tokens as [string, string, string];
});
t.beforeEach(() => { up.respond = cdfLike; });
t.teardown(async () => { await up?.close(); await idp?.close(); });

t.test('gateway', async (t) => {
  gw = await startGateway(t, config(idp.issuer, idp.jwksUri, idp.tokenUrl, up.url, `http://127.0.0.1:${await closedPort()}`));
  const get = (path: string, headers: Record<string, string> = {}, init: RequestInit = {}) =>
    fetch(gw.url + path, { ...init, headers, redirect: 'manual' });

  await t.test('user-token: the upstream receives the caller\'s own verified token and identity headers', async (t) => {
    const res = await get(`${PROJECT}/assets?limit=5`, {
      authorization: `Bearer ${alice}`,
      'api-key': 'client-sent-key',
      'x-auth-request-user': 'admin',
      'x-forwarded-user': 'admin',
      cookie: 'cdf-gw=forged; app=1',
    });
    t.equal(res.status, 200);
    t.match(await res.json(), { items: [{ name: 'Pump 1' }] });
    const r = up.last();
    t.equal(r.url, `${PROJECT}/assets?limit=5`, 'path and query arrive unchanged');
    t.equal(r.headers.authorization, `Bearer ${alice}`);
    t.equal(r.headers['api-key'], undefined, 'client api-key dropped');
    t.equal(r.headers['x-auth-request-user'], 'alice', 'identity comes from the token, not the client');
    t.equal(r.headers['x-auth-request-groups'], 'readers');
    t.equal(r.headers['x-forwarded-user'], undefined);
    t.equal(r.headers.cookie, 'app=1', 'gateway cookies never reach the upstream');
    t.equal(r.headers['x-forwarded-for'], '127.0.0.1');
  });

  await t.test('no token, bad token, other scheme → 401 in CDF shape with a Bearer challenge', async (t) => {
    const before = up.requests.length;
    let res = await get(`${PROJECT}/assets`);
    t.equal(res.status, 401);
    t.same(await res.json(), { error: { code: 401, message: 'Unauthorized: a bearer token is required' } });
    t.match(res.headers.get('www-authenticate'), /^Bearer realm="cdf-auth-gateway"$/);
    const forged = alice.slice(0, alice.lastIndexOf('.') + 1) + 'AAAA' + alice.slice(alice.lastIndexOf('.') + 5);
    res = await get(`${PROJECT}/assets`, { authorization: `Bearer ${secret(forged)}` });
    t.equal(res.status, 401);
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/);
    t.match(await res.json(), { error: { code: 401 } });
    res = await get(`${PROJECT}/assets`, { authorization: 'Basic YWxpY2U6cHc=' });
    t.equal(res.status, 401);
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/);
    t.equal(up.requests.length, before, 'nothing unauthenticated reached the upstream');
  });

  await t.test('tokens are never taken from the URL', async (t) => {
    const before = up.requests.length;
    const res = await get(`${PROJECT}/assets?access_token=${alice}`);
    t.equal(res.status, 400);
    t.match(await res.json(), { error: { code: 400 } });
    t.equal(up.requests.length, before);
  });

  await t.test('policy: groups, methods, scopes, subjects; default deny', async (t) => {
    const before = up.requests.length;
    let res = await get(`${PROJECT}/assets`, { authorization: `Bearer ${mallory}` });
    t.equal(res.status, 403, 'no group matches');
    t.match(res.headers.get('www-authenticate'), /error="insufficient_scope"/);
    t.same(await res.json(), { error: { code: 403, message: 'Forbidden' } });
    res = await get(`${PROJECT}/assets/list`, { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, { method: 'POST', body: '{}' });
    t.equal(res.status, 403, 'readers may not POST');
    t.equal(up.requests.length, before, 'denied requests never reach the upstream');
    res = await get(`${PROJECT}/assets/list`, { authorization: `Bearer ${bob}`, 'content-type': 'application/json' }, { method: 'POST', body: '{"limit":1}' });
    t.equal(res.status, 200, 'writers with user_impersonation may POST');
    t.equal(up.last().body.toString(), '{"limit":1}');
    res = await get('/plain/x', { authorization: `Bearer ${bob}` });
    t.equal(res.status, 403, 'subjects rule');
    res = await get('/plain/x', { authorization: `Bearer ${alice}` });
    t.equal(res.status, 200);
    res = await get('/nowhere', { authorization: `Bearer ${alice}` });
    t.equal(res.status, 404, 'unmatched paths are not found');
    t.same(await res.json(), { error: { code: 404, message: 'Not found' } });
  });

  await t.test('api-key: injected, client credentials stripped, secret never reflected', async (t) => {
    up.respond = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-echo-key': String(req.headers['api-key']) });
      res.end('{}');
    };
    const res = await get('/apps/legacy/items/1', { authorization: `Bearer ${alice}`, 'api-key': 'mine' });
    t.equal(res.status, 200);
    const r = up.last();
    t.equal(r.url, '/legacy-base/items/1', 'rewritePrefix under the upstream base path');
    t.equal(r.headers['api-key'], API_KEY);
    t.equal(r.headers.authorization, undefined, 'the caller\'s token does not go to an api-key upstream');
    t.equal(r.headers['x-auth-request-user'], 'alice');
    t.equal(res.headers.get('x-echo-key'), null, 'a response header carrying the injected key is dropped');
  });

  await t.test('client-credentials: the gateway\'s own token, fetched once and reused', async (t) => {
    const tokensBefore = idp.requests.token;
    for (let i = 0; i < 3; i++) {
      const res = await get('/svc/assets', { authorization: `Bearer ${alice}` });
      t.equal(res.status, 200);
    }
    const auth = String(up.last().headers.authorization);
    t.match(auth, /^Bearer /);
    secret(auth.slice(7));
    const claims = decodeJwt(auth.slice(7));
    t.equal(claims.sub, 'svc', 'the upstream sees the service account, not the user');
    t.equal(up.last().url, `${PROJECT}/assets`);
    t.equal(up.last().headers['x-auth-request-user'], 'alice', 'identity headers still describe the caller');
    t.equal(idp.requests.token - tokensBefore, 1, 'one token request for three calls');
  });

  await t.test('none: identity headers only', async (t) => {
    const res = await get('/plain', { authorization: `Bearer ${alice}` });
    t.equal(res.status, 200);
    const r = up.last();
    t.equal(r.headers.authorization, undefined);
    t.equal(r.headers['api-key'], undefined);
    t.equal(r.headers['x-auth-request-user'], 'alice');
  });

  await t.test('public routes ignore and strip any token and never lend the credential', async (t) => {
    let res = await get('/status');
    t.equal(res.status, 200);
    t.equal(up.last().headers['api-key'], undefined, 'the api-key is not lent to anonymous callers');
    t.equal(up.last().url, '/legacy-base/status');
    res = await get('/status/x', { authorization: `Bearer ${alice}`, 'x-auth-request-user': 'root' });
    t.equal(res.status, 200);
    t.equal(up.last().headers.authorization, undefined);
    t.equal(up.last().headers['x-auth-request-user'], undefined);
    res = await get('/statusX');
    t.equal(res.status, 404, 'prefixes match whole segments');
  });

  await t.test('ambiguous paths are refused before matching', async (t) => {
    const before = up.requests.length;
    for (const p of [`${PROJECT}/../../status`, '/status/%2e%2e/api', '/status/..;/api', '/status%2f..%2fapi', '//status', '/status/%2561']) {
      const status = await rawStatus(gw.url, p, { authorization: `Bearer ${alice}` });
      t.equal(status, 400, p);
    }
    t.equal(up.requests.length, before);
  });

  await t.test('upstream down → 502, too slow → 504, both in CDF shape', async (t) => {
    let res = await get('/down/x', { authorization: `Bearer ${alice}` });
    t.equal(res.status, 502);
    t.same(await res.json(), { error: { code: 502, message: 'Bad gateway' } });
    const held: Array<{ end(): void }> = [];
    up.respond = (_req, res) => { held.push(res); }; // never answers: the gateway's timeout decides
    res = await get('/slow/x', { authorization: `Bearer ${alice}` });
    t.equal(res.status, 504);
    t.same(await res.json(), { error: { code: 504, message: 'Gateway timeout' } });
    for (const r of held) r.end();
  });

  await t.test('POST is never retried; GET is retried once on a reset connection', async (t) => {
    let calls = 0;
    up.respond = (_req, res) => { calls++; res.socket?.destroy(); };
    let res = await get(`${PROJECT}/assets/list`, { authorization: `Bearer ${bob}` }, { method: 'POST', body: '{}' });
    t.equal(res.status, 502);
    t.equal(calls, 1, 'non-idempotent: one attempt');
    calls = 0;
    res = await get(`${PROJECT}/assets`, { authorization: `Bearer ${bob}` });
    t.equal(res.status, 502);
    t.equal(calls, 2, 'idempotent: at most one retry');
    calls = 0;
    up.respond = (_req, res) => { calls++; res.writeHead(503, { 'retry-after': '0' }); res.end(); };
    res = await get(`${PROJECT}/assets`, { authorization: `Bearer ${bob}` });
    t.equal(res.status, 503, 'an upstream 503 is passed through');
    t.equal(calls, 1, 'and not retried');
  });

  await t.test('redirects are passed to the client, not followed; colliding cookies stripped', async (t) => {
    up.respond = (_req, res) => {
      res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere', 'set-cookie': ['cdf-gw=evil; Path=/', '__Host-cdf-gw-1=x; Path=/', 'app=1; Path=/'] });
      res.end();
    };
    const before = up.requests.length;
    const res = await get(`${PROJECT}/assets`, { authorization: `Bearer ${alice}` });
    t.equal(res.status, 302);
    t.equal(res.headers.get('location'), 'http://127.0.0.1:1/elsewhere');
    t.same(res.headers.getSetCookie(), ['app=1; Path=/']);
    t.equal(up.requests.length, before + 1);
  });

  await t.test('large bodies stream through both ways intact', async (t) => {
    const size = 24 * 1024 * 1024;
    const body = Buffer.alloc(size, 7);
    for (let i = 0; i < size; i += 4096) body[i] = i % 251;
    up.respond = (_req, res, received) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(received);
    };
    const res = await get(`${PROJECT}/files/upload`, { authorization: `Bearer ${bob}`, 'content-type': 'application/octet-stream' }, { method: 'PUT', body });
    t.equal(res.status, 200);
    const back = Buffer.from(await res.arrayBuffer());
    const h = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    t.equal(h(up.last().body), h(body), 'upstream received every byte');
    t.equal(h(back), h(body), 'client received every byte');
  });

  await t.test('admin: health, readiness, metrics', async (t) => {
    const health = await fetch(gw.adminUrl + '/healthz');
    t.equal(health.status, 200);
    const ready = await fetch(gw.adminUrl + '/readyz');
    t.equal(ready.status, 200);
    const text = await (await fetch(gw.adminUrl + '/metrics')).text();
    t.match(text, /cdf_gateway_requests_total\{route="\/api\/v1\/projects\/demo\/",status="200",decision="allow"\} \d+/);
    t.match(text, /cdf_gateway_requests_total\{route="\/api\/v1\/projects\/demo\/",status="403",decision="deny"\} \d+/);
    t.match(text, /cdf_gateway_token_verifications_total\{outcome="valid"\} \d+/);
    t.match(text, /cdf_gateway_token_verifications_total\{outcome="cached"\} \d+/);
    t.match(text, /cdf_gateway_jwks_fetches_total\{issuer="[^"]+",outcome="ok"\} 1/);
    t.match(text, /cdf_gateway_jwks_fetch_duration_seconds_count/);
    t.match(text, /cdf_gateway_upstream_duration_seconds_bucket\{le="[^"]+",upstream="cdf",status="200"\}/);
    t.match(text, /cdf_gateway_client_credentials_refreshes_total\{upstream="service",outcome="ok"\} 1/);
    t.notMatch(text, /eyJ/, 'no token in metrics');
  });

  await t.test('one access line per request, with route, decision, sub, status and no query', async (t) => {
    const before = gw.logs.length;
    await get(`${PROJECT}/assets?secretparam=hunter2hunter2`, { authorization: `Bearer ${alice}` });
    await waitFor(() => gw.entries().slice(before).some((e) => e.msg === 'request'), { what: 'the access line' });
    const lines = gw.entries().slice(before).filter((e) => e.msg === 'request');
    t.equal(lines.length, 1);
    t.match(lines[0], { route: `${PROJECT}/`, decision: 'allow', sub: 'alice', status: 200, method: 'GET', path: `${PROJECT}/assets` });
    t.notMatch(JSON.stringify(lines[0]), /hunter2/);
  });
});

/** Sends a request-target exactly as given (fetch would normalise it). */
function rawStatus(base: string, path: string, headers: Record<string, string>): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, headers, method: 'GET' }, (res) => { res.resume(); resolve(res.statusCode!); });
    req.on('error', reject);
    req.end();
  });
}
