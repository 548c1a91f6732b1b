// Refusal pages in real headless Chromium: what a person sees when denied, not signed in, at a
// wrong address, or after a failed sign-in. Screenshots go to .tap/screens/ for a human look.
import { mkdirSync } from 'node:fs';
import t from 'tap';
import type { Test } from 'tap';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../fixtures/chromium.js';
import { startLoginStack, type LoginStack } from '../fixtures/login.js';

const SCREENS = '.tap/screens';
let browser: Browser | undefined;

t.before(async () => {
  mkdirSync(SCREENS, { recursive: true });
  browser = await launchChromium(t);
});

async function newPage(t: Test): Promise<{ page: Page; problems: string[] }> {
  const ctx = await browser!.newContext();
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  // A CSP violation (a blocked style or resource) or a script error on a page would show up here.
  const problems: string[] = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  return { page, problems };
}

async function signIn(page: Page, stack: LoginStack, user: string): Promise<void> {
  await page.goto(`${stack.base}/app/home`);
  await page.waitForURL((u) => u.origin === stack.idp.issuer && u.pathname.startsWith('/interaction/'));
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'pw');
  await page.click('button[type=submit]');
  await page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' });
  await page.click('button[type=submit]');
  await page.waitForURL(`${stack.base}/app/home`, { timeout: 90_000 }); // patient under a loaded CI
}

t.test('refusal pages as a person sees them', async (t) => {
  const stack = await startLoginStack(t, { routes: [{ prefix: '/writers', upstream: 'app', login: 'demo', allow: [{ groups: ['writers'] }] }] });

  await t.test('denied while signed in: the user, and links that work', async (t) => {
    const { page, problems } = await newPage(t);
    await signIn(page, stack, 'alice');
    const res = await page.goto(`${stack.base}/writers/report`);
    t.equal(res?.status(), 403);
    t.equal(res?.headers()['content-security-policy']?.startsWith("default-src 'none'; style-src 'unsafe-inline'"), true);
    await page.screenshot({ path: `${SCREENS}/403-denied.png`, fullPage: true });
    t.equal(await page.title(), '403 Access denied');
    t.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Access denied');
    t.match(await page.innerText('main'), /Signed in as alice\./);
    t.equal(await page.getByRole('link', { name: 'Sign in again' }).count(), 1);
    t.equal(await page.getByRole('link', { name: 'Switch user' }).count(), 1);
    // Keyboard users reach the links; the page's CSS applied (the inline style is allowed).
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    t.equal(bg, 'rgb(244, 245, 247)', 'inline style applied under the CSP');
    t.same(problems, [], 'no CSP violation or script error');

    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.origin === stack.idp.issuer || u.origin === stack.base);
    const after = await page.goto(`${stack.base}/auth/userinfo`);
    t.equal(after?.status(), 401, 'the Sign out link ended the session');
    await page.screenshot({ path: `${SCREENS}/401-userinfo.png`, fullPage: true });
    t.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'You are not signed in');
  });

  await t.test('not signed in on a bearer-only route: a page with a sign-in link', async (t) => {
    const { page, problems } = await newPage(t);
    const res = await page.goto(`${stack.base}/api/data`);
    t.equal(res?.status(), 401);
    await page.screenshot({ path: `${SCREENS}/401-api.png`, fullPage: true });
    t.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'You are not signed in');
    t.notMatch(await page.innerText('main'), /bearer/i, 'no API jargon for a person');
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.origin === stack.idp.issuer, { waitUntil: 'commit' });
    t.pass('the link starts the login at the IdP');
    t.same(problems, []);
  });

  await t.test('404 and a failed sign-in', async (t) => {
    const { page } = await newPage(t);
    t.equal((await page.goto(`${stack.base}/no/such/page`))?.status(), 404);
    await page.screenshot({ path: `${SCREENS}/404.png`, fullPage: true });
    t.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Page not found');

    t.equal((await page.goto(`${stack.base}/auth/callback?state=forged&code=x`))?.status(), 400);
    await page.screenshot({ path: `${SCREENS}/400-login-failed.png`, fullPage: true });
    t.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign-in failed');
  });
});
