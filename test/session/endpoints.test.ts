// The gateway's own endpoints around a session: userinfo, logout (server-side revocation),
// forward-auth, CDP's legacy /login/url and /login/token; refresh; and the redis store.
import t from 'tap';
import { decodeJwt } from 'jose';
import { createClient } from 'redis';
import { startLoginStack, COOKIE_SECRET, GATEWAY_CLIENT_ID } from '../fixtures/login.js';
import { startRedis } from '../fixtures/redis.js';
import { GATEWAY_SECRET, type Idp } from '../fixtures/idp.js';
import { Sealer } from '../../src/session/seal.js';
import type { Session } from '../../src/session/store.js';

const JSON_ACCEPT = { accept: 'application/json' };

/** The Cookie header a plain API client would replay. */
function cookieHeader(jar: Record<string, string>): string {
  return Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');
}

t.test('userinfo, /login/token and /login/url', async (t) => {
  const { base, browser, idp } = await startLoginStack(t);
  const b = browser();
  await b.login(base, 'bob');

  const info = await b.fetch(`${base}/auth/userinfo`, { headers: JSON_ACCEPT });
  t.equal(info.status, 200, `userinfo answered ${info.status === 200 ? 200 : `${info.status} ${await info.clone().text()}`}`);
  const body = await info.json() as { data: Record<string, unknown> };
  t.match(body.data, { sub: 'bob', email: 'bob@example.com', groups: ['readers', 'writers'], project: 'demo' });
  t.type(body.data.expiresAt, 'number');
  t.ok((body.data.expiresAt as number) > Date.now());
  t.notOk(JSON.stringify(body).includes('eyJ'), 'no token in the answer');

  const noSession = await browser().fetch(`${base}/auth/userinfo`, { headers: JSON_ACCEPT });
  t.equal(noSession.status, 401);

  const viaSession = await (await b.fetch(`${base}/login/token`, { headers: JSON_ACCEPT })).json() as { data: Record<string, unknown> };
  t.same(viaSession.data, { loggedIn: true, user: 'bob', project: 'demo', expiresAt: body.data.expiresAt });

  const token = await idp.userToken('alice');
  const viaBearer = await (await fetch(`${base}/login/token`, { headers: { authorization: `Bearer ${token}` } })).json() as { data: Record<string, unknown> };
  t.same(viaBearer.data, { loggedIn: true, user: 'alice', project: 'demo', expiresAt: (decodeJwt(token).exp as number) * 1000 });

  const bad = await fetch(`${base}/login/token`, { headers: { authorization: 'Bearer e.y.j' } });
  t.equal(bad.status, 200);
  t.same(await bad.json(), { data: { loggedIn: false, user: null, project: null, expiresAt: null } });
  t.same(await (await fetch(`${base}/login/token`)).json(), { data: { loggedIn: false, user: null, project: null, expiresAt: null } });
  t.equal((await fetch(`${base}/login/token?access_token=${token}`)).status, 400, 'never from a URL');

  const url = await fetch(`${base}/login/url?project=demo&redirectUrl=${encodeURIComponent('/app/start')}&errorRedirectUrl=${encodeURIComponent('https://evil.example/')}`);
  t.equal(url.status, 200);
  const u = new URL(((await url.json()) as { data: { url: string } }).data.url);
  t.equal(u.origin + u.pathname, `${base}/auth/login`);
  t.same(Object.fromEntries(u.searchParams), { project: 'demo', redirect: '/app/start', errorRedirect: '/' });
  const only = await fetch(`${base}/login/url?redirectUrl=${encodeURIComponent('/app/start')}`);
  t.equal(only.status, 200, 'project left out: the only one');
  t.equal(new URL(((await only.json()) as { data: { url: string } }).data.url).searchParams.get('project'), 'demo');
  t.equal((await fetch(`${base}/login/url?project=&redirectUrl=/`)).status, 400, 'an empty project is no project');
  const unknown = await fetch(`${base}/login/url?project=nope&redirectUrl=/`);
  t.equal(unknown.status, 404);
  t.same(await unknown.json(), { error: { code: 404, message: 'Not found' } });
  t.equal((await fetch(`${base}/auth/login?project=nope`)).status, 404);
});

t.test('a POST logout is not held up by its body: a malformed Content-Type still logs out', async (t) => {
  const { base, browser } = await startLoginStack(t);
  const b = browser();
  await b.login(base, 'alice');
  const stolen = cookieHeader(b.gatewayCookies());
  const out = await b.fetch(`${base}/auth/logout?redirect=/bye`, { method: 'POST', headers: { origin: base, 'content-type': 'nonsense' }, body: 'x=1' });
  t.equal(out.status, 303, 'logged out, not 415');
  t.ok(out.headers.getSetCookie().some((c) => /^__Host-cdf-gw-session=;.*Max-Age=0/.test(c)), 'cookie cleared');
  const after = await fetch(`${base}/auth/userinfo`, { headers: { cookie: stolen, ...JSON_ACCEPT } });
  t.equal(after.status, 401, 'the session is revoked on the server');
  const cross = await fetch(`${base}/auth/logout`, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'nonsense' }, body: 'x=1' });
  t.equal(cross.status, 403, 'the same-origin check still comes first');
});

t.test('logout revokes the session on the server', async (t) => {
  const { base, browser, upstream } = await startLoginStack(t);
  const b = browser();
  await b.login(base, 'alice');
  const stolen = cookieHeader(b.gatewayCookies());
  t.equal((await fetch(`${base}/app/x`, { headers: { cookie: stolen, ...JSON_ACCEPT } })).status, 200, 'the cookie works before logout');

  const cross = await b.fetch(`${base}/auth/logout`, { method: 'POST', headers: { origin: 'https://evil.example' } });
  t.equal(cross.status, 403, 'cross-site logout refused');

  const out = await b.fetch(`${base}/auth/logout?redirect=/bye`, { method: 'POST', headers: { origin: base } });
  t.equal(out.status, 303);
  const loc = new URL(out.headers.get('location')!);
  t.equal(loc.pathname, '/session/end', 'on to the IdP\'s end_session_endpoint');
  t.equal(loc.searchParams.get('post_logout_redirect_uri'), `${base}/bye`);
  t.equal(loc.searchParams.get('client_id'), GATEWAY_CLIENT_ID);
  t.equal(loc.searchParams.get('id_token_hint'), null, 'no id_token_hint: no token in a URL');
  t.same([...loc.searchParams.keys()].sort(), ['client_id', 'post_logout_redirect_uri'], 'nothing else in the URL');
  t.notMatch(loc.href, /eyJ/, 'no JWT anywhere in the URL');
  t.ok(out.headers.getSetCookie().some((c) => /^__Host-cdf-gw-session=;.*Max-Age=0/.test(c)), 'cookie cleared');

  // The real oidc-provider, given client_id and no hint, checks post_logout_redirect_uri against
  // the client's registration and, once the user confirms, sends the browser there.
  const endPage = await b.fetch(loc);
  t.equal(endPage.status, 200, 'the IdP shows its logout confirmation');
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(await endPage.text())?.[1];
  t.ok(xsrf, 'with its form');
  const confirmed = await b.fetch(new URL('/session/end/confirm', loc), {
    method: 'POST', body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.equal(confirmed.status, 303);
  t.equal(confirmed.headers.get('location'), `${base}/bye`, 'back at the registered post-logout URI');

  const n = upstream.requests.length;
  const replay = await fetch(`${base}/app/x`, { headers: { cookie: stolen, ...JSON_ACCEPT } });
  t.equal(replay.status, 401, 'the old cookie replayed gets 401');
  t.equal((await fetch(`${base}/auth/userinfo`, { headers: { cookie: stolen } })).status, 401);
  t.equal(upstream.requests.length, n, 'nothing reached the upstream');

  const again = await b.fetch(`${base}/auth/logout?redirect=https://evil.example/`);
  t.equal(again.status, 302, 'GET logout without a session still works');
  t.equal(again.headers.get('location'), '/', 'and its redirect is validated');
});

t.test('forward-auth /auth/verify', async (t) => {
  const { base, browser, idp } = await startLoginStack(t, { server: { trustedProxies: ['127.0.0.1'] } });
  const alice = await idp.userToken('alice');
  const auth = { authorization: `Bearer ${alice}` };
  const verify = (headers: Record<string, string>, method = 'GET') => fetch(`${base}/auth/verify`, { method, headers });

  const ok = await verify({ ...auth, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/items?x=1' });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('x-auth-request-user'), 'alice');
  t.equal(ok.headers.get('x-auth-request-email'), 'alice@example.com');
  t.equal(ok.headers.get('x-auth-request-groups'), 'readers');

  t.equal((await verify({ ...auth, 'x-forwarded-method': 'POST', 'x-forwarded-uri': '/app/items' })).status, 403, 'the route policy applies to the forwarded method');
  t.equal((await verify({ ...auth, 'x-original-method': 'POST', 'x-original-uri': '/app/items' })).status, 403, 'nginx headers too');
  t.equal((await verify({ ...auth, 'x-original-method': 'GET', 'x-original-uri': '/app/items' })).status, 200);
  t.equal((await verify({ ...auth, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/app/x', 'x-original-method': 'POST', 'x-original-uri': '/app/x' })).status, 200, 'X-Forwarded-* wins');
  t.equal((await verify({ ...auth, 'x-forwarded-uri': '/api/x' })).status, 400, 'URI without method');
  t.equal((await verify({ ...auth, 'x-original-method': 'GET' })).status, 400, 'method without URI');
  t.equal((await verify({ ...auth, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/nowhere' })).status, 403, 'no route → 403');
  t.equal((await verify({ ...auth, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/../app' })).status, 400, 'ambiguous URI');
  t.equal((await verify({ 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/open/x' })).status, 200, 'public route');
  t.equal((await verify({ 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/x' })).status, 401, 'no credentials');
  t.equal((await verify(auth)).status, 200, 'without forwarded headers: authentication only');
  t.equal((await verify({ authorization: 'Bearer x.y.z' })).status, 401);
  // Its own query is refused like every other endpoint's: never a token from a URL.
  const inUrl = await fetch(`${base}/auth/verify?access_token=${alice}`, { headers: { ...auth, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/app/items' } });
  t.equal(inUrl.status, 400, 'access_token in /auth/verify\'s own query');
  t.match(inUrl.headers.get('www-authenticate') ?? '', /error="invalid_request"/);
  t.equal((await verify({ ...auth, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/x?access_token=x' })).status, 400, 'in the forwarded URI');
  t.equal((await fetch(`${base}/auth/verify?rd=%2Fapp`, { headers: auth })).status, 200, 'another query is fine');

  // Sessions count on login routes only.
  const b = browser();
  await b.login(base, 'alice');
  const cookie = cookieHeader(b.gatewayCookies());
  t.equal((await verify({ cookie, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/app/page' })).status, 200);
  t.equal((await verify({ cookie, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/page' })).status, 401);
  t.equal((await verify({ cookie })).status, 200);
});

t.test('forward-auth ignores forwarded headers from untrusted peers', async (t) => {
  const { base, idp } = await startLoginStack(t);
  const alice = await idp.userToken('alice');
  const res = await fetch(`${base}/auth/verify`, { headers: { authorization: `Bearer ${alice}`, 'x-forwarded-method': 'POST', 'x-forwarded-uri': '/nowhere' } });
  t.equal(res.status, 200, 'authentication only: the claimed URI is not believed');
});

/** The session inside a cookie-store cookie, opened with the test's own secret. */
function openSession(jar: Record<string, string>): Session {
  const v = jar['__Host-cdf-gw-session'];
  const s = v === undefined ? null : new Sealer([COOKIE_SECRET]).open<Session>('session', v, Date.now());
  if (s === null) throw new Error('no readable session cookie');
  return s;
}

async function revokeAtIdp(idp: Idp, token: string): Promise<void> {
  const res = await fetch(`${idp.issuer}/token/revocation`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${GATEWAY_CLIENT_ID}:${GATEWAY_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: 'refresh_token' }),
  });
  if (res.status !== 200) throw new Error(`revocation failed: ${res.status}`);
}

t.test('refresh: once per session however many requests wait; a refused refresh ends the session', async (t) => {
  // Tokens live 90 s and are refreshed 3600 s ahead: every request finds the token due.
  const { base, browser, upstream, idp, gw } = await startLoginStack(t, { accessTokenTtl: 90, login: { refreshBeforeSec: 3600 } });
  const b = browser();
  await b.login(base, 'alice');
  const before = openSession(b.gatewayCookies());
  const tokenRequests = idp.requests.token;

  const cookie = cookieHeader(b.gatewayCookies());
  const answers = await Promise.all(Array.from({ length: 8 }, () => fetch(`${base}/app/x`, { headers: { cookie, ...JSON_ACCEPT } })));
  t.same(answers.map((r) => r.status), Array(8).fill(200));
  t.equal(idp.requests.token - tokenRequests, 1, 'one refresh grant for eight waiting requests');
  const tokens = new Set(upstream.requests.slice(-8).map((r) => r.headers.authorization));
  t.equal(tokens.size, 1, 'all eight carried the same new token');
  t.not([...tokens][0], `Bearer ${before.accessToken}`, 'a new access token');
  const rewritten = answers[0]!.headers.getSetCookie().find((c) => c.startsWith('__Host-cdf-gw-session='));
  t.ok(rewritten, 'the session cookie is rewritten');
  b.store(new URL(base), answers[0]!.headers.getSetCookie());
  const after = openSession(b.gatewayCookies());
  t.equal(after.id, before.id, 'same session');
  t.equal(before.idToken, null, 'the ID token is not kept after the login');
  t.equal(after.idToken, null, 'nor after a refresh that returned one');
  t.not(after.accessToken, before.accessToken);

  // The IdP revokes the refresh token: the next refresh is refused and the session ends.
  await revokeAtIdp(idp, after.refreshToken!);
  const browserRes = await b.fetch(`${base}/app/x`);
  t.equal(browserRes.status, 302, `browser → log in again (${browserRes.status} ${browserRes.status === 302 ? '' : await browserRes.clone().text()})`);
  t.match(browserRes.headers.get('location'), /^\/auth\/login\?project=demo/);
  const api = await fetch(`${base}/app/x`, { headers: { cookie: cookieHeader(b.gatewayCookies()), ...JSON_ACCEPT } });
  t.equal(api.status, 401, 'API → 401');

  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.match(metrics, /cdf_gateway_logins_total\{project="demo",outcome="ok"\} 1\b/, 'the login is counted');
  t.match(metrics, /cdf_gateway_session_refreshes_total\{project="demo",outcome="ok"\} [1-9]/, 'refreshes are counted');
  t.match(metrics, /cdf_gateway_session_refreshes_total\{project="demo",outcome="refused"\} 1\b/, 'and the refused one');
});

t.test('refresh while the IdP is down keeps a still-valid session', async (t) => {
  const { base, browser, idp } = await startLoginStack(t, { accessTokenTtl: 90, login: { refreshBeforeSec: 3600 } });
  const b = browser();
  await b.login(base, 'alice');
  idp.setDown(true);
  t.teardown(() => idp.setDown(false));
  const res = await fetch(`${base}/app/x`, { headers: { cookie: cookieHeader(b.gatewayCookies()), ...JSON_ACCEPT } });
  t.equal(res.status, 200, 'the current token is used until it expires');
});

t.test('redis store: opaque cookie, shared state, revocation, outage → 503', async (t) => {
  const redis = await startRedis(t);
  const { base, browser, upstream, gw } = await startLoginStack(t, {
    login: { sessionStore: 'redis', redis: { url: redis.url, keyPrefix: 'test:' } },
  });
  const b = browser();
  const { res, trail } = await b.login(base, 'alice', '/app/r');
  t.equal(res.status, 200, `login answered ${res.status === 200 ? 200 : `${res.status} ${await res.clone().text()} via ${trail.map((u) => u.pathname).join(' ')}`}`);
  const jar = b.gatewayCookies();
  const value = jar['__Host-cdf-gw-session']!;
  t.ok(value.length < 300, `the cookie holds only a sealed id (${value.length} chars)`);
  t.equal(upstream.last().headers['x-auth-request-user'], 'alice');

  const client = createClient({ url: redis.url });
  client.on('error', () => { /* the server is stopped below */ });
  await client.connect();
  t.teardown(() => client.destroy());
  const keys = await client.keys('test:session:*');
  t.equal(keys.length, 1, 'one session record');
  const record = await client.get(keys[0]!);
  t.notOk(record!.includes(upstream.last().headers.authorization!.slice(7)), 'the token is sealed at rest');

  // A second gateway replica sharing redis accepts the same cookie.
  const cookie = cookieHeader(jar);
  t.equal((await fetch(`${base}/app/r`, { headers: { cookie, ...JSON_ACCEPT } })).status, 200);

  await b.fetch(`${base}/auth/logout`, { method: 'POST', headers: { origin: base } });
  t.same(await client.keys('test:session:*'), [], 'logout deletes the record');
  t.equal((await fetch(`${base}/app/r`, { headers: { cookie, ...JSON_ACCEPT } })).status, 401, 'replay after logout → 401');

  const b2 = browser();
  await b2.login(base, 'bob', '/app/r');
  await redis.stop();
  const down = await fetch(`${base}/app/r`, { headers: { cookie: cookieHeader(b2.gatewayCookies()), ...JSON_ACCEPT } });
  t.equal(down.status, 503, 'redis down: 503, not "logged out"');
  t.same(await down.json(), { error: { code: 503, message: 'Service unavailable: session store cannot be reached' } });
  t.ok(gw.logs.some((l) => l.includes('redis')), 'the outage is logged');
});

t.test('idle and absolute timeouts end a session', async (t) => {
  let skewMs = 0;
  const { base, browser } = await startLoginStack(t, {
    login: { idleTimeoutSec: 120, sessionTtlSec: 300 },
    gateway: { clock: () => Date.now() + skewMs },
  });
  const get = (b: ReturnType<typeof browser>) => b.fetch(`${base}/app/x`, { headers: JSON_ACCEPT });

  const idle = browser();
  await idle.login(base, 'alice');
  skewMs = 119_000;
  t.equal((await get(idle)).status, 200, 'used within the idle timeout');
  skewMs = 119_000 + 121_000;
  const gone = await get(idle);
  t.equal(gone.status, 401, 'unused for longer than idleTimeoutSec');
  t.ok(gone.headers.getSetCookie().some((c) => /^__Host-cdf-gw-session=;.*Max-Age=0/.test(c)), 'and its cookie is cleared');

  skewMs = 0;
  const busy = browser();
  await busy.login(base, 'bob');
  for (const step of [100_000, 200_000, 290_000]) {
    skewMs = step;
    t.equal((await get(busy)).status, 200, `active at +${step / 1000} s`);
  }
  skewMs = 301_000;
  t.equal((await get(busy)).status, 401, 'past sessionTtlSec however active');
});

t.test('every login gets a new session id and revokes the previous one (no fixation)', async (t) => {
  const { base, browser } = await startLoginStack(t);
  const b = browser();
  await b.login(base, 'alice');
  const first = openSession(b.gatewayCookies());
  const firstCookie = cookieHeader(b.gatewayCookies());
  await b.login(base, 'alice');
  const second = openSession(b.gatewayCookies());
  t.not(second.id, first.id, 'a new id');
  t.equal((await fetch(`${base}/app/x`, { headers: { cookie: firstCookie, ...JSON_ACCEPT } })).status, 401, 'the earlier session is revoked');
  t.equal((await b.fetch(`${base}/app/x`, { headers: JSON_ACCEPT })).status, 200);
});
