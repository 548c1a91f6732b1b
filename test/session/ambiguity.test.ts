// Two gateway cookies of one name (one planted through a sibling domain or a deeper path, say):
// the request is treated as having none, whichever comes first, and the cookies are cleared.
import t from 'tap';
import { startLoginStack } from '../fixtures/login.js';

const SESSION = '__Host-cdf-gw-session';

t.test('a request with two session cookies has no session', async (t) => {
  const { base, browser, upstream } = await startLoginStack(t);
  const b = browser();
  const { res } = await b.login(base, 'alice', '/app/home');
  t.equal(res.status, 200, 'logged in');
  const good = b.gatewayCookies()[SESSION]!;
  t.ok(good);
  const api = (cookie: string, path = '/app/x') => fetch(`${base}${path}`, { headers: { cookie, accept: 'application/json' } });

  t.equal((await api(`${SESSION}=${good}`)).status, 200, 'one cookie: the session works');
  const before = upstream.requests.length;
  for (const [name, cookie] of [
    ['ours first, a planted one second', `${SESSION}=${good}; ${SESSION}=planted`],
    ['a planted one first, ours second', `${SESSION}=planted; ${SESSION}=${good}`],
    ['ours twice', `${SESSION}=${good}; ${SESSION}=${good}`],
    ['ours twice, in two Cookie headers', [`${SESSION}=${good}`, `${SESSION}=${good}`]],
  ] as const) {
    const headers = new Headers({ accept: 'application/json' });
    for (const c of typeof cookie === 'string' ? [cookie] : cookie) headers.append('cookie', c);
    const r = await fetch(`${base}/app/x`, { headers });
    t.equal(r.status, 401, name);
    t.ok(r.headers.getSetCookie().some((c) => c.startsWith(`${SESSION}=;`) && /Max-Age=0/.test(c)), `${name}: the session cookie is cleared`);
  }
  t.equal(upstream.requests.length, before, 'nothing reached the upstream');

  const page = await fetch(`${base}/app/x`, { headers: { cookie: `${SESSION}=${good}; ${SESSION}=planted`, accept: 'text/html' }, redirect: 'manual' });
  t.equal(page.status, 302, 'a browser is sent to log in');
  t.match(page.headers.get('location'), /^\/auth\/login\?/);
  t.equal((await api(`${SESSION}=${good}; ${SESSION}=planted`, '/auth/userinfo')).status, 401, '/auth/userinfo');
  const token = await (await api(`${SESSION}=${good}; ${SESSION}=planted`, '/login/token')).json();
  t.same(token, { data: { loggedIn: false, user: null, project: null, expiresAt: null } }, '/login/token');
  t.equal((await api(`${SESSION}=${good}`)).status, 200, 'the session itself was not revoked');
});

t.test('an upstream cannot set a cookie a browser would send as a gateway cookie', async (t) => {
  const { base, upstream } = await startLoginStack(t);
  upstream.respond = (_req, res) => {
    res.setHeader('set-cookie', ['=cdf-gw-session=planted; Path=/', '__Host-cdf-gw-session=planted; Path=/; Secure', 'x-cdf-gw=1', 'cdf-gw-session', 'app=1; Path=/']);
    res.end('ok');
  };
  const res = await fetch(`${base}/open/x`);
  t.equal(res.status, 200);
  t.same(res.headers.getSetCookie(), ['app=1; Path=/'], 'only the app\'s own cookie');
});

t.test('a callback with its flow cookie twice is refused and the flow cookie cleared', async (t) => {
  const { base, browser, upstream } = await startLoginStack(t);
  const b = browser();
  const login = await b.fetch(`${base}/auth/login?project=demo&redirect=/app/x`);
  const setLine = login.headers.getSetCookie().find((c) => c.includes('-flow-'))!;
  t.ok(setLine, 'the login set a flow cookie');
  const { url: cb } = await b.navigate(login.headers.get('location')!, 'alice', (u) => u.pathname === '/auth/callback');
  t.equal(cb.pathname, '/auth/callback', 'the IdP sent the browser back with a code');
  const [name, value] = Object.entries(b.gatewayCookies()).find(([n]) => n.includes('-flow-'))!;
  // The attributes the cookie was set with (everything after the value, Max-Age aside).
  const attrs = (line: string) => line.split(';').slice(1).map((a) => a.trim()).filter((a) => !/^max-age=/i.test(a)).sort();

  for (const [what, cookie] of [
    ['ours twice', `${name}=${value}; ${name}=${value}`],
    ['a planted one first, ours second', `${name}=planted; ${name}=${value}`],
  ] as const) {
    const res = await fetch(cb, { headers: { cookie, accept: 'application/json' }, redirect: 'manual' });
    t.equal(res.status, 400, `${what}: refused`);
    const lines = res.headers.getSetCookie();
    t.equal(lines.length, 1, `${what}: one Set-Cookie`);
    t.ok(lines[0]!.startsWith(`${name}=;`), `${what}: for the flow cookie, emptied`);
    t.match(lines[0], /; Max-Age=0(;|$)/, `${what}: expired`);
    t.same(attrs(lines[0]!), attrs(setLine), `${what}: with the attributes it was set with`);
    t.notOk(lines.some((l) => l.includes('-session=')), `${what}: no session`);
  }
  // The refusal spent nothing: the flow still completes with the one cookie it belongs to.
  const ok = await fetch(cb, { headers: { cookie: `${name}=${value}`, accept: 'application/json' }, redirect: 'manual' });
  t.equal(ok.status, 302, 'with the cookie sent once, the login completes');
  t.equal(upstream.requests.length, 0);
});

t.test('a duplicated session cookie is cleared on public and bearer routes too', async (t) => {
  const { base, browser, upstream, idp } = await startLoginStack(t);
  const b = browser();
  await b.login(base, 'alice', '/app/home');
  const good = b.gatewayCookies()[SESSION]!;
  const bearer = `Bearer ${await idp.userToken('alice')}`;
  const twice = `${SESSION}=${good}; ${SESSION}=planted; app=1`;
  const cleared = (r: Response) => r.headers.getSetCookie().some((c) => c.startsWith(`${SESSION}=;`) && /Max-Age=0/.test(c));

  for (const [what, path, headers, status] of [
    ['public route', '/open/x', {}, 200],
    ['public route, a browser', '/open/x', { accept: 'text/html' }, 200],
    ['bearer-only route with a token', '/api/x', { authorization: bearer }, 200],
    ['bearer-only route without a token', '/api/x', {}, 401],
    ['login route with a token (the token wins)', '/app/x', { authorization: bearer }, 200],
  ] as const) {
    const n = upstream.requests.length;
    const r = await fetch(`${base}${path}`, { headers: { accept: 'application/json', ...headers, cookie: twice }, redirect: 'manual' });
    t.equal(r.status, status, `${what}: ${status}`);
    t.ok(cleared(r), `${what}: the session cookie is cleared`);
    if (status === 200) {
      const seen = upstream.requests.at(-1)!;
      t.equal(upstream.requests.length, n + 1, `${what}: forwarded`);
      t.equal(seen.headers.cookie, 'app=1', `${what}: the upstream sees no gateway cookie`);
      if (headers.authorization === undefined) t.equal(r.headers.get('cache-control'), 'private', `${what}: kept from shared caches (it carries Set-Cookie)`);
    }
  }

  // One session cookie, or none of ours, is left alone.
  for (const [what, path, headers] of [
    ['public route, the session cookie once', '/open/x', { cookie: `${SESSION}=${good}` }],
    ['bearer route, the session cookie once', '/api/x', { cookie: `${SESSION}=${good}`, authorization: bearer }],
    ['public route, other cookies twice', '/open/x', { cookie: 'app=1; app=2' }],
  ] as const) {
    const r = await fetch(`${base}${path}`, { headers: { accept: 'application/json', ...headers } });
    t.equal(r.status, 200, what);
    t.same(r.headers.getSetCookie(), [], `${what}: no Set-Cookie`);
    t.equal(r.headers.get('cache-control'), null, `${what}: Cache-Control as the upstream sent it`);
  }
  t.equal((await fetch(`${base}/app/x`, { headers: { cookie: `${SESSION}=${good}`, accept: 'application/json' } })).status, 200, 'the session itself was not revoked');
});
