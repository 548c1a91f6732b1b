// Gateway-level behaviour that needs the whole server but not the real IdP: JWKS outage and
// readiness, request limits, malformed requests, and the log redaction scan.
import t, { type Test } from 'tap';
import { connect } from 'node:net';
import { startJwksServer } from './fixtures/jwks-server.js';
import { TestClock, claims, generateKey, mint } from './fixtures/tokens.js';
import { waitFor } from './fixtures/wait.js';
import { startUpstream } from './fixtures/upstream.js';
import { startGateway, secret, leaks } from './fixtures/gateway.js';

const AUD = 'https://cdf.test';

async function setup(t: Test, extra: Record<string, unknown> = {}, jwksDown = false, clock?: TestClock) {
  const key = await generateKey('RS256', 'k1');
  const jwks = await startJwksServer({ keys: [key.jwk] });
  if (jwksDown) await jwks.setMode('down');
  const up = await startUpstream();
  t.teardown(async () => { await up.close(); await jwks.close(); });
  const gw = await startGateway(t, {
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: [AUD] }],
    upstreams: { app: { url: up.url, credentials: { type: 'user-token' } } },
    routes: [{ prefix: '/', upstream: 'app', allow: [{}] }],
    ...extra,
  }, clock ? { clock: clock.fn } : {});
  const token = secret(await mint(claims(jwks.issuer, AUD, Date.now()), { key }));
  return { key, jwks, up, gw, token };
}

/** Raw HTTP/1.1 exchange: for requests fetch refuses to send. Returns the status line's code. */
function rawRequest(url: string, text: string): Promise<{ status: number; raw: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => sock.write(text)); // no FIN: the server answers then closes (Connection: close)
    let buf = '';
    sock.on('data', (d) => { buf += d.toString('latin1'); });
    sock.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0), raw: buf }));
    sock.on('error', reject);
  });
}

t.test('JWKS unreachable with no keys: 503 (fail closed) and not ready; recovers when it returns', async (t) => {
  const clock = new TestClock();
  const { jwks, up, gw, token } = await setup(t, { tokens: { jwksCooldownMs: 200 } }, true, clock);
  let res = await fetch(gw.url + '/x', { headers: { authorization: `Bearer ${token}` } });
  t.equal(res.status, 503);
  t.match(await res.json(), { error: { code: 503 } });
  t.equal(up.requests.length, 0, 'nothing reached the upstream');
  res = await fetch(gw.adminUrl + '/readyz');
  t.equal(res.status, 503);
  t.match(await res.json(), { status: 'not ready' });
  await jwks.setMode('normal');
  clock.advance(300); // past the cooldown
  res = await fetch(gw.url + '/x', { headers: { authorization: `Bearer ${token}` } });
  t.equal(res.status, 200);
  t.equal((await fetch(gw.adminUrl + '/readyz')).status, 200);
});

t.test('/readyz never fetches a missing key set more often than jwksCooldownMs allows', async (t) => {
  const clock = new TestClock();
  const { jwks, gw } = await setup(t, { tokens: { jwksCooldownMs: 60_000 } }, true, clock);
  const verifier = () => gw.gateway.state.verifier;
  // The start-up fetch failed (the IdP is down): that failure starts the cooldown.
  await waitFor(() => verifier().readiness().issuers[0]!.lastError !== null, 10_000);
  t.equal(jwks.requests.jwks, 1);
  for (let i = 0; i < 10; i++) t.equal((await fetch(gw.adminUrl + '/readyz')).status, 503, `probe ${i + 1}: not ready`);
  clock.advance(60_000); // the cooldown has passed: the next probe may try once
  t.equal((await fetch(gw.adminUrl + '/readyz')).status, 503);
  await waitFor(() => jwks.requests.jwks >= 2, 10_000);
  t.equal((await fetch(gw.adminUrl + '/readyz')).status, 503);
  t.equal(jwks.requests.jwks, 2, 'one fetch per cooldown, however many probes came');

  await jwks.setMode('normal');
  clock.advance(60_000);
  await waitFor(async () => (await fetch(gw.adminUrl + '/readyz')).status === 200, 10_000);
  t.equal(jwks.requests.jwks, 3, 'ready after the one fetch the cooldown allowed');
});

t.test('credentials: only one Authorization header, only the Bearer scheme, bounded size', async (t) => {
  const { gw, token, up } = await setup(t);
  const u = new URL(gw.url);
  let r = await rawRequest(gw.url, `GET /x HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
  t.equal(r.status, 400, 'two Authorization headers');
  t.match(r.raw, /"code":400/);
  let res = await fetch(gw.url + '/x', { headers: { authorization: 'Bearer' } });
  t.equal(res.status, 400, 'empty bearer value');
  res = await fetch(gw.url + '/x', { headers: { authorization: `Bearer ${'a'.repeat(13000)}` } });
  t.equal(res.status, 401, 'over maxTokenBytes');
  t.match(res.headers.get('www-authenticate'), /invalid_token/);
  r = await rawRequest(gw.url, `GET /x HTTP/1.1\r\nHost: ${u.host}\r\nX-Big: ${'b'.repeat(40000)}\r\nConnection: close\r\n\r\n`);
  t.equal(r.status, 431, 'headers over server.maxHeaderBytes');
  r = await rawRequest(gw.url, `GET /%zz HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
  t.equal(r.status, 400, 'malformed escape');
  t.match(r.raw, /\{"error":\{"code":400,"message":"[^"]+"\}\}/, 'in CDF shape');
  t.equal(up.requests.length, 0);
});

t.test('a target the router cannot decode (/%zz): 400 with a request id, an access line and the refusal counted', async (t) => {
  const { gw, token, up } = await setup(t);
  const host = new URL(gw.url).host;
  const counted = async () => {
    const text = await (await fetch(gw.adminUrl + '/metrics')).text();
    return Number(/cdf_gateway_refusals_total\{route="-",reason="ambiguous_path"\} (\d+)/.exec(text)?.[1] ?? 0);
  };
  const before = await counted();
  let r = await rawRequest(gw.url, `GET /a/%zz HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nX-Request-Id: bad-target-1\r\nConnection: close\r\n\r\n`);
  t.equal(r.status, 400);
  t.match(r.raw, /\r\nx-request-id: bad-target-1\r\n/i, 'the client\'s id comes back');
  r = await rawRequest(gw.url, `POST /%zz HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
  t.equal(r.status, 400);
  const made = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(r.raw)?.[1];
  t.match(made, /^[0-9a-f-]{36}$/, 'else one is made');
  t.equal(await counted(), before + 2, 'counted under the refusal reason');
  const lines = gw.entries().filter((e) => e.msg === 'request' && e.reason === 'ambiguous_path');
  t.same(lines.map((e) => [e.requestId, e.method, e.status, e.decision]), [['bad-target-1', 'GET', 400, 'invalid'], [made, 'POST', 400, 'invalid']], 'one access line each');
  t.equal(up.requests.length, 0);
});

t.test('server.maxBodyBytes: 413 by Content-Length and while streaming a chunked body', async (t) => {
  const { gw, token, up } = await setup(t, { server: { maxBodyBytes: 1024 } });
  let res = await fetch(gw.url + '/upload', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x'.repeat(2048) });
  t.equal(res.status, 413);
  t.same(await res.json(), { error: { code: 413, message: 'Payload too large' } });
  t.equal(up.requests.length, 0);
  const u = new URL(gw.url);
  const chunk = 'y'.repeat(800);
  const body = `320\r\n${chunk}\r\n320\r\n${chunk}\r\n0\r\n\r\n`;
  up.respond = (_req, res) => { res.writeHead(200); res.end('ok'); };
  const r = await rawRequest(gw.url, `POST /upload HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`);
  t.equal(r.status, 413, 'chunked body over the limit');
  res = await fetch(gw.url + '/upload', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'z'.repeat(1000) });
  t.equal(res.status, 200, 'a body under the limit passes');
});

t.test('logs: one access line per request and no secret in any line', async (t) => {
  const { gw, token } = await setup(t);
  const cookie = secret('cdf-gw-session=abcdefghijklmnop');
  const apiKey = secret('client-api-key-0123456789');
  await fetch(gw.url + '/a?code=supersecretcode123&state=xyzxyzxyz', { headers: { authorization: `Bearer ${token}`, cookie, 'api-key': apiKey } });
  await fetch(gw.url + '/b', { headers: { authorization: `Bearer ${token}x` } });
  await fetch(gw.url + `/c?access_token=${token}`);
  await fetch(gw.url + '/d', { headers: { authorization: `Basic ${Buffer.from('u:' + apiKey).toString('base64')}` } });
  await waitFor(() => gw.entries().filter((e) => e.msg === 'request').length >= 4, { what: 'four access lines' });
  const access = gw.entries().filter((e) => e.msg === 'request');
  t.same(access.map((e) => [e.path, e.status, e.decision]), [
    ['/a', 200, 'allow'], ['/b', 401, 'unauthenticated'], [null, 400, 'invalid'], ['/d', 401, 'unauthenticated'],
  ]);
  t.notMatch(gw.logs.join('\n'), /supersecretcode123|xyzxyzxyz/, 'query strings never logged');
  t.same(leaks(gw.logs), [], 'no line holds the token, cookie or key (the fixture checks every gateway this way at teardown)');
  t.ok(leaks([`{"msg":"x","h":"Bearer ${token}"}`, `{"k":"${apiKey}"}`]).length === 2, 'the scanner does find them');
  t.equal(leaks(['{"c":"v1.sQUV3A.iMYHp4Qq1kfkuPVR.k4TFM3MOb5zlT82i8yH2_n39V3qONxVeE_Z0AgtsKA.gA82W4u891XT9FudxGsMjA"}']).length, 1, 'and sealed cookie values');
});

t.test('matrix parameters cannot move a request to a more permissive route', async (t) => {
  const { gw, token, up } = await setup(t, {
    routes: [
      { prefix: '/', upstream: 'app', allow: [{}] },
      { prefix: '/admin', upstream: 'app', allow: [{ subjects: ['root'] }] },
    ],
  });
  const auth = { authorization: `Bearer ${token}` };
  t.equal((await fetch(gw.url + '/admin/secret', { headers: auth })).status, 403, 'user-1 may not use /admin');
  for (const p of ['/admin;x/secret', '/admin;/secret', '/admin;jsessionid=1']) {
    t.equal((await fetch(gw.url + p, { headers: auth })).status, 400, p);
  }
  t.equal((await fetch(gw.url + '/docs;v=1/page', { headers: auth })).status, 200, '`;` that changes nothing is fine');
  t.equal(up.requests.length, 1);
  t.equal(up.last().url, '/docs;v=1/page');
});
