// Session refresh across replicas: two gateway processes behind one public URL sharing one
// redis-server, in front of a real oidc-provider that rotates refresh tokens (a reused one
// revokes the grant). The same cookie goes to both replicas at once, as a load balancer sends it.
import t from 'tap';
import { cookieHeader, cookiesFrom, eventually, JSON_ACCEPT, login, startReplicaStack } from '../fixtures/replica.js';

// Two gateway processes, an IdP and redis per stack, on a shared two-core machine: more than the default 120 s.
t.setTimeout(300_000);

t.test('one refresh per session across replicas: rotated refresh tokens never log the user out', async (t) => {
  const s = await startReplicaStack(t, { redis: true, refreshEveryRequest: true });
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
  const s = await startReplicaStack(t, { redis: false, refreshEveryRequest: true });
  const browser = await login(s, 'alice');
  const cookie = cookieHeader(browser.gatewayCookies());
  const burst = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    fetch(`${(i % 2 === 0 ? s.a : s.b).url}/app/x${i}`, { headers: { cookie, ...JSON_ACCEPT } })));
  t.ok(burst.some((r) => r.status === 401), `some requests answered 401 (${burst.map((r) => r.status).join(' ')})`);
  t.ok((s.idp.grants['refresh_token:error'] ?? 0) >= 1, 'the IdP refused the reused refresh token');
});
