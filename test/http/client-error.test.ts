// Socket-level client errors (Node's 'clientError': the parser refused the bytes, or the headers
// did not arrive in time) are answered in CDF's shape, with Connection: close and a request id,
// never echo the request, and are written on the access line and counted like every other answer.
// Real sockets for the gateway; a stand-in socket for the guards (nothing written to a socket that
// cannot take it, or under a response already started; only what was written is reported).
import t from 'tap';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { clientErrorHandler, type ClientErrorAnswer } from '../../src/http/app.js';
import { startJwksServer } from '../fixtures/jwks-server.js';
import { startUpstream } from '../fixtures/upstream.js';
import { startGateway } from '../fixtures/gateway.js';

/** Writes `text` on a fresh socket and resolves with everything read until the server closes it. */
function exchange(url: string, text: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () => sock.write(text));
    let buf = '';
    sock.on('data', (d) => { buf += d.toString('latin1'); });
    sock.on('close', () => resolve(buf));
    sock.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'ECONNRESET' || e.code === 'EPIPE') resolve(buf); else reject(e); });
  });
}

function parse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  const lines = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!)?.[1] ?? 0), headers, body: raw.slice(end + 4) };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

t.test('through the gateway: 431, 400 and 408 in CDF\'s shape, connection closed, nothing echoed, logged and counted', async (t) => {
  const jwks = await startJwksServer();
  const up = await startUpstream();
  t.teardown(async () => { await up.close(); await jwks.close(); });
  const gw = await startGateway(t, {
    server: { headersTimeoutMs: 200, requestTimeoutMs: 1000 },
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: ['https://cdf.test'] }],
    upstreams: { app: { url: up.url, credentials: { type: 'none' } } },
    routes: [{ prefix: '/', upstream: 'app', public: true }],
  });
  const host = new URL(gw.url).host;
  const cases: Array<[string, string, number, string, string, string]> = [
    ['a 33 KB header (HPE_HEADER_OVERFLOW)', `GET /x HTTP/1.1\r\nHost: ${host}\r\nX-Big: ECHO-${'b'.repeat(33 * 1024)}\r\n\r\n`, 431, 'Request header fields too large', 'too_large', 'header_too_large'],
    ['a header line without a colon', `GET /x HTTP/1.1\r\nHost: ${host}\r\nECHO-no-colon\r\n\r\n`, 400, 'Bad request: malformed HTTP request', 'invalid', 'bad_request'],
    ['a bad request line', 'GET /x ECHO/9.9\r\n\r\n', 400, 'Bad request: malformed HTTP request', 'invalid', 'bad_request'],
    ['Content-Length and Transfer-Encoding together', `POST /x HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nECHO`, 400, 'Bad request: malformed HTTP request', 'invalid', 'bad_request'],
    // Headers that never finish: Node's headers timeout (ERR_HTTP_REQUEST_TIMEOUT).
    ['headers that stop arriving', `GET /x HTTP/1.1\r\nHost: ${host}\r\nX-ECHO: 1\r\n`, 408, 'Request timeout: the request did not arrive in time', 'timeout', 'request_timeout'],
  ];
  for (const [name, text, status, message, decision, reason] of cases) {
    const raw = await exchange(gw.url, text);
    const r = parse(raw);
    t.equal(r.status, status, name);
    t.equal(r.headers['content-type'], 'application/json', `${name}: JSON`);
    t.equal(r.headers.connection, 'close', `${name}: Connection: close`);
    t.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body), `${name}: Content-Length`);
    t.same(JSON.parse(r.body), { error: { code: status, message } }, `${name}: CDF's shape`);
    t.notMatch(raw, /ECHO/, `${name}: nothing of the request echoed`);
    const id = r.headers['x-request-id'];
    t.match(id, UUID, `${name}: a request id is made and returned`);
    const lines = gw.entries().filter((e) => e.msg === 'request' && e.requestId === id);
    t.same(lines.map(({ time: _t, level: _l, service: _s, ...rest }) => rest), [{
      requestId: id, ip: '127.0.0.1', method: null, path: null, route: '-', decision, reason, sub: null, status, ms: 0, msg: 'request',
    }], `${name}: one access line, nothing of the request on it`);
  }

  // The whole-request timeout (server.requestTimeoutMs) while a body is still arriving: the
  // request was parsed, so its method and its own id are on the line; it writes no other line.
  const slow = parse(await exchange(gw.url, `POST /x HTTP/1.1\r\nHost: ${host}\r\nX-Request-Id: slow-upload\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nab`));
  t.equal(slow.status, 408, 'a body slower than requestTimeoutMs');
  t.same(JSON.parse(slow.body), { error: { code: 408, message: 'Request timeout: the request did not arrive in time' } });
  t.equal(slow.headers['x-request-id'], 'slow-upload', 'the request\'s own id is returned');
  await new Promise((r) => setTimeout(r, 100)); // the proxy gives up on the upstream after the socket closed
  t.same(gw.entries().filter((e) => e.msg === 'request' && e.requestId === 'slow-upload').map((e) => [e.method, e.path, e.status, e.decision, e.reason, e.ip]),
    [['POST', null, 408, 'timeout', 'request_timeout', '127.0.0.1']], 'one access line for it');

  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  for (const [series, n] of [
    ['requests_total{route="-",status="431",decision="too_large"}', 1],
    ['requests_total{route="-",status="400",decision="invalid"}', 3],
    ['requests_total{route="-",status="408",decision="timeout"}', 2],
    ['refusals_total{route="-",reason="header_too_large"}', 1],
    ['refusals_total{route="-",reason="bad_request"}', 3],
    ['refusals_total{route="-",reason="request_timeout"}', 2],
    // Answered as they were parsed: in the duration histogram; the timeouts have no known arrival.
    ['request_duration_seconds_count{route="-",status="431"}', 1],
    ['request_duration_seconds_count{route="-",status="400"}', 3],
  ] as const) t.ok(metrics.includes(`\ncdf_gateway_${series} ${n}\n`), `counted: ${series} ${n}`);
  t.notMatch(metrics, /request_duration_seconds_count\{route="-",status="408"\}/, 'no duration for a request that timed out');
  t.equal(up.requests.length, 0);
});

/** A socket stand-in recording what is written and whether it was destroyed. */
function fakeSocket(opts: { writable?: boolean; destroyed?: boolean; headersSent?: boolean } = {}) {
  const written: string[] = [];
  const s = new Duplex({ read() {}, write(c, _e, cb) { written.push(String(c)); cb(); } });
  let destroyedWith: unknown = 'not destroyed';
  if (opts.writable === false) s.end();
  if (opts.destroyed) s.destroy();
  s.destroy = ((err?: Error) => { destroyedWith = err ?? null; return s; }) as typeof s.destroy;
  if (opts.headersSent !== undefined) Object.assign(s, { _httpMessage: { headersSent: opts.headersSent } });
  return { s, written, destroyed: () => destroyedWith };
}
const err = (code: string) => Object.assign(new Error(`a ${code}`), { code });

t.test('the guards: reset or destroyed sockets get nothing; no write when not writable or a response started; only answers are reported', async (t) => {
  const reported: ClientErrorAnswer[] = [];
  const report = (a: ClientErrorAnswer) => { reported.push(a); };
  let f = fakeSocket();
  clientErrorHandler(err('HPE_INVALID_METHOD'), f.s, report);
  t.match(f.written.join(''), /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.match(f.destroyed(), { code: 'HPE_INVALID_METHOD' }, 'then destroyed');
  t.match(reported, [{ req: null, status: 400, reason: 'bad_request', requestId: UUID }], 'reported');
  t.match(f.written.join(''), new RegExp(`\r\nx-request-id: ${reported[0]!.requestId}\r\n`, 'i'), 'under the id it was answered with');

  f = fakeSocket({ headersSent: false });
  clientErrorHandler(err('HPE_HEADER_OVERFLOW'), f.s, report);
  t.match(f.written.join(''), /^HTTP\/1\.1 431 /, 'a response not started yet does not stop the answer');
  t.match(reported[1], { status: 431, reason: 'header_too_large' });
  reported.length = 0;

  f = fakeSocket({ headersSent: true });
  clientErrorHandler(err('ERR_HTTP_REQUEST_TIMEOUT'), f.s, report);
  t.same(f.written, [], 'a response already started: nothing written');
  t.match(f.destroyed(), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }, 'but the socket is closed');

  f = fakeSocket({ writable: false });
  clientErrorHandler(err('HPE_INVALID_METHOD'), f.s, report);
  t.same(f.written, [], 'not writable: nothing written');
  t.match(f.destroyed(), { code: 'HPE_INVALID_METHOD' });

  f = fakeSocket();
  clientErrorHandler(err('ECONNRESET'), f.s, report);
  t.same(f.written, []);
  t.equal(f.destroyed(), 'not destroyed', 'a reset: nothing to do');

  f = fakeSocket({ destroyed: true });
  clientErrorHandler(err('HPE_INVALID_METHOD'), f.s, report);
  t.same(f.written, []);
  t.equal(f.destroyed(), 'not destroyed', 'already destroyed: nothing to do');
  t.same(reported, [], 'nothing written: nothing reported');
});
