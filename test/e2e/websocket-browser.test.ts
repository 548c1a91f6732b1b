// WebSockets with a browser session in real headless Chromium: log in through the gateway,
// open a WebSocket with the session cookie (the upstream gets the user's token), a same-site page
// on another origin is refused (403: cookies ride on its handshake), and an open socket is
// closed with 1008 when the session is logged out or expires.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { decodeJwt } from 'jose';
import { WebSocket } from 'ws';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../fixtures/chromium.js';
import { startLoginStack, type LoginStack } from '../fixtures/login.js';
import { startWsUpstream, type WsUpstream } from '../fixtures/ws-upstream.js';

let browser: Browser | undefined;

t.before(async () => {
  browser = await launchChromium(t);
});

let skewMs = 0;

async function stack(t: Test): Promise<{ stack: LoginStack; up: WsUpstream }> {
  const up = await startWsUpstream();
  t.teardown(() => up.close());
  const s = await startLoginStack(t, {
    upstreams: { live: { url: up.url, credentials: { type: 'user-token' } } },
    routes: [{ prefix: '/app/ws', upstream: 'live', login: 'demo', allow: [{ groups: ['readers'] }] }],
    gateway: { clock: () => Date.now() + skewMs },
  });
  return { stack: s, up };
}

async function signIn(t: Test, s: LoginStack): Promise<Page> {
  const ctx = await browser!.newContext();
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  await page.goto(`${s.base}/app/home`);
  await page.waitForURL((u) => u.origin === s.idp.issuer && u.pathname.startsWith('/interaction/'));
  await page.fill('input[name=login]', 'alice');
  await page.fill('input[name=password]', 'pw');
  await page.click('button[type=submit]');
  await page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' });
  await page.click('button[type=submit]');
  await page.waitForURL(`${s.base}/app/home`, { timeout: 90_000 }); // patient under a loaded CI
  return page;
}

/** Opens a WebSocket in the page (kept on window.sock) and echoes one message. */
async function openInPage(page: Page, url: string): Promise<string> {
  return page.evaluate((url) => new Promise<string>((resolve) => {
    const ws = new WebSocket(url);
    (window as unknown as { sock: WebSocket; closedWith: Promise<string> }).sock = ws;
    (window as unknown as { closedWith: Promise<string> }).closedWith = new Promise((r) => ws.addEventListener('close', (e) => r(`${e.code} ${e.reason}`)));
    ws.addEventListener('open', () => ws.send('ping'));
    ws.addEventListener('message', (e) => resolve(`message ${String(e.data)}`));
    ws.addEventListener('close', (e) => resolve(`closed ${e.code}`));
  }), url);
}
const closedWith = (page: Page): Promise<string> => page.evaluate(() => (window as unknown as { closedWith: Promise<string> }).closedWith);

t.test('a page opens a WebSocket with its session cookie', async (t) => {
  const { stack: s, up } = await stack(t);
  const page = await signIn(t, s);
  const wsUrl = `${s.base.replace('http', 'ws')}/app/ws/echo`;
  t.equal(await openInPage(page, wsUrl), 'message ping', 'echoed through the tunnel');
  const h = up.handshakes.at(-1)!;
  const token = /^Bearer (\S+)$/.exec(String(h.headers.authorization))?.[1];
  t.equal(decodeJwt(token!).sub, 'alice', 'the upstream got the user\'s token');
  t.equal(h.headers['x-auth-request-user'], 'alice');
  t.notMatch(String(h.headers.cookie ?? ''), /cdf-gw/, 'no gateway cookie upstream');
  t.equal(h.headers.origin, s.base);

  // Logout in another tab closes the open socket with 1008.
  const other = await page.context().newPage();
  await other.goto(`${s.base}/auth/logout`);
  t.equal(await closedWith(page), '1008 session ended');
  t.equal(await openInPage(page, wsUrl), 'closed 1006', 'a new one is refused after logout');
});

t.test('a same-site page on another origin cannot use the cookie (403)', async (t) => {
  const { stack: s, up } = await stack(t);
  const page = await signIn(t, s);
  // Same host, another port: same site, so Chromium sends the Lax cookie on the handshake.
  const evil = http.createServer((_q, r) => { r.writeHead(200, { 'content-type': 'text/html' }); r.end('<!doctype html><title>other</title>'); });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { evil.closeAllConnections(); evil.close(() => r()); }));
  const before = up.handshakes.length;
  await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
  t.equal(await openInPage(page, `${s.base.replace('http', 'ws')}/app/ws/echo`), 'closed 1006', 'the browser sees a failed handshake');
  t.equal(up.handshakes.length, before, 'nothing reached the upstream');
  const line = s.gw.entries().filter((e) => e.upgrade === 'websocket').at(-1);
  t.match(line, { status: 403, route: '/app/ws', decision: 'deny' }, 'refused as cross-site');

  // The same with a scripted client, where the status can be read.
  const cookie = (await page.context().cookies(s.base)).map((c) => `${c.name}=${c.value}`).join('; ');
  const status = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${s.base.replace('http', 'ws')}/app/ws/echo`, { headers: { cookie, origin: 'http://127.0.0.1:1' } });
    ws.once('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode!); });
    ws.once('open', () => { ws.terminate(); reject(new Error('opened')); });
    ws.once('error', () => undefined);
  });
  t.equal(status, 403);
  const noOrigin = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${s.base.replace('http', 'ws')}/app/ws/echo`, { headers: { cookie } });
    ws.once('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode!); });
    ws.once('open', () => { ws.terminate(); reject(new Error('opened')); });
    ws.once('error', () => undefined);
  });
  t.equal(noOrigin, 403, 'a session without any Origin is refused too');
});

t.test('an open socket closes with 1008 when its session expires', async (t) => {
  const { stack: s } = await stack(t);
  const page = await signIn(t, s);
  t.equal(await openInPage(page, `${s.base.replace('http', 'ws')}/app/ws/echo`), 'message ping');
  skewMs = 9 * 3600 * 1000; // past the 8 h session (and the idle timeout) on the gateway's clock
  t.teardown(() => { skewMs = 0; });
  t.equal(await closedWith(page), '1008 session expired');
});
