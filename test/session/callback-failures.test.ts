// The IdP unreachable or failing during /auth/callback is the IdP's fault, not the user's:
// 502 (504 on timeout) in CDF's shape, or the error destination with error=idp_unavailable,
// never 400; so is an answer that is no token response (`{}`, JSON that does not parse). A
// refusal from the IdP (a forged code) stays a failed login (400).
import t from 'tap';
import { closedPort } from '../fixtures/upstream.js';
import { startLoginStack, type FakeBrowser } from '../fixtures/login.js';

async function toCallback(b: FakeBrowser, base: string, query = 'project=demo&redirect=/app/x'): Promise<URL> {
  const { url } = await b.navigate(`${base}/auth/login?${query}`, 'alice', (u) => u.pathname === '/auth/callback');
  if (url.pathname !== '/auth/callback') throw new Error(`no callback reached: ${url.href}`);
  return url;
}

type Fault = 'none' | 'refused' | 'timeout' | 'empty' | 'garbled';

t.test('callback with the IdP unreachable, failing or timing out', async (t) => {
  // The gateway's fetch (IdP and JWKS calls) passes through here: the token request can be sent
  // to a port nothing listens on (a real ECONNREFUSED), or fail as an expired AbortSignal.timeout
  // makes fetch fail (a TimeoutError DOMException; waiting out the real 10 s bound adds nothing).
  // A stand-in token endpoint answers 200 with a body that is no token response: `{}` (no
  // access_token), or JSON that does not parse.
  let fault: Fault = 'none';
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const fetchVia: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (fault !== 'none' && new URL(url).pathname === '/token') {
      if (fault === 'timeout') throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
      if (fault === 'empty') return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
      if (fault === 'garbled') return new Response('{"access_token":', { status: 200, headers: { 'content-type': 'application/json' } });
      return fetch(dead + new URL(url).pathname, init);
    }
    return fetch(input, init);
  };
  const { base, browser, idp, upstream, gw } = await startLoginStack(t, { gateway: { fetch: fetchVia } });
  const callback = async (f: Fault | 'down', query?: string) => {
    const b = browser();
    const cb = await toCallback(b, base, query);
    fault = f === 'down' ? 'none' : f;
    if (f === 'down') idp.setDown(true);
    try {
      return { res: await b.fetch(cb, { headers: { accept: 'application/json' } }), b };
    } finally {
      fault = 'none';
      idp.setDown(false);
    }
  };
  const before = upstream.requests.length;

  for (const [f, status, message] of [
    ['down', 502, 'Bad gateway: the identity provider failed'],
    ['refused', 502, 'Bad gateway: the identity provider failed'],
    ['timeout', 504, 'Gateway timeout: the identity provider did not answer'],
    ['empty', 502, 'Bad gateway: the identity provider failed'],
    ['garbled', 502, 'Bad gateway: the identity provider failed'],
  ] as const) {
    await t.test(`token endpoint ${f}: ${status}`, async (t) => {
      const { res, b } = await callback(f);
      t.equal(res.status, status);
      t.same(await res.json(), { error: { code: status, message } });
      t.same(Object.keys(b.gatewayCookies()), [], 'no session; the flow cookie is cleared');
      const line = gw.entries().filter((e) => e.msg === 'request' && e.route === '/auth/callback').at(-1);
      t.match(line, { status, reason: 'idp_unavailable' }, 'the access line names the reason');
    });
    await t.test(`token endpoint ${f}, with an error destination: error=idp_unavailable`, async (t) => {
      const { res } = await callback(f, 'project=demo&redirect=/app/x&errorRedirect=/oops');
      t.equal(res.status, 302);
      t.equal(res.headers.get('location'), '/oops?error=idp_unavailable');
    });
  }

  await t.test('a refusal is still a failed login (400)', async (t) => {
    const b = browser();
    const cb = await toCallback(b, base);
    cb.searchParams.set('code', 'forged');
    const res = await b.fetch(cb, { headers: { accept: 'application/json' } });
    t.equal(res.status, 400);
  });

  await t.test('afterwards, a login works again', async (t) => {
    const { res } = await browser().login(base, 'alice', '/app/home');
    t.equal(res.status, 200);
  });
  t.equal(upstream.requests.length, before + 1, 'only the last login reached the upstream');
});
