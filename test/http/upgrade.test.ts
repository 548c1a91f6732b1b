// WebSocket upgrades through the gateway with real `ws` clients and a real `ws` upstream:
// decided like a GET (bearer here; sessions in test/e2e/websocket-browser.test.ts), refused
// upgrades are ordinary HTTP errors (never 101, never a plain 200), allowed ones carry the
// upstream's credential and identity headers and nothing of the client's credentials, closes
// pass both ways, a large message arrives whole with backpressure, and the open-sockets gauge.
import t from 'tap';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { startIdp, RESOURCE } from '../fixtures/idp.js';
import { secret, startGateway } from '../fixtures/gateway.js';
import { startWsUpstream } from '../fixtures/ws-upstream.js';

const API_KEY = secret('ws-upstream-api-key-0123456789');

type Opened = { ws: WebSocket; protocol: string };
type Refused = { status: number; body: string; headers: http.IncomingHttpHeaders };

/** Opens a WebSocket; resolves with it, or with the HTTP answer that refused it. */
function open(url: string, headers: Record<string, string> = {}, protocols?: string[]): Promise<Opened | Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    queue(ws);
    ws.once('open', () => resolve({ ws, protocol: ws.protocol }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    ws.once('error', (e) => { if (!(e.message.includes('Unexpected server response'))) reject(e); });
  });
}
const opened = (r: Opened | Refused): WebSocket => {
  if ('ws' in r) return r.ws;
  throw new Error(`refused with ${r.status}: ${r.body}`);
};
const refused = (r: Opened | Refused): Refused => {
  if ('status' in r) return r;
  r.ws.terminate();
  throw new Error('the upgrade was accepted');
};
type Message = { data: Buffer; binary: boolean };
const queues = new WeakMap<WebSocket, { items: Message[]; wake: (() => void) | null }>();
/** Messages are queued from the start: one may arrive with the 101 itself. */
function queue(ws: WebSocket): void {
  const q = { items: [] as Message[], wake: null as (() => void) | null };
  queues.set(ws, q);
  ws.on('message', (data, binary) => { q.items.push({ data: data as Buffer, binary }); q.wake?.(); });
}
async function nextMessage(ws: WebSocket): Promise<Message> {
  const q = queues.get(ws)!;
  while (q.items.length === 0) await new Promise<void>((r) => { q.wake = r; });
  return q.items.shift()!;
}
const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

t.test('WebSockets with bearer tokens', async (t) => {
  const idp = await startIdp();
  t.teardown(() => idp.close());
  const up = await startWsUpstream();
  t.teardown(() => up.close());
  const alice = secret(await idp.userToken('alice'));
  const mallory = secret(await idp.userToken('mallory'));
  const gw = await startGateway(t, {
    issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, audiences: [RESOURCE] }],
    upstreams: {
      ws: { url: up.url, timeoutMs: 2000, credentials: { type: 'api-key', header: 'api-key', value: API_KEY } },
      st: { url: up.url, credentials: { type: 'none' } },
    },
    routes: [
      { prefix: '/ws', upstream: 'ws', allow: [{ groups: ['readers'] }] },
      { prefix: '/_stcore', upstream: 'st', allow: [{ groups: ['readers'] }] },
      { prefix: '/nows', upstream: 'ws', allow: [{ groups: ['readers'] }], websockets: false },
      { prefix: '/pub', upstream: 'st', public: true },
    ],
  });
  const base = gw.url.replace(/^http/, 'ws');
  const auth = (tok: string) => ({ authorization: `Bearer ${tok}` });

  await t.test('echo with a valid token; the upstream sees its credential, not the client\'s', async (t) => {
    const ws = opened(await open(`${base}/ws/echo?x=1`, {
      ...auth(alice), cookie: 'cdf-gw-session=abc; other=1', 'x-auth-request-user': 'root', 'x-forwarded-user': 'root',
      'x-original-method': 'DELETE', 'x-original-uri': '/admin', 'x-request-id': 'ws-allowed-1',
    }));
    const reply = nextMessage(ws);
    ws.send('hello');
    t.equal((await reply).data.toString(), 'hello');
    const h = up.handshakes.at(-1)!;
    t.equal(h.url, '/ws/echo?x=1');
    t.equal(h.headers['api-key'], API_KEY, 'the upstream\'s credential');
    t.equal(h.headers.authorization, undefined, 'the client\'s token stays behind');
    t.equal(h.headers['x-auth-request-user'], 'alice', 'identity from the token, not the client');
    t.equal(h.headers['x-forwarded-user'], undefined);
    t.equal(h.headers['x-original-method'], undefined, 'X-Original-Method dropped like X-Original-URI');
    t.equal(h.headers['x-original-uri'], undefined);
    t.equal(h.headers['x-request-id'], 'ws-allowed-1', 'the request id goes upstream');
    t.match(gw.entries().find((e) => e.upgrade === 'websocket' && e.status === 101), { requestId: 'ws-allowed-1', ip: '127.0.0.1', route: '/ws' }, 'and onto the access line');
    t.equal(h.headers.cookie, 'other=1', 'gateway cookies stripped');
    t.equal(h.headers.upgrade, 'websocket');
    t.match(h.headers.connection, /upgrade/i);
    t.ok(h.headers['sec-websocket-key'], 'handshake headers pass');
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    t.match(metrics, /cdf_gateway_websockets_open\{route="\/ws"\} 1/, 'counted as open');
    t.match(metrics, /cdf_gateway_request_duration_seconds_count\{route="\/ws",status="101"\} 1\n/, 'the upgrade timed, to its 101');
    const gone = closed(ws);
    ws.close(1000, 'done');
    await gone;
    await waitFor(() => up.closes.some((c) => c.code === 1000), 'the close at the upstream');
    await waitFor(() => gw.gateway.metrics.registry.getSingleMetric('cdf_gateway_websockets_open') !== undefined, 'gauge');
    const after = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    t.match(after, /cdf_gateway_websockets_open\{route="\/ws"\} 0/, 'and no longer once closed');
  });

  await t.test('refusals are ordinary HTTP errors, never 101', async (t) => {
    const before = up.handshakes.length;
    const none = refused(await open(`${base}/ws/echo`));
    t.equal(none.status, 401);
    t.match(none.headers['www-authenticate'], /^Bearer/);
    t.same(JSON.parse(none.body), { error: { code: 401, message: 'Unauthorized: a bearer token is required' } });
    const bad = refused(await open(`${base}/ws/echo`, auth('not.a.token')));
    t.equal(bad.status, 401);
    t.equal(refused(await open(`${base}/ws/echo`, auth(mallory))).status, 403, 'no matching allow rule');
    t.equal(refused(await open(`${base}/nows/echo`, auth(alice))).status, 400, 'websockets: false');
    t.equal(refused(await open(`${base}/nowhere`, auth(alice))).status, 404);
    t.equal(refused(await open(`${base}/ws//x`, auth(alice))).status, 400, 'the same target rules (no empty segment)');
    t.equal(up.handshakes.length, before, 'nothing reached the upstream');
    const line = gw.entries().find((e) => e.upgrade === 'websocket' && e.status === 403);
    t.match(line, { route: '/ws', decision: 'deny', sub: null }, 'an access line per upgrade');
  });

  await t.test('refusals carry the request id, on the response and the access line, with the client ip', async (t) => {
    const kept = refused(await open(`${base}/ws/echo`, { 'x-request-id': 'ws-refused-1' }));
    t.equal(kept.status, 401);
    t.equal(kept.headers['x-request-id'], 'ws-refused-1', 'an incoming id is kept');
    t.match(gw.entries().find((e) => e.upgrade === 'websocket' && e.requestId === 'ws-refused-1'),
      { status: 401, ip: '127.0.0.1', reason: 'no_credentials' });
    const made = refused(await open(`${base}/nowhere`, { ...auth(alice), 'x-request-id': 'x'.repeat(129) }));
    t.equal(made.status, 404);
    const id = made.headers['x-request-id'];
    t.match(id, /^[0-9a-f-]{36}$/, 'one over 128 characters is replaced by a made one');
    t.match(gw.entries().find((e) => e.upgrade === 'websocket' && e.requestId === id), { status: 404, ip: '127.0.0.1', reason: 'no_route' });
    const upstreamRefusal = refused(await open(`${base}/ws/refuse`, { ...auth(alice), 'x-request-id': 'ws-refused-2' }));
    t.equal(upstreamRefusal.status, 403);
    t.equal(upstreamRefusal.headers['x-request-id'], 'ws-refused-2', 'on a relayed upstream refusal too');
  });

  await t.test('the upstream refusing the upgrade, or answering plain HTTP', async (t) => {
    const r = refused(await open(`${base}/ws/refuse`, auth(alice)));
    t.equal(r.status, 403, 'its refusal is relayed');
    t.equal(r.body, 'not for you\n');
    const p = refused(await open(`${base}/ws/plain`, auth(alice)));
    t.equal(p.status, 502, 'a plain 200 to an upgrade is a bad gateway, not a 200');
  });

  await t.test('Streamlit-like /_stcore/stream: subprotocol, binary push on connect, binary echo', async (t) => {
    const r = await open(`${base}/_stcore/stream`, auth(alice), ['streamlit', 'xsrf-token-value']);
    const ws = opened(r);
    t.equal((r as Opened).protocol, 'streamlit');
    const first = await nextMessage(ws);
    t.equal(first.binary, true);
    t.same([...first.data], [0x0a, 0x03, 0x6e, 0x65, 0x77]);
    const echo = nextMessage(ws);
    ws.send(Buffer.from([1, 2, 3]));
    t.same([...(await echo).data], [1, 2, 3]);
    ws.close();
  });

  await t.test('public route: no credential, any client', async (t) => {
    const ws = opened(await open(`${base}/pub/echo`, auth(alice)));
    const h = up.handshakes.at(-1)!;
    t.equal(h.headers.authorization, undefined);
    t.equal(h.headers['x-auth-request-user'], undefined, 'anonymous upstream');
    ws.close();
  });

  await t.test('closing either way', async (t) => {
    const ws = opened(await open(`${base}/ws/echo`, auth(alice)));
    const seen = closed(ws);
    ws.close(4000, 'client leaves');
    t.same(await seen, { code: 4000, reason: 'client leaves' }, 'the upstream echoed the close through the tunnel');
    await waitFor(() => up.closes.some((c) => c.code === 4000 && c.reason === 'client leaves'), 'the upstream to hear 4000');

    const ws2 = opened(await open(`${base}/ws/bye`, auth(alice)));
    const seen2 = closed(ws2);
    ws2.send('x');
    t.same(await seen2, { code: 4001, reason: 'upstream says bye' }, 'the upstream\'s close reaches the client');

    const ws3 = opened(await open(`${base}/ws/echo`, auth(alice)));
    const seen3 = closed(ws3);
    await waitFor(() => up.sockets.size > 0, 'the upstream socket');
    for (const s of up.sockets) s.terminate();
    t.equal((await seen3).code, 1006, 'an upstream that drops the connection drops the client\'s');
  });

  await t.test('a large message under backpressure arrives whole', async (t) => {
    const ws = opened(await open(`${base}/ws/echo`, auth(alice)));
    await waitFor(() => up.sockets.size > 0, 'the upstream socket');
    const server = [...up.sockets].at(-1)!;
    const raw = (server as unknown as { _socket: import('node:net').Socket })._socket;
    raw.pause(); // the upstream stops reading
    const big = randomBytes(48 * 1024 * 1024);
    const echo = nextMessage(ws);
    ws.send(big);
    // Wait until the flow stalls: the client's buffered amount stops shrinking.
    let last = -1;
    let stable = 0;
    for (let i = 0; i < 400 && stable < 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
      stable = ws.bufferedAmount === last ? stable + 1 : 0;
      last = ws.bufferedAmount;
    }
    t.ok(ws.bufferedAmount > 24 * 1024 * 1024, `most of the message still waits at the sender (${ws.bufferedAmount} bytes): the gateway does not buffer it`);
    raw.resume();
    const got = (await echo).data;
    t.equal(got.length, big.length);
    t.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(big).digest('hex'), 'intact');
    ws.close();
  });

  await t.test('non-WebSocket upgrades (h2c) are served as ordinary requests', async (t) => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(`${gw.url}/nowhere`, { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' } }, resolve);
      req.on('error', reject);
    });
    t.equal(res.statusCode, 404);
    res.resume();
  });
});
