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
