// Socket-level client errors (Node's 'clientError': the parser refused the bytes, or the headers
// did not arrive in time) are answered in CDF's shape, with Connection: close, and never echo the
// request. Real sockets for the gateway; a stand-in socket for the guards (nothing written to a
// socket that cannot take it, or under a response already started).
import t from 'tap';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { clientErrorHandler } from '../../src/http/app.js';
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

t.test('through the gateway: 431, 400 and 408 in CDF\'s shape, connection closed, nothing echoed', async (t) => {
  const jwks = await startJwksServer();
  const up = await startUpstream();
  t.teardown(async () => { await up.close(); await jwks.close(); });
  const gw = await startGateway(t, {
    server: { headersTimeoutMs: 200, requestTimeoutMs: 5000 },
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: ['https://cdf.test'] }],
    upstreams: { app: { url: up.url, credentials: { type: 'none' } } },
    routes: [{ prefix: '/', upstream: 'app', public: true }],
  });
  const host = new URL(gw.url).host;
  const cases: Array<[string, string, number, string]> = [
    ['a 33 KB header (HPE_HEADER_OVERFLOW)', `GET /x HTTP/1.1\r\nHost: ${host}\r\nX-Big: ECHO-${'b'.repeat(33 * 1024)}\r\n\r\n`, 431, 'Request header fields too large'],
    ['a header line without a colon', `GET /x HTTP/1.1\r\nHost: ${host}\r\nECHO-no-colon\r\n\r\n`, 400, 'Bad request: malformed HTTP request'],
    ['a bad request line', 'GET /x ECHO/9.9\r\n\r\n', 400, 'Bad request: malformed HTTP request'],
    ['Content-Length and Transfer-Encoding together', `POST /x HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nECHO`, 400, 'Bad request: malformed HTTP request'],
    // Headers that never finish: Node's headers timeout (ERR_HTTP_REQUEST_TIMEOUT).
    ['headers that stop arriving', `GET /x HTTP/1.1\r\nHost: ${host}\r\nX-ECHO: 1\r\n`, 408, 'Request timeout: the request did not arrive in time'],
  ];
  for (const [name, text, status, message] of cases) {
    const raw = await exchange(gw.url, text);
    const r = parse(raw);
    t.equal(r.status, status, name);
    t.equal(r.headers['content-type'], 'application/json', `${name}: JSON`);
    t.equal(r.headers.connection, 'close', `${name}: Connection: close`);
    t.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body), `${name}: Content-Length`);
    t.same(JSON.parse(r.body), { error: { code: status, message } }, `${name}: CDF's shape`);
    t.notMatch(raw, /ECHO/, `${name}: nothing of the request echoed`);
  }
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

t.test('the guards: reset or destroyed sockets get nothing; no write when not writable or a response started', async (t) => {
  let f = fakeSocket();
  clientErrorHandler(err('HPE_INVALID_METHOD'), f.s);
  t.match(f.written.join(''), /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.match(f.destroyed(), { code: 'HPE_INVALID_METHOD' }, 'then destroyed');

  f = fakeSocket({ headersSent: false });
  clientErrorHandler(err('HPE_HEADER_OVERFLOW'), f.s);
  t.match(f.written.join(''), /^HTTP\/1\.1 431 /, 'a response not started yet does not stop the answer');

  f = fakeSocket({ headersSent: true });
  clientErrorHandler(err('ERR_HTTP_REQUEST_TIMEOUT'), f.s);
  t.same(f.written, [], 'a response already started: nothing written');
  t.match(f.destroyed(), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }, 'but the socket is closed');

  f = fakeSocket({ writable: false });
  clientErrorHandler(err('HPE_INVALID_METHOD'), f.s);
  t.same(f.written, [], 'not writable: nothing written');
  t.match(f.destroyed(), { code: 'HPE_INVALID_METHOD' });

  f = fakeSocket();
  clientErrorHandler(err('ECONNRESET'), f.s);
  t.same(f.written, []);
  t.equal(f.destroyed(), 'not destroyed', 'a reset: nothing to do');

  f = fakeSocket({ destroyed: true });
  clientErrorHandler(err('HPE_INVALID_METHOD'), f.s);
  t.same(f.written, []);
  t.equal(f.destroyed(), 'not destroyed', 'already destroyed: nothing to do');
});
