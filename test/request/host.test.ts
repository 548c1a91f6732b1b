// Host validation (RFC 9112 §3.2): the pure judgement as a table, then the real gateway through
// a raw socket (fetch cannot send two Host headers or a malformed one), so what Node's own
// parser refuses first is seen as it really is: on the proxy, forward-auth and every one of the
// gateway's own endpoints (login, callback, logout, CDP's pair, back-channel logout, preflights).
import t from 'tap';
import { connect } from 'node:net';
import { checkHost, isValidHost } from '../../src/request/host.js';
import { startJwksServer } from '../fixtures/jwks-server.js';
import { startUpstream } from '../fixtures/upstream.js';
import { startGateway } from '../fixtures/gateway.js';
import { startLoginStack } from '../fixtures/login.js';

const VALID = [
  'example.com', 'example.com:443', 'a', 'localhost:8080', '127.0.0.1', '127.0.0.1:1', 'xn--bcher-kva.example',
  'under_score.example', 'A.EXAMPLE.', '[::1]', '[::1]:8080', '[2001:db8::1]:65535', 'host:0',
];
const INVALID = [
  '', 'evil.example/x', 'a b', '[::1', '::1', 'x, y', 'x,y', 'a;b', 'a@b', 'user@host', 'host:', 'host:65536',
  'host:80:80', 'host:-1', 'host: 80', 'host:8o', '[::1]x', '[::1]:', '[fe80::1%25eth0]', '[v1.fe]', '[127.0.0.1]',
  'a%2fb', 'a?b', 'a#b', 'a\\b', 'ex\tample', 'a'.repeat(254), 'évil.example', 'host:123456',
];

t.test('isValidHost', async (t) => {
  for (const h of VALID) t.equal(isValidHost(h), true, JSON.stringify(h));
  for (const h of INVALID) t.equal(isValidHost(h), false, JSON.stringify(h));
});

t.test('checkHost', async (t) => {
  t.same(checkHost(['Host', 'a.example'], '1.1'), { ok: true, host: 'a.example' });
  t.same(checkHost(['accept', '*/*', 'HOST', 'a.example:8080'], '1.1'), { ok: true, host: 'a.example:8080' }, 'any case');
  t.same(checkHost(['accept', '*/*'], '1.1'), { ok: false, problem: 'missing' });
  t.same(checkHost([], '1.0'), { ok: true, host: null }, 'HTTP/1.0 may leave it out');
  t.same(checkHost(['Host', 'a', 'host', 'a'], '1.1'), { ok: false, problem: 'duplicate' }, 'two, even equal');
  t.same(checkHost(['Host', 'a', 'Host', 'b'], '1.0'), { ok: false, problem: 'duplicate' });
  t.same(checkHost(['Host', 'evil.example/x'], '1.1'), { ok: false, problem: 'malformed' });
  t.same(checkHost(['Host', ''], '1.1'), { ok: false, problem: 'malformed' });
  t.same(checkHost(['X-Host', 'a b', 'Host', 'a'], '1.1'), { ok: true, host: 'a' }, 'other headers ending in host do not count');
});

/** One raw HTTP exchange; the server answers, then (Connection: close) closes. */
function raw(url: string, text: string): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => sock.write(text));
    let buf = '';
    sock.on('data', (d) => { buf += d.toString('latin1'); });
    sock.on('close', () => resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(buf)?.[1] ?? 0), text: buf }));
    sock.on('error', reject);
  });
}

t.test('through the gateway: 400 in CDF\'s shape, nothing reaches the upstream', async (t) => {
  const jwks = await startJwksServer();
  const up = await startUpstream();
  t.teardown(async () => { await up.close(); await jwks.close(); });
  const gw = await startGateway(t, {
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: ['https://cdf.test'] }],
    upstreams: { app: { url: up.url, credentials: { type: 'none' } } },
    routes: [{ prefix: '/', upstream: 'app', public: true }],
  });
  const host = new URL(gw.url).host;
  const req = (headers: string, version = '1.1') => raw(gw.url, `GET /x HTTP/${version}\r\n${headers}Connection: close\r\n\r\n`);

  const ok = await req(`Host: ${host}\r\n`);
  t.equal(ok.status, 200, 'a valid Host');
  t.equal(up.last().headers['x-forwarded-host'], host);
  t.equal((await req('', '1.0')).status, 200, 'HTTP/1.0 without Host');

  const cases: Array<[string, string]> = [
    ['no Host (HTTP/1.1)', ''],
    ['two Host headers', `Host: ${host}\r\nHost: evil.example\r\n`],
    ['two equal Host headers', `Host: ${host}\r\nHost: ${host}\r\n`],
    ['a path in Host', 'Host: evil.example/x\r\n'],
    ['a space in Host', 'Host: a b\r\n'],
    ['an unclosed IPv6 literal', 'Host: [::1\r\n'],
    ['a list in Host', 'Host: x, y\r\n'],
    ['userinfo in Host', 'Host: user@evil.example\r\n'],
    ['a bad port', 'Host: a.example:99999\r\n'],
    ['an empty Host', 'Host: \r\n'],
  ];
  const before = up.requests.length;
  for (const [name, headers] of cases) {
    const r = await req(headers);
    t.equal(r.status, 400, name);
    const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    t.match(r.text, /\r\ncontent-type: application\/json/i, `${name}: JSON`);
    t.same(JSON.parse(body), { error: { code: 400, message: 'Bad request: invalid Host header' } }, `${name}: CDF's shape`);
  }
  t.equal(up.requests.length, before, 'none reached the upstream');
  const lines = gw.entries().filter((e) => e.msg === 'request' && e.status === 400);
  t.equal(lines.length, cases.length, 'one access line each');
  for (const l of lines) t.match(l, { reason: 'bad_host', decision: 'invalid', requestId: /\S/ });

  for (const path of ['/login/token', '/auth/verify']) {
    const r = await raw(gw.url, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\nConnection: close\r\n\r\n`);
    t.equal(r.status, 400, `${path}: the same decision`);
  }
});

t.test('no Host (HTTP/1.1): 400 bad_host in CDF\'s shape on every path, with an id, an access line and a count', async (t) => {
  const jwks = await startJwksServer();
  const up = await startUpstream();
  t.teardown(async () => { await up.close(); await jwks.close(); });
  const gw = await startGateway(t, {
    server: { trustedProxies: ['127.0.0.1'] },
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: ['https://cdf.test'] }],
    upstreams: { app: { url: up.url, credentials: { type: 'none' } } },
    routes: [{ prefix: '/app', upstream: 'app', public: true }],
  });
  const targets = [
    ['GET', '/app/x'], ['POST', '/app/x'], ['GET', '/nowhere'], ['GET', '/auth/verify'], ['GET', '/login/token'],
    ['GET', '/login/url'], ['GET', '/auth/unknown'], ['PROPFIND', '/app/x'],
  ] as const;
  for (const [method, path] of targets) {
    const id = `nohost-${method}-${path}`;
    const r = await raw(gw.url, `${method} ${path} HTTP/1.1\r\nX-Request-Id: ${id}\r\nX-Original-Method: GET\r\nX-Original-URI: /app/x\r\nConnection: close\r\n\r\n`);
    t.equal(r.status, 400, `${method} ${path}`);
    t.match(r.text, new RegExp(`\r\nx-request-id: ${id}\r\n`, 'i'), `${method} ${path}: X-Request-Id`);
    t.match(r.text, /\r\ncontent-type: application\/json/i);
    t.same(JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)), { error: { code: 400, message: 'Bad request: invalid Host header' } });
    const line = gw.entries().find((e) => e.msg === 'request' && e.requestId === id);
    t.match(line, { status: 400, reason: 'bad_host', method }, `${method} ${path}: access line`);
  }
  t.equal(up.requests.length, 0, 'nothing reached the upstream');
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.match(metrics, new RegExp(`cdf_gateway_refusals_total\\{route="-",reason="bad_host"\\} ${targets.length}\\n`), 'counted as bad_host');

  // HTTP/1.0 predates Host: still served, by the proxy and by forward-auth.
  const old = await raw(gw.url, 'GET /app/x HTTP/1.0\r\n\r\n');
  t.equal(old.status, 200, 'HTTP/1.0 without Host: proxied');
  t.equal(up.requests.length, 1);
  const verify = await raw(gw.url, 'GET /auth/verify HTTP/1.0\r\nX-Original-Method: GET\r\nX-Original-URI: /app/x\r\n\r\n');
  t.equal(verify.status, 200, 'HTTP/1.0 without Host: forward-auth decides (public route)');

  // A WebSocket upgrade without Host is refused the same way, never tunnelled.
  const ws = await raw(gw.url, 'GET /app/socket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  t.equal(ws.status, 400, 'upgrade without Host');
  t.same(JSON.parse(ws.text.slice(ws.text.indexOf('\r\n\r\n') + 4)), { error: { code: 400, message: 'Bad request: invalid Host header' } });
  t.match(gw.entries().filter((e) => e.msg === 'request').pop(), { upgrade: 'websocket', status: 400, reason: 'bad_host' });
  t.equal(up.requests.length, 1, 'the upgrade reached no upstream');
});

t.test('two Host headers or a malformed one: the same 400 bad_host on the gateway\'s own endpoints, before any of them acts', async (t) => {
  const APP = 'https://app.example';
  const { base, browser, gw, upstream } = await startLoginStack(t, {
    server: { trustedProxies: ['127.0.0.1'] },
    routes: [{ prefix: '/cors', upstream: 'app', public: true, cors: { origins: [APP] } }],
  });
  const host = new URL(base).host;
  const signedIn = browser();
  await signedIn.login(base, 'alice');
  const session = signedIn.jar.header(new URL(base));
  // A login stopped before the callback: the IdP's answer is delivered by hand below.
  const pending = browser();
  const { url: callback } = await pending.navigate(`${base}/auth/login?project=demo&redirect=%2Fapp%2Fhome`, 'bob', (u) => u.pathname === '/auth/callback');
  const flow = pending.jar.header(callback);
  const form = 'logout_token=x.y.z';

  // [method, target, headers, body]: each would act (redirect, answer, revoke, log in) with one good Host.
  const endpoints: Array<[string, string, string, string]> = [
    ['GET', '/auth/login?project=demo&redirect=%2Fapp%2Fhome', '', ''],
    ['GET', `${callback.pathname}${callback.search}`, `Cookie: ${flow}\r\n`, ''],
    ['GET', '/auth/userinfo', `Cookie: ${session}\r\nAccept: application/json\r\n`, ''],
    ['GET', '/auth/logout?redirect=%2Fbye', `Cookie: ${session}\r\n`, ''],
    ['POST', '/auth/logout?redirect=%2Fbye', `Cookie: ${session}\r\nOrigin: ${base}\r\nContent-Length: 0\r\n`, ''],
    ['GET', '/login/url?project=demo&redirectUrl=%2Fapp%2Fhome', '', ''],
    ['POST', '/auth/backchannel-logout', `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n`, form],
    ['OPTIONS', '/cors/x', `Origin: ${APP}\r\nAccess-Control-Request-Method: GET\r\n`, ''],
    ['OPTIONS', '/auth/verify', `X-Forwarded-Method: OPTIONS\r\nX-Forwarded-Uri: /cors/x\r\nOrigin: ${APP}\r\nAccess-Control-Request-Method: GET\r\n`, ''],
    ['PROPFIND', '/app/x', '', ''],
  ];
  const hosts: Array<[string, string]> = [
    ['two Host headers', `Host: ${host}\r\nHost: evil.example\r\n`],
    ['a path in Host', 'Host: evil.example/x\r\n'],
  ];
  const send = (method: string, target: string, hostLines: string, headers: string, body: string, id: string) =>
    raw(base, `${method} ${target} HTTP/1.1\r\n${hostLines}${headers}X-Request-Id: ${id}\r\nConnection: close\r\n\r\n${body}`);

  const proxied = upstream.requests.length;
  let n = 0;
  for (const [problem, hostLines] of hosts) {
    for (const [method, target, headers, body] of endpoints) {
      const name = `${problem}: ${method} ${target.split('?', 1)[0]}`;
      const id = `badhost-${++n}`;
      const r = await send(method, target, hostLines, headers, body, id);
      t.equal(r.status, 400, name);
      t.match(r.text, new RegExp(`\r\nx-request-id: ${id}\r\n`, 'i'), `${name}: X-Request-Id`);
      t.notMatch(r.text, /\r\n(location|set-cookie|access-control-allow-origin):/i, `${name}: no redirect, cookie or CORS grant`);
      t.equal(r.text.slice(r.text.indexOf('\r\n\r\n') + 4), JSON.stringify({ error: { code: 400, message: 'Bad request: invalid Host header' } }), `${name}: CDF's shape`);
      t.match(gw.entries().find((e) => e.msg === 'request' && e.requestId === id), { status: 400, decision: 'invalid', reason: 'bad_host', method }, `${name}: access line`);
    }
  }
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  // Forward-auth counts under its own route, as its other refusals.
  t.match(metrics, new RegExp(`cdf_gateway_refusals_total\\{route="-",reason="bad_host"\\} ${n - hosts.length}\\n`), 'each counted as bad_host');
  t.match(metrics, new RegExp(`cdf_gateway_refusals_total\\{route="/auth/verify",reason="bad_host"\\} ${hosts.length}\\n`));
  t.equal(upstream.requests.length, proxied, 'nothing reached the upstream');

  // None of them acted: the session is alive, and the login they refused completes with one Host.
  const info = await send('GET', '/auth/userinfo', `Host: ${host}\r\n`, `Cookie: ${session}\r\nAccept: application/json\r\n`, '', 'good-1');
  t.equal(info.status, 200, 'the session was not logged out');
  const done = await send('GET', `${callback.pathname}${callback.search}`, `Host: ${host}\r\n`, `Cookie: ${flow}\r\n`, '', 'good-2');
  t.equal(done.status, 302, 'the callback refused above still logs in');
  t.match(done.text, /\r\nlocation: \/app\/home\r\n/i);
  const preflight = await send('OPTIONS', '/cors/x', `Host: ${host}\r\n`, `Origin: ${APP}\r\nAccess-Control-Request-Method: GET\r\n`, '', 'good-3');
  t.equal(preflight.status, 204, 'a preflight with one good Host is answered');

  // The proxy and forward-auth decide as before: refused by decide(), under their own route.
  for (const [target, route] of [['/auth/verify', '/auth/verify'], ['/login/token', '/login/token']] as const) {
    const id = `decided-${route}`;
    const r = await send('GET', target, `Host: ${host}\r\nHost: evil.example\r\n`, '', '', id);
    t.equal(r.status, 400, `${target}`);
    t.match(gw.entries().find((e) => e.msg === 'request' && e.requestId === id), { status: 400, reason: 'bad_host', route }, `${target}: its access line`);
  }
});
