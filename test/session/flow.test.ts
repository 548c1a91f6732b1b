// The login flow end to end with a fetch-based browser against the real IdP (oidc-provider).
import t from 'tap';
import { startLoginStack } from '../fixtures/login.js';

t.test('log in, reach a login route, the upstream sees the user token', async (t) => {
  const { base, browser, upstream } = await startLoginStack(t);
  const b = browser();
  const first = await b.fetch(`${base}/app/home?x=1`);
  t.equal(first.status, 302, 'a browser without a session is sent to log in');
  const { res, url } = await b.navigate(new URL(first.headers.get('location')!, base).href, 'alice');
  t.equal(url.href, `${base}/app/home?x=1`, 'back at the page it asked for');
  t.equal(res.status, 200);
  const seen = upstream.last();
  t.match(seen.headers.authorization, /^Bearer ey/);
  t.equal(seen.headers['x-auth-request-user'], 'alice');
  t.notOk(String(seen.headers.cookie ?? '').includes('cdf-gw'), 'no gateway cookie upstream');
});
