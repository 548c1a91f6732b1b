// Two gateway processes behind one public URL, sharing one redis-server, in front of a real
// oidc-provider that rotates refresh tokens (a reused one revokes the grant) and sends
// back-channel logouts. The browser's cookie goes to either replica, as a load balancer would
// send it.
import t, { type Test } from 'tap';
import { startIdp, type Idp } from '../fixtures/idp.js';
import { COOKIE_SECRET, FakeBrowser, freePort, GATEWAY_CLIENT_ID, RESOURCE } from '../fixtures/login.js';
import { secret } from '../fixtures/gateway.js';
import { GATEWAY_SECRET } from '../fixtures/idp.js';
import { startRedis } from '../fixtures/redis.js';
import { startReplica, type Replica } from '../fixtures/replica.js';
import { startUpstream } from '../fixtures/upstream.js';

const JSON_ACCEPT = { accept: 'application/json' };

interface Stack { idp: Idp; a: Replica; b: Replica; base: string }

/**
 * Replicas a and b, both configured with a's URL as publicUrl (one site); the IdP's back-channel
 * logout goes to b. `refreshBeforeSec: 3600` with one-hour tokens: every request refreshes.
 */
async function stack(t: Test, opts: { redis: boolean; refreshEveryRequest: boolean }): Promise<Stack> {
  const [portA, portB] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${portA}`;
  const idp = await startIdp({
    issuerHost: 'localhost', redirectUris: [`${base}/auth/callback`], postLogoutRedirectUris: [`${base}/`],
    backchannelLogoutUri: `http://127.0.0.1:${portB}/auth/backchannel-logout`, rotateRefreshTokens: true,
  });
  t.teardown(() => idp.close());
  const upstream = await startUpstream();
  t.teardown(() => upstream.close());
  const redis = opts.redis ? await startRedis(t) : null;
  const config = (port: number) => ({
    server: { host: '127.0.0.1', port, publicUrl: base },
    issuers: [{ issuer: idp.issuer, audiences: [RESOURCE] }],
    // Six processes start on two shared cores: a first JWKS fetch may need more than the 1 s default.
    tokens: { jwksTimeoutMs: 10_000 },
    upstreams: { app: { url: upstream.url, credentials: { type: 'user-token' } } },
    login: {
      cookieSecret: COOKIE_SECRET,
      ...(opts.refreshEveryRequest ? { refreshBeforeSec: 3600 } : {}),
      projects: {
        demo: {
          issuer: idp.issuer, clientId: GATEWAY_CLIENT_ID, clientSecret: secret(GATEWAY_SECRET),
          scopes: ['openid', 'profile', 'email', 'offline_access', 'user_impersonation'], resource: RESOURCE,
          authorizationParams: { prompt: 'consent' },
        },
      },
    },
    routes: [{ prefix: '/app', upstream: 'app', login: 'demo', allow: [{ groups: ['readers'] }] }],
    ...(redis === null ? {} : { redis: { url: redis.url, keyPrefix: 'gw:' } }),
  });
  const a = await startReplica(t, 'a', config(portA));
  const b = await startReplica(t, 'b', config(portB));
  return { idp, a, b, base };
}

const cookieHeader = (jar: Record<string, string>): string => Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');

/** The session cookie lines of a response, as a Cookie header (chunks included). */
function cookiesFrom(res: Response): string {
  return res.headers.getSetCookie().map((c) => c.split(';', 1)[0]!).filter((c) => !c.endsWith('=')).join('; ');
}

async function login(s: Stack, user: string): Promise<FakeBrowser> {
  const b = new FakeBrowser();
  const { res } = await b.login(s.base, user, '/app/home');
  if (res.status !== 200) throw new Error(`login as ${user} answered ${res.status}: ${s.a.logs.filter((l) => /"level":[45]0/.test(l)).join('\n')}`);
  return b;
}

/** Polls until `check` holds (pub/sub delivery to the other process takes a moment); false after 5 s. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

t.test('one refresh per session across replicas: rotated refresh tokens never log the user out', async (t) => {
  const s = await stack(t, { redis: true, refreshEveryRequest: true });
  const browser = await login(s, 'alice');
  const cookie = cookieHeader(browser.gatewayCookies());
  const before = { ...s.idp.grants };

  // The same cookie, at once, on both replicas: each sees the token due for refresh.
  const burst = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    fetch(`${(i % 2 === 0 ? s.a : s.b).url}/app/x${i}`, { headers: { cookie, ...JSON_ACCEPT } })));
  t.same(burst.map((r) => r.status), Array(10).fill(200), 'every request of the burst answered 200');
  t.equal((s.idp.grants.refresh_token ?? 0) - (before.refresh_token ?? 0), 1, 'the IdP saw one refresh');
  t.equal(s.idp.grants['refresh_token:error'] ?? 0, 0, 'and no refused one');

  // Both replicas' new cookies carry on (the new refresh token works, the grant was not revoked).
  const fromA = cookiesFrom(burst[0]!);
  const fromB = cookiesFrom(burst[1]!);
  t.ok(fromA !== '' && fromB !== '', 'both replicas wrote a new cookie');
  t.equal((await fetch(`${s.b.url}/app/next`, { headers: { cookie: fromA, ...JSON_ACCEPT } })).status, 200, 'a\'s cookie on b');
  t.equal((await fetch(`${s.a.url}/app/next`, { headers: { cookie: fromB, ...JSON_ACCEPT } })).status, 200, 'b\'s cookie on a');
  t.equal(s.idp.grants['refresh_token:error'] ?? 0, 0, 'still no refused refresh');
});

t.test('without redis the same burst logs the user out (what the lock prevents)', async (t) => {
  const s = await stack(t, { redis: false, refreshEveryRequest: true });
  const browser = await login(s, 'alice');
  const cookie = cookieHeader(browser.gatewayCookies());
  const burst = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    fetch(`${(i % 2 === 0 ? s.a : s.b).url}/app/x${i}`, { headers: { cookie, ...JSON_ACCEPT } })));
  t.ok(burst.some((r) => r.status === 401), `some requests answered 401 (${burst.map((r) => r.status).join(' ')})`);
  t.ok((s.idp.grants['refresh_token:error'] ?? 0) >= 1, 'the IdP refused the reused refresh token');
});

t.test('logout on one replica ends the session on the other (cookie store)', async (t) => {
  const s = await stack(t, { redis: true, refreshEveryRequest: false });
  const browser = await login(s, 'alice');
  const cookie = cookieHeader(browser.gatewayCookies());
  t.equal((await fetch(`${s.b.url}/app/r`, { headers: { cookie, ...JSON_ACCEPT } })).status, 200, 'the cookie works on b');
  const out = await browser.fetch(`${s.a.url}/auth/logout`, { method: 'POST', headers: { origin: s.base } });
  t.equal(out.status, 303);
  t.ok(await eventually(async () => (await fetch(`${s.b.url}/app/r`, { headers: { cookie, ...JSON_ACCEPT } })).status === 401),
    'b refuses the logged-out cookie');
  t.equal((await fetch(`${s.a.url}/app/r`, { headers: { cookie, ...JSON_ACCEPT } })).status, 401, 'and so does a');
});

t.test('back-channel logout at one replica ends the IdP session\'s gateway sessions on every replica', async (t) => {
  const s = await stack(t, { redis: true, refreshEveryRequest: false });
  const alice = await login(s, 'alice');
  const bob = await login(s, 'bob');
  const aliceCookie = cookieHeader(alice.gatewayCookies());
  const bobCookie = cookieHeader(bob.gatewayCookies());
  t.equal((await fetch(`${s.a.url}/app/r`, { headers: { cookie: aliceCookie, ...JSON_ACCEPT } })).status, 200);

  // Alice logs out at the IdP; the IdP tells replica b (its backchannel_logout_uri).
  await s.idp.endSession(alice.jar);
  t.same(s.idp.backchannel, [{ ok: true }], 'b answered the logout token with 200');
  t.ok(await eventually(async () => (await fetch(`${s.a.url}/app/r`, { headers: { cookie: aliceCookie, ...JSON_ACCEPT } })).status === 401),
    'replica a refuses alice\'s session');
  t.equal((await fetch(`${s.b.url}/app/r`, { headers: { cookie: aliceCookie, ...JSON_ACCEPT } })).status, 401, 'so does b');
  t.equal((await fetch(`${s.a.url}/app/r`, { headers: { cookie: bobCookie, ...JSON_ACCEPT } })).status, 200, 'bob\'s session (another IdP session) lives on');
  t.ok(s.b.entries().some((e) => e.msg === 'back-channel logout' && e.by === 'sid'), 'b logged the logout, by sid');

});
