// CORS in real headless Chromium: a page on another origin (http://localhost:<port>) calls the
// gateway (http://127.0.0.1:<port>) with fetch and a bearer token, so Chromium sends a real
// preflight first; with and without credentials; from a listed and an unlisted origin.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../fixtures/chromium.js';
import { startIdp, RESOURCE } from '../fixtures/idp.js';
import { startUpstream } from '../fixtures/upstream.js';
import { secret, startGateway } from '../fixtures/gateway.js';

let browser: Browser | undefined;

t.before(async () => {
  browser = await launchChromium(t);
});

/** A static page server: the app's own origin. */
async function appOrigin(t: Test): Promise<number> {
  const server = http.createServer((_q, r) => { r.writeHead(200, { 'content-type': 'text/html' }); r.end('<!doctype html><title>app</title><p>app</p>'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return (server.address() as AddressInfo).port;
}

interface Outcome { ok: boolean; status?: number; body?: unknown; error?: string }

/** fetch() from inside the page; a CORS failure is a TypeError there. */
function call(page: Page, url: string, init: { token?: string; credentials?: RequestCredentials; method?: string }): Promise<Outcome> {
  return page.evaluate(async ({ url, init }) => {
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (init.token) headers.authorization = `Bearer ${init.token}`;
      const res = await fetch(url, { method: init.method ?? 'POST', headers, body: '{"limit":1}', credentials: init.credentials ?? 'same-origin' });
      return { ok: true, status: res.status, body: await res.json() };
    } catch (e) {
      return { ok: false, error: String(e) };
    }
  }, { url, init });
}

t.test('a page on another origin calls the gateway', async (t) => {
  const idp = await startIdp();
  t.teardown(() => idp.close());
  const up = await startUpstream();
  t.teardown(() => up.close());
  const bob = secret(await idp.userToken('bob'));
  const appPort = await appOrigin(t);
  const evilPort = await appOrigin(t);
  const app = `http://localhost:${appPort}`;
  const gw = await startGateway(t, {
    issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, audiences: [RESOURCE] }],
    upstreams: { cdf: { url: up.url, credentials: { type: 'user-token' } } },
    routes: [
      { prefix: '/api', upstream: 'cdf', allow: [{ groups: ['writers'] }], cors: { origins: [app] } },
      { prefix: '/cred', upstream: 'cdf', allow: [{ groups: ['writers'] }], cors: { origins: [app], credentials: true } },
      { prefix: '/none', upstream: 'cdf', allow: [{ groups: ['writers'] }] },
    ],
  });
  const ctx = await browser!.newContext();
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  await page.goto(`${app}/`);

  const before = up.requests.length;
  const ok = await call(page, `${gw.url}/api/assets/list`, { token: bob });
  t.same(ok, { ok: true, status: 200, body: { items: ok.body && (ok.body as { items: unknown }).items, path: '/api/assets/list' } }, 'preflight then POST, response readable');
  t.equal(up.requests.length, before + 1, 'only the POST reached the upstream, not the preflight');
  t.equal(up.last().method, 'POST');
  t.match(up.last().headers.authorization, /^Bearer /);
  const preflights = gw.entries().filter((e) => e.decision === 'preflight');
  t.equal(preflights.length, 1, 'Chromium sent one preflight, answered by the gateway');

  const noToken = await call(page, `${gw.url}/api/assets/list`, {});
  t.same(noToken.status, 401, 'a 401 the page can read (CORS headers on gateway errors)');

  const creds = await call(page, `${gw.url}/api/assets/list`, { token: bob, credentials: 'include' });
  t.equal(creds.ok, false, 'credentials: include on a route without cors.credentials is blocked by the browser');
  t.match(creds.error, /TypeError/);
  const credsOk = await call(page, `${gw.url}/cred/assets/list`, { token: bob, credentials: 'include' });
  t.equal(credsOk.status, 200, 'allowed where cors.credentials is true');

  const noCors = await call(page, `${gw.url}/none/assets/list`, { token: bob });
  t.equal(noCors.ok, false, 'a route without cors: the preflight needs a token it never carries');

  const evil = await ctx.newPage();
  await evil.goto(`http://localhost:${evilPort}/`);
  const n = up.requests.length;
  const refused = await call(evil, `${gw.url}/api/assets/list`, { token: bob });
  t.equal(refused.ok, false, 'an unlisted origin is refused at the preflight');
  t.equal(up.requests.length, n, 'and nothing reached the upstream');
});
