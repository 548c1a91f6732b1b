// RFC 9111 keeps shared caches off responses to requests with Authorization, not off responses to
// cookie-authenticated ones: the gateway marks those private when the upstream said nothing.
import t from 'tap';
import { startLoginStack } from '../fixtures/login.js';

t.test('session-authenticated responses are private unless the upstream says otherwise', async (t) => {
  const { base, browser, upstream, idp } = await startLoginStack(t);
  const bob = browser();
  await bob.login(base, 'bob');

  const viaSession = await bob.fetch(`${base}/app/report`, { headers: { accept: 'application/json' } });
  t.equal(viaSession.status, 200);
  t.equal(viaSession.headers.get('cache-control'), 'private', 'the upstream set none: private');

  upstream.respond = (_req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }); res.end('{}'); };
  const own = await bob.fetch(`${base}/app/report`, { headers: { accept: 'application/json' } });
  t.equal(own.headers.get('cache-control'), 'no-store', 'the upstream\'s own Cache-Control is kept');

  upstream.respond = (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); };
  const token = await idp.userToken('bob');
  const viaBearer = await fetch(`${base}/app/report`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(viaBearer.status, 200);
  t.equal(viaBearer.headers.get('cache-control'), null, 'Authorization requests are left to RFC 9111');

  const open = await fetch(`${base}/open/x`);
  t.equal(open.headers.get('cache-control'), null, 'public routes untouched');
});
