// The login flow end to end with a fetch-based browser against the real IdP (oidc-provider):
// the happy path, then tampering and replay of every piece a callback carries.
import t from 'tap';
import { decodeJwt } from 'jose';
import { startLoginStack, type FakeBrowser } from '../fixtures/login.js';

/** Runs /auth/login → IdP and stops before the callback: returns the callback URL the IdP issued. */
async function toCallback(b: FakeBrowser, base: string, user = 'alice', query = 'project=demo&redirect=/app/x'): Promise<URL> {
  const { url } = await b.navigate(`${base}/auth/login?${query}`, user, (u) => u.pathname === '/auth/callback');
  if (url.pathname !== '/auth/callback') throw new Error(`no callback reached: ${url.href}`);
  return url;
}

function sessionCookieLines(res: Response): string[] {
  return res.headers.getSetCookie().filter((c) => c.startsWith('__Host-cdf-gw-session') && !/Max-Age=0/i.test(c));
}

t.test('log in, reach a login route, the upstream sees the user token', async (t) => {
  const { base, browser, upstream, idp } = await startLoginStack(t);
  const b = browser();
  const first = await b.fetch(`${base}/app/home?x=1`);
  t.equal(first.status, 302, 'a browser without a session is sent to log in');
  t.equal(first.headers.get('location'), '/auth/login?project=demo&redirect=%2Fapp%2Fhome%3Fx%3D1');
  const { res, url } = await b.navigate(new URL(first.headers.get('location')!, base).href, 'alice');
  t.equal(url.href, `${base}/app/home?x=1`, 'back at the page it asked for');
  t.equal(res.status, 200);
  const seen = upstream.last();
  const claims = decodeJwt(String(seen.headers.authorization).replace(/^Bearer /, ''));
  t.match(claims, { sub: 'alice', iss: idp.issuer, aud: 'https://cdf.test/api' }, 'the user\'s own access token');
  t.equal(seen.headers['x-auth-request-user'], 'alice');
  t.equal(seen.headers['x-auth-request-email'], 'alice@example.com');
  t.equal(seen.headers['x-auth-request-groups'], 'readers');
  t.notOk(String(seen.headers.cookie ?? '').includes('cdf-gw'), 'no gateway cookie upstream');
});

t.test('cookies: __Host- prefix, HttpOnly, SameSite=Lax, Secure, Path=/; flow cookie gone after the callback', async (t) => {
  const { base, browser } = await startLoginStack(t);
  const b = browser();
  const login = await b.fetch(`${base}/auth/login?project=demo&redirect=/app/x`);
  t.equal(login.status, 302);
  const flow = login.headers.getSetCookie();
  t.equal(flow.length, 1);
  t.match(flow[0], /^__Host-cdf-gw-flow-[A-Za-z0-9_-]{16}=[^;]+; Max-Age=600; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
  t.equal(login.headers.get('cache-control'), 'no-store');
  const idpUrl = new URL(login.headers.get('location')!);
  t.equal(idpUrl.searchParams.get('code_challenge_method'), 'S256');
  t.ok(idpUrl.searchParams.get('code_challenge'), 'PKCE');
  t.ok(idpUrl.searchParams.get('nonce'));
  t.equal(idpUrl.searchParams.get('resource'), 'https://cdf.test/api');
  t.notOk(idpUrl.searchParams.has('code_verifier'), 'the verifier never leaves the gateway');

  const { trail } = await b.navigate(idpUrl.href, 'alice');
  t.ok(trail.some((u) => u.pathname === '/auth/callback'));
  const jar = b.gatewayCookies();
  t.same(Object.keys(jar), ['__Host-cdf-gw-session'], 'only the session cookie remains');
});

t.test('redirect targets: attacks land on /', async (t) => {
  const { base, browser } = await startLoginStack(t);
  const rows: Array<[string, string]> = [
    ['/app/ok?q=1', '/app/ok?q=1'],
    ['//evil.example/x', '/'],
    ['/\\evil.example', '/'],
    ['https://evil.example/', '/'],
    [`http://127.0.0.1@evil.example/`, '/'],
    ['javascript:alert(1)', '/'],
    ['/%2F%2Fevil.example', '/'],
    ['/app\r\nSet-Cookie: x=y', '/'],
  ];
  for (const [redirect, landing] of rows) {
    const b = browser();
    const cb = await toCallback(b, base, 'alice', `project=demo&redirect=${encodeURIComponent(redirect)}`);
    const res = await b.fetch(cb);
    t.equal(res.status, 302, redirect);
    t.equal(res.headers.get('location'), landing, `${JSON.stringify(redirect)} → ${landing}`);
  }
});

t.test('callback tampering and replay create no session', async (t) => {
  const { base, browser, gw } = await startLoginStack(t);

  await t.test('the grant replayed in another browser (no flow cookie)', async (t) => {
    const cb = await toCallback(browser(), base);
    const other = browser();
    const res = await other.fetch(cb, { headers: { accept: 'application/json' } });
    t.equal(res.status, 400);
    t.same(await res.json(), { error: { code: 400, message: 'Bad request: login failed' } });
    t.same(sessionCookieLines(res), []);
  });

  await t.test('state altered', async (t) => {
    const b = browser();
    const cb = await toCallback(b, base);
    cb.searchParams.set('state', `${cb.searchParams.get('state')}x`);
    const res = await b.fetch(cb);
    t.equal(res.status, 400);
    t.same(sessionCookieLines(res), []);
  });

  await t.test('state missing', async (t) => {
    const b = browser();
    const cb = await toCallback(b, base);
    cb.searchParams.delete('state');
    t.equal((await b.fetch(cb)).status, 400);
  });

  await t.test('code altered', async (t) => {
    const b = browser();
    const cb = await toCallback(b, base);
    cb.searchParams.set('code', `${cb.searchParams.get('code')}x`);
    const res = await b.fetch(cb);
    t.equal(res.status, 400);
    t.same(sessionCookieLines(res), []);
  });

  await t.test('code replayed after a successful login', async (t) => {
    const b = browser();
    const cb = await toCallback(b, base);
    const ok = await b.fetch(cb);
    t.equal(ok.status, 302);
    t.equal(sessionCookieLines(ok).length, 1);
    const again = await b.fetch(cb);
    t.equal(again.status, 400, 'the flow cookie was spent');
  });

  await t.test('another tab\'s flow cookie with this tab\'s grant', async (t) => {
    const a = browser();
    const cbA = await toCallback(a, base);
    const b = browser();
    await toCallback(b, base);
    // Give tab B's browser tab A's flow cookie under B's name: the sealed state inside differs.
    const flowA = Object.entries(a.gatewayCookies()).find(([n]) => n.includes('-flow-'))!;
    const flowBName = Object.keys(b.gatewayCookies()).find((n) => n.includes('-flow-'))!;
    b.store(new URL(base), [`${flowBName}=${flowA[1]}; Path=/`]);
    const stateB = Object.keys(b.gatewayCookies()).length;
    t.ok(stateB >= 1);
    const res = await b.fetch(cbA);
    // cbA's state names A's cookie, which B does not have.
    t.equal(res.status, 400);
  });

  await t.test('a flow cookie tampered with', async (t) => {
    const b = browser();
    const cb = await toCallback(b, base);
    const [name, value] = Object.entries(b.gatewayCookies()).find(([n]) => n.includes('-flow-'))!;
    const flipped = value.slice(0, -3) + (value.at(-3) === 'A' ? 'B' : 'A') + value.slice(-2);
    b.store(new URL(base), [`${name}=${flipped}; Path=/`]);
    t.equal((await b.fetch(cb)).status, 400);
  });

  await t.test('a wrong iss (RFC 9207 mix-up defence)', async (t) => {
    const b = browser();
    const cb = await toCallback(b, base);
    t.ok(cb.searchParams.get('iss'), 'the IdP sends iss');
    cb.searchParams.set('iss', 'http://evil.example');
    const res = await b.fetch(cb);
    t.equal(res.status, 400);
    t.same(sessionCookieLines(res), []);
  });

  await t.test('the IdP reports an error', async (t) => {
    const b = browser();
    const cb = await toCallback(b, base);
    const err = new URL(cb);
    err.search = new URLSearchParams({ error: 'access_denied', state: cb.searchParams.get('state')!, iss: cb.searchParams.get('iss')! }).toString();
    t.equal((await b.fetch(err)).status, 400);
  });

  t.test('failed logins are counted by outcome', async (t) => {
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    t.match(metrics, /cdf_gateway_logins_total\{project="demo",outcome="exchange_failed"\} [1-9]/);
    t.match(metrics, /cdf_gateway_logins_total\{project="demo",outcome="idp_error"\} 1\b/);
    t.match(metrics, /cdf_gateway_logins_total\{project="-",outcome="no_flow"\} [1-9]/);
  });

  t.test('nothing secret was logged', async (t) => {
    const text = gw.logs.join('\n');
    t.notMatch(text, /code=|code_verifier|"state"/);
  });
});

t.test('the error destination receives failures', async (t) => {
  const { base, browser } = await startLoginStack(t, { project: { errorRedirect: '/login-failed' } });
  const b = browser();
  const cb = await toCallback(b, base);
  const err = new URL(cb);
  err.search = new URLSearchParams({ error: 'access_denied', state: cb.searchParams.get('state')!, iss: cb.searchParams.get('iss')! }).toString();
  const res = await b.fetch(err);
  t.equal(res.status, 302);
  t.equal(res.headers.get('location'), '/login-failed?error=access_denied');
  t.same(sessionCookieLines(res), []);

  const b2 = browser();
  const cb2 = await toCallback(b2, base, 'alice', 'project=demo&redirect=/app&errorRedirect=/mine?x=1');
  cb2.searchParams.set('code', 'forged');
  const res2 = await b2.fetch(cb2);
  t.equal(res2.headers.get('location'), '/mine?x=1&error=login_failed', 'the login\'s own error destination wins');
});

t.test('sessions on routes', async (t) => {
  const { base, browser, upstream } = await startLoginStack(t);
  const bob = browser();
  await bob.login(base, 'bob');
  const alice = browser();
  await alice.login(base, 'alice');

  await t.test('an API client on a login route gets 401, not a redirect', async (t) => {
    const res = await browser().fetch(`${base}/app/x`, { headers: { accept: 'application/json' } });
    t.equal(res.status, 401);
    t.match(res.headers.get('www-authenticate'), /^Bearer/);
    t.same(await res.json(), { error: { code: 401, message: 'Unauthorized: a bearer token is required' } });
  });

  await t.test('a non-GET browser request without a session gets 401', async (t) => {
    t.equal((await browser().fetch(`${base}/app/x`, { method: 'POST', body: 'x' })).status, 401);
  });

  await t.test('group rules apply to sessions', async (t) => {
    const same = { origin: base };
    t.equal((await alice.fetch(`${base}/app/x`, { method: 'POST', body: '{}', headers: same })).status, 403, 'readers may only read');
    const n = upstream.requests.length;
    t.equal((await bob.fetch(`${base}/app/x`, { method: 'POST', body: '{}', headers: same })).status, 200, 'writers may write');
    t.equal(upstream.requests.length, n + 1);
  });

  await t.test('cross-site state changes are refused (CSRF)', async (t) => {
    const n = upstream.requests.length;
    const attempts: Array<Record<string, string>> = [{ origin: 'https://evil.example' }, { referer: 'https://evil.example/page' }, {}, { origin: 'null' }];
    for (const headers of attempts) {
      const res = await bob.fetch(`${base}/app/x`, { method: 'DELETE', headers });
      t.equal(res.status, 403, JSON.stringify(headers));
    }
    t.equal(upstream.requests.length, n, 'nothing reached the upstream');
    t.equal((await bob.fetch(`${base}/app/x`, { method: 'DELETE', headers: { referer: `${base}/page` } })).status, 200, 'same-origin Referer is enough');
  });

  await t.test('a session cookie is not accepted on a bearer-only route', async (t) => {
    const res = await alice.fetch(`${base}/api/x`, { headers: { accept: 'application/json' } });
    t.equal(res.status, 401);
  });

  await t.test('a bearer token wins over the cookie', async (t) => {
    const res = await alice.fetch(`${base}/app/x`, { headers: { authorization: 'Bearer not.a.token' } });
    t.equal(res.status, 401);
    t.match(res.headers.get('www-authenticate'), /invalid_token/);
  });

  await t.test('a tampered session cookie is no session, and is cleared', async (t) => {
    const b = browser();
    for (const [name, value] of Object.entries(alice.gatewayCookies())) {
      // A different character at position 40 (writing a fixed one left the cookie intact 1 time in 64).
      const flipped = value[40] === 'A' ? 'B' : 'A';
      b.store(new URL(base), [`${name}=${value.slice(0, 40)}${flipped}${value.slice(41)}; Path=/`]);
    }
    const res = await b.fetch(`${base}/app/x`);
    t.equal(res.status, 302, 'sent to log in again');
    t.ok(res.headers.getSetCookie().some((c) => /^__Host-cdf-gw-session=;.*Max-Age=0/.test(c)), 'the bad cookie is expired');
  });
});

t.test('a large session is split across cookies and reassembled', async (t) => {
  const { base, browser, upstream } = await startLoginStack(t);
  const b = browser();
  const { res } = await b.login(base, 'dave', '/app/big');
  t.equal(res.status, 200);
  const names = Object.keys(b.gatewayCookies()).sort();
  t.ok(names.length >= 2, `chunked into ${names.length} cookies`);
  t.ok(names.every((n) => /^__Host-cdf-gw-session\.\d+$/.test(n)), names.join(','));
  t.equal(upstream.last().headers['x-auth-request-user'], 'dave');

  // Drop one chunk: the set is refused as a whole.
  const partial = browser();
  for (const [name, value] of Object.entries(b.gatewayCookies())) if (!name.endsWith('.1')) partial.store(new URL(base), [`${name}=${value}; Path=/`]);
  t.equal((await partial.fetch(`${base}/app/big`, { headers: { accept: 'application/json' } })).status, 401);
});

t.test('login-cookie flooding: at most 3 pending flows, each small; the newest still completes', async (t) => {
  const { base, browser } = await startLoginStack(t);
  const b = browser();
  const longRedirect = `/app/x?${'q=' + 'a'.repeat(1900)}`; // accepted by safeRedirect (≤ 2048)
  const flowNames = () => Object.keys(b.gatewayCookies()).filter((n) => n.startsWith('__Host-cdf-gw-flow-'));
  let last: Response | null = null;
  for (let i = 0; i < 12; i++) {
    last = await b.fetch(`${base}/auth/login?project=demo&redirect=${encodeURIComponent(longRedirect)}`);
    t.equal(last.status, 302, `visit ${i + 1}`);
    t.ok(flowNames().length <= 3, `visit ${i + 1}: ${flowNames().length} pending flows`);
  }
  t.equal(flowNames().length, 3, 'the three newest flows are kept');
  for (const [name, value] of Object.entries(b.gatewayCookies())) {
    t.ok(value.length < 1024, `${name} stays small (${value.length} chars)`);
  }
  const header = Object.entries(b.gatewayCookies()).map(([k, v]) => `${k}=${v}`).join('; ');
  t.ok(header.length < 4096, 'the browser\'s gateway cookies stay far below the header limit');
  // The most recent flow completes; the over-long target was cut to its path.
  const { url } = await b.navigate(last!.headers.get('location')!, 'alice');
  t.equal(url.href, `${base}/app/x`, `landed at ${url.href.slice(0, 200)}`);
  t.same(Object.keys(b.gatewayCookies()).filter((n) => n.includes('flow')).length, 2, 'its own flow cookie was cleared');
});
