// Host validation (RFC 9112 §3.2): the pure judgement as a table, then the real gateway through
// a raw socket (fetch cannot send two Host headers or a malformed one), so what Node's own
// parser refuses first is seen as it really is.
import t from 'tap';
import { connect } from 'node:net';
import { checkHost, isValidHost } from '../../src/request/host.js';
import { startJwksServer } from '../fixtures/jwks-server.js';
import { startUpstream } from '../fixtures/upstream.js';
import { startGateway } from '../fixtures/gateway.js';

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
