// Logout across replicas: two gateway processes behind one public URL sharing one redis-server
// (cookie store), in front of a real oidc-provider that sends back-channel logouts to one of them.
import t from 'tap';
import { cookieHeader, eventually, JSON_ACCEPT, login, startReplicaStack } from '../fixtures/replica.js';

// Two gateway processes, an IdP and redis per stack, on a shared two-core machine: more than the default 120 s.
t.setTimeout(300_000);

t.test('back-channel logout and logout at one replica end the session on the other (cookie store)', async (t) => {
  const s = await startReplicaStack(t, { redis: true, refreshEveryRequest: false });
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
  // Log lines reach the pipe asynchronously (buffered stdout): wait for it.
  t.ok(await eventually(async () => s.b.entries().some((e) => e.msg === 'back-channel logout' && e.by === 'sid')), 'b logged the logout, by sid');

  // Bob's session (another IdP session) lives on, on both; his logout at a reaches b.
  t.equal((await fetch(`${s.b.url}/app/r`, { headers: { cookie: bobCookie, ...JSON_ACCEPT } })).status, 200, 'bob\'s session lives on');
  const out = await bob.fetch(`${s.a.url}/auth/logout`, { method: 'POST', headers: { origin: s.base } });
  t.equal(out.status, 303);
  t.ok(await eventually(async () => (await fetch(`${s.b.url}/app/r`, { headers: { cookie: bobCookie, ...JSON_ACCEPT } })).status === 401),
    'b refuses bob\'s logged-out cookie');
  t.equal((await fetch(`${s.a.url}/app/r`, { headers: { cookie: bobCookie, ...JSON_ACCEPT } })).status, 401, 'and so does a');
});
