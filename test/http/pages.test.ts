// Browser refusals are pages (status kept, CSP, no script, who is signed in, links); API clients
// keep CDF's JSON. Unit checks of the page text, then the real gateway with the real IdP.
import t, { type Test } from 'tap';
import { escapeHtml, isBrowser, refusalPage, wantsPage, PAGE_CSP } from '../../src/http/pages.js';
import { startLoginStack } from '../fixtures/login.js';

const HTML = { accept: 'text/html,application/xhtml+xml' };
const JSON_ACCEPT = { accept: 'application/json' };

t.test('who gets a page', async (t) => {
  t.ok(isBrowser(HTML));
  t.notOk(isBrowser({ ...HTML, authorization: 'Bearer x' }), 'Authorization: an API client');
  t.notOk(isBrowser({ accept: '*/*' }));
  // Media type and subtype are case-insensitive (RFC 9110 §8.3.1).
  for (const accept of ['TEXT/HTML', 'Text/Html,application/xhtml+xml', 'application/json;q=0.5, text/HTML']) {
    t.ok(isBrowser({ accept }), `Accept: ${accept}`);
    t.ok(wantsPage({ accept }, 401, false), `Accept: ${accept} gets a page`);
  }
  t.notOk(isBrowser({ accept: 'TEXT/HTML', authorization: 'Bearer x' }), 'any case, with Authorization: an API client');
  t.notOk(isBrowser({ accept: 'application/json' }));
  t.ok(wantsPage(HTML, 401, false));
  t.ok(wantsPage(HTML, 403, false));
  t.ok(wantsPage(HTML, 404, false));
  t.notOk(wantsPage(HTML, 502, false), 'an upstream failure on a route stays JSON');
  t.ok(wantsPage(HTML, 400, true), 'a failed login is a page');
  t.ok(wantsPage(HTML, 503, true));
});

t.test('page text: escaped, no script, links by situation', async (t) => {
  const html = refusalPage({ status: 403, message: 'Forbidden', user: '<img src=x onerror=alert(1)>', projects: ['demo'], back: '/app/"x"', loginEndpoint: false });
  t.notMatch(html, /<script|<img/i, 'nothing executable: no script, the name is no tag');
  t.match(html, escapeHtml('<img src=x onerror=alert(1)>'), 'the user name is escaped');
  t.match(html, '<h1>Access denied</h1>');
  t.match(html, 'href="/auth/login?project=demo&amp;redirect=%2Fapp%2F%22x%22"', 'log in again, back to the page');
  t.match(html, '>Switch user</a>');
  t.match(html, 'href="/auth/logout">Sign out</a>');
  t.match(html, '<html lang="en">');

  const anon = refusalPage({ status: 401, message: 'Unauthorized: a bearer token is required', user: null, projects: ['a', 'b'], back: '/', loginEndpoint: false });
  t.match(anon, 'You are not signed in');
  t.match(anon, '>Sign in to a</a>');
  t.match(anon, '>Sign in to b</a>');
  t.notMatch(anon, /Sign out|Switch user/, 'no logout links without a session');

  const noLogin = refusalPage({ status: 404, message: 'Not found', user: null, projects: [], back: '/', loginEndpoint: false });
  t.notMatch(noLogin, /<nav/, 'no links when login is not configured');
  t.match(refusalPage({ status: 400, message: 'x', user: null, projects: ['demo'], back: '/', loginEndpoint: true }), '<h1>Sign-in failed</h1>');
  t.match(refusalPage({ status: 503, message: 'x', user: null, projects: ['demo'], back: '/', loginEndpoint: true }), '<h1>Sign-in is unavailable</h1>');
});

t.test('through the gateway', async (t) => {
  const { base, browser, upstream } = await startLoginStack(t, { routes: [{ prefix: '/writers', upstream: 'app', login: 'demo', allow: [{ groups: ['writers'] }] }] });
  const alice = browser();
  await alice.login(base, 'alice');

  const checkPage = (t: Test, res: Response, status: number) => {
    t.equal(res.status, status);
    t.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    t.equal(res.headers.get('content-security-policy'), PAGE_CSP);
    t.equal(res.headers.get('x-content-type-options'), 'nosniff');
    t.equal(res.headers.get('cache-control'), 'no-store');
  };

  await t.test('403 for a signed-in browser names the user and keeps WWW-Authenticate', async (t) => {
    const before = upstream.requests.length;
    const res = await alice.fetch(`${base}/writers/page`);
    checkPage(t, res, 403);
    t.match(res.headers.get('www-authenticate'), /insufficient_scope/);
    const html = await res.text();
    t.match(html, '<h1>Access denied</h1>');
    t.match(html, 'Signed in as <strong>alice</strong>');
    t.match(html, 'href="/auth/login?project=demo&amp;redirect=%2Fwriters%2Fpage"');
    t.match(html, 'Switch user');
    t.equal(upstream.requests.length, before, 'nothing reached the upstream');
  });

  await t.test('the same refusal to an API client is JSON', async (t) => {
    const res = await alice.fetch(`${base}/writers/page`, { headers: JSON_ACCEPT });
    t.equal(res.status, 403);
    t.same(await res.json(), { error: { code: 403, message: 'Forbidden' } });
  });

  await t.test('404 and 401 pages', async (t) => {
    const nf = await alice.fetch(`${base}/nowhere`);
    checkPage(t, nf, 404);
    const nfHtml = await nf.text();
    t.match(nfHtml, '<h1>Page not found</h1>');
    t.match(nfHtml, 'Signed in as <strong>alice</strong>', 'the session is read for a 404 too');

    const anon = await browser().fetch(`${base}/api/x`);
    checkPage(t, anon, 401);
    t.match(anon.headers.get('www-authenticate'), /^Bearer/);
    const html = await anon.text();
    t.match(html, '<h1>You are not signed in</h1>');
    t.notMatch(html, /<h1>[^<]*bearer/i, 'no jargon in the heading');
    t.match(html, 'Sign in</a>');
  });

  await t.test('/auth/userinfo: "not signed in" to people and programs', async (t) => {
    const page = await browser().fetch(`${base}/auth/userinfo`);
    checkPage(t, page, 401);
    t.match(await page.text(), '<h1>You are not signed in</h1>');
    const api = await fetch(`${base}/auth/userinfo`, { headers: JSON_ACCEPT });
    t.same(await api.json(), { error: { code: 401, message: 'Unauthorized: not signed in' } });
  });

  await t.test('a failed login (callback without a flow) is a page', async (t) => {
    const res = await browser().fetch(`${base}/auth/callback?state=abc&code=x`);
    checkPage(t, res, 400);
    const html = await res.text();
    t.match(html, '<h1>Sign-in failed</h1>');
    t.match(html, 'href="/auth/login?project=demo&amp;redirect=%2F"');
  });

  await t.test('a bearer token is never given a page', async (t) => {
    const res = await fetch(`${base}/api/x`, { headers: { ...HTML, authorization: 'Bearer abc.def.ghi' } });
    t.equal(res.status, 401);
    t.match(res.headers.get('content-type'), /application\/json/);
  });

  await t.test('switch user: logout then the login page, as the link says', async (t) => {
    const res = await alice.fetch(`${base}/writers/page`);
    const href = /href="([^"]+)">Switch user/.exec(await res.text())![1]!.replace(/&amp;/g, '&');
    const out = await alice.fetch(new URL(href, base));
    t.equal(out.status, 302);
    const loc = new URL(out.headers.get('location')!, base);
    const target = loc.searchParams.get('post_logout_redirect_uri') ?? loc.href;
    t.match(target, /\/auth\/login\?project=demo&redirect=%2Fwriters%2Fpage$/, 'the logout continues to the login');
    t.equal((await alice.fetch(`${base}/auth/userinfo`, { headers: JSON_ACCEPT })).status, 401, 'logged out');
  });
});
