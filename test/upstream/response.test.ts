// Upstream responses as clients see them, through the real gateway (oidc-provider IdP, recording
// upstream): redirects into the upstream point at the gateway, software banners are gone, and a
// cookie-authenticated response stays out of shared caches unless the upstream said otherwise.
import t from 'tap';
import { startLoginStack } from '../fixtures/login.js';
import { secret } from '../fixtures/gateway.js';

t.test('upstream redirects, banners and caching', async (t) => {
  const { base, browser, upstream, idp } = await startLoginStack(t);
  let location = '';
  let cacheControl: string | null = null;
  upstream.respond = (_req, res) => {
    const headers: Record<string, string> = { server: 'Apache/2.4.41 (Ubuntu)', 'x-powered-by': 'PHP/8.1.2', 'content-type': 'text/plain' };
    if (cacheControl !== null) headers['cache-control'] = cacheControl;
    if (location !== '') headers.location = location;
    res.writeHead(location === '' ? 200 : 302, headers).end('ok');
  };
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers, redirect: 'manual' });

  await t.test('Location into the route\'s upstream base path → the gateway\'s publicUrl + prefix', async (t) => {
    location = `${upstream.url}/open/next?a=1`;
    let r = await get('/open/x');
    t.equal(r.status, 302);
    t.equal(r.headers.get('location'), `${base}/open/next?a=1`);
    location = `${upstream.url}/elsewhere`;
    r = await get('/open/x');
    t.equal(r.headers.get('location'), `${upstream.url}/elsewhere`, 'outside the base path: unchanged');
    location = 'https://idp.example/authorize';
    t.equal((await get('/open/x')).headers.get('location'), 'https://idp.example/authorize', 'another host: unchanged');
    location = '/open/relative';
    t.equal((await get('/open/x')).headers.get('location'), '/open/relative', 'relative: unchanged');
    location = '';
  });

  await t.test('no Server or X-Powered-By from the upstream', async (t) => {
    const r = await get('/open/x');
    t.equal(r.status, 200);
    t.equal(r.headers.get('server'), null);
    t.equal(r.headers.get('x-powered-by'), null);
  });

  const b = browser();
  await b.login(base, 'alice', '/app/home');
  const token = secret(await idp.userToken('alice'));

  await t.test('session-authenticated: Cache-Control private unless the upstream set one', async (t) => {
    cacheControl = null;
    let r = await b.fetch(`${base}/app/page`);
    t.equal(r.status, 200);
    t.equal(r.headers.get('cache-control'), 'private');
    cacheControl = 'public, max-age=300';
    r = await b.fetch(`${base}/app/page`);
    t.equal(r.headers.get('cache-control'), 'public, max-age=300', 'the upstream\'s choice stands');
    cacheControl = null;
  });

  await t.test('bearer-authenticated and public responses are left alone', async (t) => {
    const bearer = await get('/api/x', { authorization: `Bearer ${token}` });
    t.equal(bearer.status, 200);
    t.equal(bearer.headers.get('cache-control'), null, 'RFC 9111 §3.5 already covers Authorization');
    t.equal((await get('/open/x')).headers.get('cache-control'), null);
  });
});
