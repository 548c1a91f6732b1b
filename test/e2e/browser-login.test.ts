// The browser login end to end in real headless Chromium (Debian /usr/bin/chromium through
// playwright-core) against the real IdP (oidc-provider, issuer host `localhost`) and the gateway
// on 127.0.0.1: log in, reach a login route, cookie flags, userinfo, refresh, logout and replay,
// cross-site logout, two tabs logging in at once. One browser per file; a new context per test.
import t from 'tap';
import type { Test } from 'tap';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, Cookie, Page } from 'playwright-core';
import { launchChromium } from '../fixtures/chromium.js';
import { RESOURCE, startLoginStack, type LoginStack, type LoginStackOptions } from '../fixtures/login.js';

const SESSION = '__Host-cdf-gw-session';

let browser: Browser | undefined;

t.before(async () => {
  browser = await launchChromium(t);
});

async function newContext(t: Test): Promise<BrowserContext> {
  const ctx = await browser!.newContext();
  t.teardown(() => ctx.close());
  return ctx;
}

/** Expects the IdP's login form on `page`, signs in as `user`, consents, and waits for `final`. */
async function signIn(page: Page, stack: LoginStack, final: string, user = 'alice'): Promise<void> {
  await page.waitForURL((u) => u.origin === stack.idp.issuer && u.pathname.startsWith('/interaction/'));
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'pw');
  await page.click('button[type=submit]');
  // The consent form replaces the login form under another /interaction/ URL.
  await page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' });
  await page.click('button[type=submit]');
  await page.waitForURL(final);
}

async function loginStack(t: Test, opts?: LoginStackOptions): Promise<{ stack: LoginStack; ctx: BrowserContext; page: Page }> {
  const stack = await startLoginStack(t, opts);
  const ctx = await newContext(t);
  const page = await ctx.newPage();
  await page.goto(`${stack.base}/app/home`);
  await signIn(page, stack, `${stack.base}/app/home`);
  return { stack, ctx, page };
}

const sessionCookies = (cookies: Cookie[]): Cookie[] => cookies.filter((c) => c.name.startsWith(SESSION));
const bearer = (auth: string | undefined): string => {
  const m = /^Bearer (\S+)$/.exec(auth ?? '');
  if (m === null) throw new Error(`no bearer token upstream: ${String(auth)}`);
  return m[1]!;
};

t.test('log in through the IdP and reach a login route; the upstream sees the user token', async (t) => {
  const { stack, page } = await loginStack(t);
  t.equal(page.url(), `${stack.base}/app/home`, 'back at the page first asked for');
  const body = await page.innerText('body');
  t.match(body, /"externalId":\s*"pump-1"/, 'the upstream JSON is shown');
  t.match(body, /"path":\s*"\/app\/home"/);

  const seen = stack.upstream.last();
  t.equal(seen.url, '/app/home');
  const claims = decodeJwt(bearer(seen.headers.authorization));
  t.equal(claims.sub, 'alice');
  t.equal(claims.aud, RESOURCE);
  t.equal(seen.headers['x-auth-request-user'], 'alice');
  t.notMatch(String(seen.headers.cookie ?? ''), /cdf-gw/, 'no gateway cookie reaches the upstream');
});

t.test('cookies: session cookie flags, no flow cookie left, IdP cookies stay on localhost', async (t) => {
  const { stack, ctx, page } = await loginStack(t);
  const cookies = await ctx.cookies();
  const session = sessionCookies(cookies);
  t.ok(session.length >= 1, 'a session cookie is set');
  for (const c of session) {
    t.equal(c.domain, '127.0.0.1', `${c.name}: host-only on the gateway`);
    t.equal(c.path, '/', `${c.name}: Path=/`);
    t.equal(c.httpOnly, true, `${c.name}: HttpOnly`);
    t.equal(c.secure, true, `${c.name}: Secure`);
    t.equal(c.sameSite, 'Lax', `${c.name}: SameSite=Lax`);
  }
  const gateway = cookies.filter((c) => c.domain === '127.0.0.1');
  t.same(gateway.filter((c) => !c.name.startsWith(SESSION)).map((c) => c.name), [], 'only the session cookie on the gateway host (flow cookie cleared)');
  t.notOk(cookies.some((c) => /cdf-gw-flow/.test(c.name)), 'no flow cookie anywhere');
  const idpCookies = cookies.filter((c) => !c.name.includes('cdf-gw'));
  t.ok(idpCookies.length > 0, 'the IdP set its own cookies');
  t.same([...new Set(idpCookies.map((c) => c.domain))], ['localhost'], 'IdP cookies only on localhost');

  t.notMatch(await page.evaluate(() => document.cookie), /cdf-gw/, 'page JavaScript cannot read the session cookie');
  t.equal(new URL(page.url()).origin, stack.base, 'document.cookie was read on the gateway origin');
});

t.test('/auth/userinfo in the browser returns the identity; GET logout ends it', async (t) => {
  const { stack, page } = await loginStack(t);
  const res = await page.goto(`${stack.base}/auth/userinfo`);
  t.equal(res?.status(), 200);
  const { data } = await res!.json() as { data: Record<string, unknown> };
  t.match(data, { sub: 'alice', email: 'alice@example.com', groups: ['readers'], project: 'demo' });
  t.same(Object.keys(data).sort(), ['email', 'expiresAt', 'groups', 'name', 'project', 'sub']);
  t.type(data.expiresAt, 'number');
  t.ok((data.expiresAt as number) > Date.now(), 'expiry in the future');

  // GET logout (a link): straight on to the IdP's end-session page, the session gone.
  await page.goto(`${stack.base}/auth/logout?redirect=/bye`);
  t.equal(new URL(page.url()).origin, stack.idp.issuer, 'at the IdP');
  t.match(new URL(page.url()).pathname, /^\/session\/end/, 'its end-session page');
  t.equal(new URL(page.url()).searchParams.get('post_logout_redirect_uri'), `${stack.base}/bye`);
  const after = await page.goto(`${stack.base}/auth/userinfo`);
  t.equal(after?.status(), 401, 'no identity after logout');
});

t.test('refresh: an access token near its expiry is refreshed once and the cookie rewritten', async (t) => {
  // 70 s tokens, refreshed 60 s before exp (the default). The gateway's clock is moved 20 s ahead
  // after the login so the next request finds the token due, with no waiting.
  let skewMs = 0;
  const { stack, ctx, page } = await loginStack(t, { accessTokenTtl: 70, gateway: { clock: () => Date.now() + skewMs } });
  t.equal(stack.idp.requests.token, 1, 'only the code exchange so far: a fresh token is not refreshed');
  const first = bearer(stack.upstream.last().headers.authorization);
  t.equal(decodeJwt(first).exp! - decodeJwt(first).iat!, 70, 'the IdP issues 70 s tokens');
  const cookie1 = sessionCookies(await ctx.cookies()).map((c) => c.value).join('');

  skewMs = 20_000;
  const res = await page.goto(`${stack.base}/app/later`);
  t.equal(res?.status(), 200);
  const seen = stack.upstream.last();
  t.equal(seen.url, '/app/later');
  const second = bearer(seen.headers.authorization);
  const a = decodeJwt(first);
  const b = decodeJwt(second);
  t.not(b.jti, a.jti, 'the upstream got a new access token');
  t.ok(b.iat! >= a.iat!, 'issued no earlier than the first');
  t.match(b, { sub: 'alice', aud: RESOURCE, iss: stack.idp.issuer });
  t.equal(stack.idp.requests.token, 2, 'exactly one more token request: the refresh_token grant');
  const cookie2 = sessionCookies(await ctx.cookies()).map((c) => c.value).join('');
  t.not(cookie2, cookie1, 'the session cookie was rewritten');

  skewMs = 0;
  const again = await page.goto(`${stack.base}/app/again`);
  t.equal(again?.status(), 200);
  t.equal(bearer(stack.upstream.last().headers.authorization), second, 'the refreshed token is used from the new cookie');
  t.equal(stack.idp.requests.token, 2, 'and not refreshed again');
});

t.test('logout: POST from the gateway page ends the session; replay gets 401; cross-site POST 403', async (t) => {
  const { stack, ctx, page } = await loginStack(t);
  const { base, idp } = stack;
  const replay = sessionCookies(await ctx.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  t.ok(replay !== '', 'captured the session cookie');

  // Cross-site: a page on the IdP's origin (another site) posts a form to the gateway's logout.
  const evil = await ctx.newPage();
  await evil.goto(`${idp.issuer}/.well-known/openid-configuration`);
  const [crossSite] = await Promise.all([
    evil.waitForResponse((r) => r.url().startsWith(`${base}/auth/logout`)),
    evil.evaluate((action) => {
      const f = document.createElement('form');
      f.method = 'POST';
      f.action = action;
      document.body.append(f);
      f.submit();
    }, `${base}/auth/logout`),
  ]);
  t.equal(crossSite.status(), 403, 'cross-site form POST to /auth/logout is refused');
  // With the cookie attached (SameSite=Lax kept it off the form post above), Origin still decides.
  const forged = await fetch(`${base}/auth/logout`, {
    method: 'POST', redirect: 'manual', headers: { cookie: replay, origin: 'https://evil.example', accept: 'application/json' },
  });
  t.equal(forged.status, 403, 'a cross-site Origin with the session cookie is refused');
  const stillIn = await fetch(`${base}/auth/userinfo`, { headers: { cookie: replay, accept: 'application/json' } });
  t.equal(stillIn.status, 200, 'the refused logouts did not end the session');

  // Same-origin: the gateway page submits the form; the gateway redirects to the IdP's end-session.
  await page.evaluate(() => {
    const f = document.createElement('form');
    f.method = 'POST';
    f.action = '/auth/logout?redirect=/bye';
    document.body.append(f);
    f.submit();
  });
  await page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/session/end'));
  t.equal(sessionCookies(await ctx.cookies()).length, 0, 'the session cookie was cleared');
  // Confirm at the IdP; it sends the browser back to the registered post-logout URI.
  await page.click('button[name=logout][value=yes]');
  await page.waitForURL(`${base}/bye`);

  const app = await fetch(`${base}/app/home`, { headers: { cookie: replay, accept: 'application/json' } });
  t.equal(app.status, 401, 'the old cookie replayed to a login route: 401');
  const info = await fetch(`${base}/auth/userinfo`, { headers: { cookie: replay, accept: 'application/json' } });
  t.equal(info.status, 401, 'the old cookie replayed to /auth/userinfo: 401');

  // Logged out at the IdP too: the next visit asks for the password again.
  await page.goto(`${base}/app/home`);
  await page.waitForURL((u) => u.origin === idp.issuer && u.pathname.startsWith('/interaction/'));
  t.equal(await page.locator('input[name=login]').count(), 1, 'the IdP asks to log in again');
});

t.test('two tabs logging in at once both succeed', async (t) => {
  const stack = await startLoginStack(t);
  const ctx = await newContext(t);
  const one = await ctx.newPage();
  const two = await ctx.newPage();
  // Both tabs start their login (and get their flow cookie) before either comes back.
  await one.goto(`${stack.base}/app/one`);
  await two.goto(`${stack.base}/app/two`);
  const flows = (await ctx.cookies()).filter((c) => /cdf-gw-flow/.test(c.name));
  t.equal(flows.length, 2, 'one flow cookie per tab');

  await signIn(one, stack, `${stack.base}/app/one`);
  await signIn(two, stack, `${stack.base}/app/two`);
  t.match(await one.innerText('body'), /"path":\s*"\/app\/one"/, 'tab one reached its page');
  t.match(await two.innerText('body'), /"path":\s*"\/app\/two"/, 'tab two reached its page');
  const upstreamPaths = stack.upstream.requests.map((r) => r.url);
  t.same(upstreamPaths, ['/app/one', '/app/two']);
  for (const r of stack.upstream.requests) t.equal(decodeJwt(bearer(r.headers.authorization)).sub, 'alice');
  const cookies = await ctx.cookies();
  t.equal(cookies.filter((c) => /cdf-gw-flow/.test(c.name)).length, 0, 'both flow cookies cleared');
  t.ok(sessionCookies(cookies).length >= 1, 'a session');
});
