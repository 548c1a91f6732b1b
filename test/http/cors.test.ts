// CORS per route: preflights answered by the gateway without credentials and never forwarded,
// listed origins echoed with Vary, unlisted ones refused with no Access-Control-* header, the
// response headers on upstream answers and gateway errors alike, forward-auth preflights, and
// bad `cors` config named at start. Real IdP tokens, real upstream.
import t from 'tap';
import { parseConfig, ConfigError } from '../../src/config/load.js';
import { mergeVary, preflightHeaders, responseHeaders } from '../../src/http/cors.js';
import { startIdp, RESOURCE } from '../fixtures/idp.js';
import { startUpstream } from '../fixtures/upstream.js';
import { secret, startGateway } from '../fixtures/gateway.js';

const APP = 'http://localhost:3000';
const CORS = { origins: [APP, 'https://dash.example'], exposeHeaders: ['x-request-id'] };

t.test('pure parts', async (t) => {
  const cors = { origins: [APP], methods: ['GET', 'POST'], headers: ['authorization', 'content-type'], exposeHeaders: [], credentials: false, maxAgeSec: 600 };
  t.same(preflightHeaders(cors, APP), {
    'access-control-allow-origin': APP, 'access-control-allow-methods': 'GET, POST',
    'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600',
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
  });
  t.same(responseHeaders(cors, 'http://evil.example'), { vary: 'Origin' }, 'unlisted: no Access-Control-*');
  t.same(responseHeaders({ ...cors, credentials: true }, APP), { 'access-control-allow-origin': APP, vary: 'Origin', 'access-control-allow-credentials': 'true' });
  t.equal(mergeVary('Accept-Encoding', 'Origin'), 'Accept-Encoding, Origin');
  t.equal(mergeVary('origin', 'Origin'), 'origin');
  t.equal(mergeVary('*', 'Origin'), '*');
  t.equal(mergeVary(undefined, 'Origin'), 'Origin');
});

t.test('config: defaults and errors name the key', async (t) => {
  const base = (cors: unknown) => `
issuers: [{ issuer: "http://127.0.0.1:4000", jwksUri: "http://127.0.0.1:4000/jwks", audiences: [a] }]
upstreams: { u: { url: "http://127.0.0.1:5000", credentials: { type: none } } }
routes:
  - { prefix: /api, upstream: u, allow: [{}], cors: ${JSON.stringify(cors)} }
`;
  const ok = parseConfig(base({ origins: ['http://LOCALHOST:3000'] }), { env: {}, baseDir: '.' });
  t.same(ok.routes[0]!.cors, {
    origins: ['http://localhost:3000'], methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    headers: ['authorization', 'content-type', 'x-cdp-sdk', 'x-cdp-app', 'cdf-version'], exposeHeaders: [], credentials: false, maxAgeSec: 600,
  });
  t.equal(ok.routes[0]!.websockets, true);
  const bad = (cors: unknown): string => {
    try { parseConfig(base(cors), { env: {}, baseDir: '.' }); } catch (e) { if (e instanceof ConfigError) return e.message; throw e; }
    return 'accepted';
  };
  t.match(bad({ origins: ["http://localhost:3000/app"] }), /routes\[0\]\.cors\.origins\[0\]: .*must be an origin/);
  t.match(bad({}), /routes\[0\]\.cors\.origins: required/);
  t.match(bad({ origins: [APP], maxAgeSec: -1 }), /routes\[0\]\.cors\.maxAgeSec/);
  t.match(bad({ origins: [APP], credential: true }), /routes\[0\]\.cors\.credential/);
});

t.test('through the gateway', async (t) => {
  const idp = await startIdp();
  t.teardown(() => idp.close());
  const up = await startUpstream((req, res) => {
    // An upstream with CORS ideas of its own: the gateway's answer must win.
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', vary: 'Accept-Encoding', 'x-request-id': 'r1' });
    res.end(JSON.stringify({ path: req.url }));
  });
  t.teardown(() => up.close());
  const alice = secret(await idp.userToken('alice'));
  const gw = await startGateway(t, {
    server: { trustedProxies: ['127.0.0.1/32'] },
    issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, audiences: [RESOURCE] }],
    upstreams: { app: { url: up.url, credentials: { type: 'none' } } },
    routes: [
      { prefix: '/api', upstream: 'app', allow: [{ groups: ['readers'] }], cors: CORS },
      { prefix: '/plain', upstream: 'app', allow: [{ groups: ['readers'] }] },
    ],
  });
  const preflight = (path: string, origin: string, extra: Record<string, string> = {}) => fetch(`${gw.url}${path}`, {
    method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type', ...extra },
  });
  const acHeaders = (res: Response) => [...res.headers.keys()].filter((k) => k.startsWith('access-control-'));

  await t.test('preflight from a listed origin: 204 without credentials, never forwarded', async (t) => {
    const before = up.requests.length;
    const res = await preflight('/api/items', APP);
    t.equal(res.status, 204);
    t.equal(res.headers.get('access-control-allow-origin'), APP);
    t.equal(res.headers.get('access-control-allow-methods'), 'GET, HEAD, POST, PUT, PATCH, DELETE');
    t.equal(res.headers.get('access-control-allow-headers'), 'authorization, content-type, x-cdp-sdk, x-cdp-app, cdf-version');
    t.equal(res.headers.get('access-control-max-age'), '600');
    t.equal(res.headers.get('access-control-allow-credentials'), null, 'credentials: false');
    t.match(res.headers.get('vary'), /Origin/);
    t.equal(up.requests.length, before, 'not forwarded');
  });

  await t.test('preflight from an unlisted origin: 403, no Access-Control-* at all', async (t) => {
    const res = await preflight('/api/items', 'http://evil.example');
    t.equal(res.status, 403);
    t.same(acHeaders(res), []);
    t.same(await res.json(), { error: { code: 403, message: 'Forbidden: origin not allowed' } });
    const nul = await preflight('/api/items', 'null');
    t.equal(nul.status, 403, 'the opaque origin "null" is not listed');
  });

  await t.test('routes without cors: OPTIONS is an ordinary method (401 without a token)', async (t) => {
    const res = await preflight('/plain/items', APP);
    t.equal(res.status, 401);
    t.same(acHeaders(res), []);
    const before = up.requests.length;
    const withToken = await preflight('/plain/items', APP, { authorization: `Bearer ${alice}` });
    t.equal(withToken.status, 200, 'authorised like any method');
    t.equal(up.requests.length, before + 1, 'and forwarded: the app answers its own preflights');
    t.equal(up.last().method, 'OPTIONS');
  });

  await t.test('OPTIONS without Access-Control-Request-Method is not a preflight', async (t) => {
    const res = await fetch(`${gw.url}/api/items`, { method: 'OPTIONS', headers: { origin: APP } });
    t.equal(res.status, 401, 'authenticated like any request');
    t.equal(res.headers.get('access-control-allow-origin'), APP, 'and readable by the listed origin');
  });

  await t.test('actual requests: the gateway\'s CORS headers on upstream answers and errors', async (t) => {
    const ok = await fetch(`${gw.url}/api/items`, { headers: { origin: APP, authorization: `Bearer ${alice}` } });
    t.equal(ok.status, 200);
    t.equal(ok.headers.get('access-control-allow-origin'), APP, 'the upstream\'s * replaced');
    t.equal(ok.headers.get('access-control-expose-headers'), 'x-request-id');
    t.equal(ok.headers.get('vary'), 'Accept-Encoding, Origin');

    const denied = await fetch(`${gw.url}/api/items`, { headers: { origin: APP } });
    t.equal(denied.status, 401);
    t.equal(denied.headers.get('access-control-allow-origin'), APP, 'a 401 the page can read');

    const foreign = await fetch(`${gw.url}/api/items`, { headers: { origin: 'http://evil.example', authorization: `Bearer ${alice}` } });
    t.equal(foreign.status, 200, 'not a preflight: forwarded, the browser withholds it');
    t.same(acHeaders(foreign), [], 'neither ours nor the upstream\'s');
    t.match(foreign.headers.get('vary'), /Origin/);
  });

  await t.test('forward-auth preflight (Traefik style)', async (t) => {
    const verify = (origin: string) => fetch(`${gw.url}/auth/verify`, {
      headers: { 'x-forwarded-method': 'OPTIONS', 'x-forwarded-uri': '/api/items', origin, 'access-control-request-method': 'GET' },
    });
    const ok = await verify(APP);
    t.equal(ok.status, 200, 'allowed without credentials');
    t.equal(ok.headers.get('access-control-allow-origin'), APP);
    const bad = await verify('http://evil.example');
    t.equal(bad.status, 403);
    t.same(acHeaders(bad), []);
    const plain = await fetch(`${gw.url}/auth/verify`, {
      headers: { 'x-forwarded-method': 'OPTIONS', 'x-forwarded-uri': '/plain/items', origin: APP, 'access-control-request-method': 'GET' },
    });
    t.equal(plain.status, 401, 'a route without cors: authentication as usual');
  });
});
