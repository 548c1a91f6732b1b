// Request ids, the access line (reason, client ip), error causes in logs, the start-up and
// shutdown lines, and the request metrics, through a real gateway on loopback.
import t, { type Test } from 'tap';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startJwksServer } from '../fixtures/jwks-server.js';
import { TestClock, claims, generateKey, mint } from '../fixtures/tokens.js';
import { startUpstream } from '../fixtures/upstream.js';
import { startGateway, secret } from '../fixtures/gateway.js';
import { contextFollowsAwaits, hasAsyncContextFrame } from '../../src/request/context.js';

const AUD = 'https://cdf.test';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function setup(t: Test, opts: { jwksMode?: 'refused'; upstreams?: Record<string, unknown>; routes?: unknown[]; clock?: TestClock; requestContext?: 'auto' | 'always' } = {}) {
  const key = await generateKey('RS256', 'k1');
  const jwks = await startJwksServer({ keys: [key.jwk] });
  if (opts.jwksMode) await jwks.setMode(opts.jwksMode);
  const up = await startUpstream();
  t.teardown(async () => { await up.close(); await jwks.close(); });
  const gw = await startGateway(t, {
    log: { level: 'info', ...(opts.requestContext ? { requestContext: opts.requestContext } : {}) },
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: [AUD] }],
    upstreams: { app: { url: up.url, credentials: { type: 'user-token' } }, ...opts.upstreams },
    routes: opts.routes ?? [{ prefix: '/', upstream: 'app', allow: [{}] }],
  }, opts.clock ? { clock: opts.clock.fn } : {});
  const token = secret(await mint(claims(jwks.issuer, AUD, Date.now()), { key }));
  const expired = secret(await mint(claims(jwks.issuer, AUD, Date.now() - 7_200_000), { key }));
  return { jwks, up, gw, token, expired };
}

const accessLines = (entries: Array<Record<string, unknown>>) => entries.filter((e) => e.msg === 'request');

async function metricsText(adminUrl: string): Promise<string> {
  return (await fetch(`${adminUrl}/metrics`)).text();
}

t.test('request ids: kept when valid, made otherwise; upstream, client and access line agree', async (t) => {
  const { up, gw, token } = await setup(t);
  const auth = { authorization: `Bearer ${token}` };

  let res = await fetch(`${gw.url}/a`, { headers: { ...auth, 'x-request-id': 'trace-me-42' } });
  t.equal(res.status, 200);
  t.equal(res.headers.get('x-request-id'), 'trace-me-42', 'echoed to the client');
  t.equal(up.last().headers['x-request-id'], 'trace-me-42', 'sent upstream');

  res = await fetch(`${gw.url}/b`, { headers: auth });
  const made = res.headers.get('x-request-id')!;
  t.match(made, UUID, 'made when absent');
  t.equal(up.last().headers['x-request-id'], made);

  res = await fetch(`${gw.url}/c`, { headers: { ...auth, 'x-request-id': 'x'.repeat(129) } });
  t.match(res.headers.get('x-request-id'), UUID, 'an over-long id is replaced');
  t.match(up.last().headers['x-request-id'], UUID);

  up.respond = (_req, r) => { r.writeHead(200, { 'x-request-id': 'upstream-own' }); r.end('ok'); };
  res = await fetch(`${gw.url}/d`, { headers: { ...auth, 'x-request-id': 'mine' } });
  t.equal(res.headers.get('x-request-id'), 'mine', 'the gateway\'s id wins over the upstream\'s');

  res = await fetch(`${gw.url}/e`, { headers: { 'x-request-id': 'refused-1' } });
  t.equal(res.status, 401);
  t.equal(res.headers.get('x-request-id'), 'refused-1', 'refusals carry it too');

  const ids = accessLines(gw.entries()).map((e) => e.requestId);
  t.same(ids.slice(0, 1), ['trace-me-42']);
  t.equal(ids[1], made);
  t.ok(ids.includes('refused-1'));
});

t.test('two X-Request-Id headers: neither is kept (Node joins them into one value)', async (t) => {
  const { request } = await import('node:http');
  const { up, gw, token } = await setup(t);
  const send = (ids: string[]) => new Promise<{ status: number; id: string }>((resolve, reject) => {
    // node:http sends an array value as one header line per element; no agent: no socket left open.
    const r = request(`${gw.url}/two`, { agent: false, headers: { authorization: `Bearer ${token}`, 'x-request-id': ids } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, id: String(res.headers['x-request-id']) }));
    });
    r.on('error', reject);
    r.end();
  });
  const two = await send(['first', 'second']);
  t.equal(two.status, 200);
  t.match(two.id, UUID, 'a new id, not "first, second"');
  t.equal(up.last().headers['x-request-id'], two.id, 'the same one upstream');
  const one = await send(['one, with a comma']);
  t.equal(one.id, 'one, with a comma', 'one header whose value has a comma is kept');
});

t.test('a made request id goes upstream when the decision had to wait (a key fetched for the token)', async (t) => {
  const { jwks, up, gw } = await setup(t);
  // A key the gateway has not seen: its token's kid makes the gateway fetch the key set again,
  // so the request is forwarded after an await, outside the request's synchronous part.
  const k2 = await generateKey('RS256', 'k2');
  const k1 = (await generateKey('RS256', 'k1')).jwk;
  jwks.setKeys([k1, k2.jwk]);
  const fresh = secret(await mint(claims(jwks.issuer, AUD, Date.now()), { key: k2 }));
  const res = await fetch(`${gw.url}/waited`, { headers: { authorization: `Bearer ${fresh}` } });
  t.equal(res.status, 200);
  const made = res.headers.get('x-request-id')!;
  t.match(made, UUID);
  t.equal(up.last().headers['x-request-id'], made, 'the same id upstream');
  t.equal(accessLines(gw.entries()).at(-1)?.requestId, made);
});

t.test('the access line: refusal reason at info, client ip, status', async (t) => {
  const { gw, token, expired } = await setup(t);
  await fetch(`${gw.url}/x`);
  await fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${expired}` } });
  await fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } });
  const lines = accessLines(gw.entries());
  t.equal(lines.length, 3);
  t.match(lines[0], { level: 30, status: 401, reason: 'no_credentials', ip: '127.0.0.1', route: String, path: '/x' });
  t.match(lines[1], { level: 30, status: 401, reason: 'token_expired', ip: '127.0.0.1' });
  t.match(lines[2], { status: 200, reason: null, decision: 'allow' });

  const m = await metricsText(gw.adminUrl);
  t.match(m, /cdf_gateway_refusals_total\{route="[^"]+",reason="no_credentials"\} 1/);
  t.match(m, /cdf_gateway_request_duration_seconds_count\{route="[^"]+",status="200"\} 1/);
  t.match(m, /cdf_gateway_request_duration_seconds_count\{route="[^"]+",status="401"\} 2/);
  t.match(m, /cdf_gateway_requests_in_flight 0/, 'nothing in flight once answered');
});

/** A request whose unknown `kid` triggers a JWKS refetch that fails; the log lines it left. */
async function jwksFailure(t: Test, requestContext: 'auto' | 'always', id: string) {
  const clock = new TestClock();
  const { jwks, gw } = await setup(t, { clock, requestContext });
  await gw.gateway.state.verifier.warmUp();
  await jwks.setMode('refused');
  clock.advance(60_000); // past the refetch cooldown
  // A key the gateway has not seen: the request triggers a refetch, which fails.
  const rotated = await generateKey('RS256', 'k2');
  const token = secret(await mint(claims(jwks.issuer, AUD, clock.now), { key: rotated }));
  const res = await fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': id } });
  t.equal(res.status, 401);
  const failures = gw.entries().filter((e) => e.msg === 'JWKS fetch failed');
  t.equal(failures.length, 1);
  t.match(JSON.stringify(failures[0]!.err), /ECONNREFUSED/, 'the socket error survives (was "err":{})');
  t.match(accessLines(gw.entries()).at(-1), { requestId: id, status: 401, reason: 'unknown_kid' });
  return failures[0]!;
}

// In this order: once a gateway of the process has turned `always` on, contexts follow awaits for good.
t.test('requestContext auto: the JWKS failure names the request where AsyncLocalStorage is cheap (Node 24), else no request', async (t) => {
  t.equal(contextFollowsAwaits(), hasAsyncContextFrame(), 'auto follows awaits exactly when AsyncContextFrame is there');
  const line = await jwksFailure(t, 'auto', 'jwks-down-auto');
  t.equal(line.requestId, hasAsyncContextFrame() ? 'jwks-down-auto' : undefined, 'never another request\'s id');
});

t.test('requestContext always: a JWKS failure is logged with its cause, on the line of the request that met it', async (t) => {
  const line = await jwksFailure(t, 'always', 'jwks-down-1');
  t.equal(line.requestId, 'jwks-down-1', 'the fetch the request triggered names it');
  t.ok(contextFollowsAwaits());
});

t.test('upstream failures are counted by kind: refused, reset, timeout', async (t) => {
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const resetter: Server = createServer((req) => { req.socket.destroy(); });
  const silent: Server = createServer(() => { /* never answers */ });
  for (const s of [resetter, silent]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.teardown(() => { resetter.close(); silent.closeAllConnections(); silent.close(); });
  const port = (s: Server) => (s.address() as AddressInfo).port;
  const { gw, token } = await setup(t, {
    upstreams: {
      down: { url: `http://127.0.0.1:${deadPort}`, credentials: { type: 'user-token' } },
      reset: { url: `http://127.0.0.1:${port(resetter)}`, credentials: { type: 'user-token' } },
      slow: { url: `http://127.0.0.1:${port(silent)}`, timeoutMs: 200, credentials: { type: 'user-token' } },
    },
    routes: [
      { prefix: '/down', upstream: 'down', allow: [{}] },
      { prefix: '/reset', upstream: 'reset', allow: [{}] },
      { prefix: '/slow', upstream: 'slow', allow: [{}] },
      { prefix: '/', upstream: 'app', allow: [{}] },
    ],
  });
  const auth = { authorization: `Bearer ${token}` };
  t.equal((await fetch(`${gw.url}/down`, { headers: auth })).status, 502);
  t.equal((await fetch(`${gw.url}/reset`, { method: 'POST', body: 'x', headers: auth })).status, 502);
  t.equal((await fetch(`${gw.url}/slow`, { headers: auth })).status, 504);
  const m = await metricsText(gw.adminUrl);
  t.match(m, /cdf_gateway_upstream_failures_total\{upstream="down",kind="refused"\} 2/, 'GET: first attempt and its one retry');
  t.match(m, /cdf_gateway_upstream_failures_total\{upstream="reset",kind="reset"\} 1/);
  t.match(m, /cdf_gateway_upstream_failures_total\{upstream="slow",kind="timeout"\} 1/);
});

t.test('one line at start-up listing the configuration (no secrets), one at shutdown', async (t) => {
  const { gw, up } = await setup(t);
  const start = gw.entries().find((e) => e.msg === 'listening')!;
  t.match(start, {
    upstreams: [`app=${up.url} (user-token)`], routes: ['/ -> app'], login: null, tracing: null, logLevel: 'info',
  });
  t.equal((start.issuers as string[]).length, 1);
  await gw.gateway.close();
  t.match(gw.entries().at(-1), { msg: 'stopped', drainedMs: Number });
});

t.test('the in-flight gauge counts a request while the upstream holds it', async (t) => {
  let release: () => void = () => {};
  const { up, gw, token } = await setup(t);
  up.respond = (_req, res) => new Promise<void>((r) => { release = () => { res.end('ok'); r(); }; });
  const pending = fetch(`${gw.url}/hold`, { headers: { authorization: `Bearer ${token}` } });
  while (up.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  t.match(await metricsText(gw.adminUrl), /cdf_gateway_requests_in_flight 1/);
  release();
  t.equal((await pending).status, 200);
  t.match(await metricsText(gw.adminUrl), /cdf_gateway_requests_in_flight 0/);
});

t.test('a request is timed from its arrival to its finished response; one its client abandoned is not logged', async (t) => {
  let release: () => void = () => {};
  const { up, gw, token } = await setup(t);
  const auth = { authorization: `Bearer ${token}` };
  up.respond = (_req, res) => new Promise<void>((r) => { release = () => { res.end('ok'); r(); }; });
  const pending = fetch(`${gw.url}/slow`, { headers: auth });
  while (up.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 150)); // the upstream holds the request this long at least
  release();
  t.equal((await pending).status, 200);
  const slow = accessLines(gw.entries()).find((l) => l.path === '/slow');
  t.ok(slow !== undefined && typeof slow.ms === 'number' && slow.ms >= 150, `the line's duration covers the upstream's wait (${slow?.ms} ms)`);
  t.match(await metricsText(gw.adminUrl), /cdf_gateway_request_duration_seconds_bucket\{le="0\.1",route="[^"]+",status="200"\} 0/, 'not in a bucket under 0.1 s');

  // The client leaves while the upstream holds its request: in flight until then, never logged.
  const gone = new AbortController();
  const abandoned = fetch(`${gw.url}/gone`, { headers: auth, signal: gone.signal }).catch(() => 'aborted');
  while (up.requests.length < 2) await new Promise((r) => setTimeout(r, 5));
  t.match(await metricsText(gw.adminUrl), /cdf_gateway_requests_in_flight 1/);
  gone.abort();
  t.equal(await abandoned, 'aborted');
  let text = '';
  for (let i = 0; i < 100 && !/cdf_gateway_requests_in_flight 0/.test(text); i++) { await new Promise((r) => setTimeout(r, 10)); text = await metricsText(gw.adminUrl); }
  t.match(text, /cdf_gateway_requests_in_flight 0/, 'the gauge is back to 0 once the response closed');
  release();
  up.respond = (_req, res) => { res.end('ok'); };
  t.equal((await fetch(`${gw.url}/after`, { headers: auth })).status, 200);
  t.notOk(accessLines(gw.entries()).some((l) => l.path === '/gone'), 'no access line for the abandoned response');
  t.ok(accessLines(gw.entries()).some((l) => l.path === '/after'), 'the next request is logged');
});
