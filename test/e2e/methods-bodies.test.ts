// Methods and request bodies at the edge (DESIGN "Contract, second edition": Methods, Bodies):
// TRACE/CONNECT never served, Max-Forwards per RFC 9110 §7.6.2, refused bodies never waited
// for, a failed upload never poisons its keep-alive connection, Expect: 100-continue decided
// first, idle bodies bounded. Raw sockets where the client's exact bytes and the connection's
// fate matter.
import t from 'tap';
import net from 'node:net';
import { startUpstream, type Upstream } from '../fixtures/upstream.js';
import { startGateway, secret, type Running } from '../fixtures/gateway.js';
import { startJwksServer, type JwksServer } from '../fixtures/jwks-server.js';
import { claims, generateKey, mint, AUDIENCE, type TestKey } from '../fixtures/tokens.js';

const API_KEY = secret('echoed-api-key-0123456789');

let jwks: JwksServer;
let key: TestKey;
let up: Upstream;
let token: string;
/** An upstream that resets every connection on its first bytes. */
let resetter: net.Server;
let resetUrl: string;

/** Everything a raw HTTP/1.1 exchange produced: the bytes and whether the server closed. */
interface Exchange { text: string; closed: boolean; socket: net.Socket }

/**
 * Writes `head` (and optional body parts) on a fresh socket and resolves once `until` holds for
 * what was read, or the server closed the connection.
 */
function exchange(url: string, head: string, until: (text: string) => boolean, body: string[] = []): Promise<Exchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let text = '';
    let done = false;
    const finish = (closed: boolean) => { if (!done) { done = true; resolve({ text, closed, socket }); } };
    socket.on('data', (c) => { text += c.toString('latin1'); if (until(text)) finish(false); });
    socket.on('close', () => finish(true));
    socket.on('error', (e) => { if (!done) reject(e); });
    socket.write(head);
    for (const b of body) socket.write(b);
  });
}

/** Waits for the server to close `socket` (the test's timeout fails it otherwise). */
function closedBy(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => { if (socket.destroyed || socket.readyState === 'closed') resolve(); else socket.once('close', () => resolve()); });
}

const complete = (text: string) => {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = text.slice(0, end);
  if (/^HTTP\/1\.1 1\d\d /.test(head)) return false; // interim response: the final one follows
  if (/transfer-encoding: chunked/i.test(head)) return text.endsWith('\r\n0\r\n\r\n');
  const len = /content-length: (\d+)/i.exec(head);
  return len !== null && text.length >= end + 4 + Number(len[1]);
};

t.before(async () => {
  key = await generateKey('RS256', 'k1');
  jwks = await startJwksServer({ keys: [key.jwk] });
  up = await startUpstream();
  resetter = net.createServer((s) => { s.on('error', () => {}); s.once('data', () => s.resetAndDestroy()); });
  await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', () => r()));
  resetUrl = `http://127.0.0.1:${(resetter.address() as net.AddressInfo).port}`;
  token = secret(await mint(claims(jwks.issuer, AUDIENCE, Date.now(), { groups: ['readers'] }), { key }));
});
t.teardown(async () => { await up?.close(); await jwks?.close(); resetter?.close(); });

function config(upstreamUrl: string, resetUrl: string) {
  return {
    server: { bodyIdleTimeoutMs: 300 },
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: [AUDIENCE] }],
    upstreams: {
      keyed: { url: upstreamUrl, credentials: { type: 'api-key', header: 'api-key', value: API_KEY } },
      open: { url: upstreamUrl, credentials: { type: 'none' } },
      reset: { url: resetUrl, credentials: { type: 'none' } },
    },
    routes: [
      { prefix: '/app', upstream: 'keyed', allow: [{ groups: ['readers'] }] },
      { prefix: '/status', upstream: 'open', public: true },
      { prefix: '/reset', upstream: 'reset', allow: [{ groups: ['readers'] }] },
    ],
  };
}

t.test('methods and bodies', async (t) => {
  const gw: Running = await startGateway(t, config(up.url, resetUrl));
  const auth = `Bearer ${token}`;
  // An upstream that echoes what it received (Apache httpd answers TRACE like this by default).
  const echo = () => {
    up.respond = (req, res, body) => {
      res.writeHead(200, { 'content-type': 'message/http' });
      res.end(`${req.method} ${req.url}\n${JSON.stringify(req.headers)}\n${body.length}`);
    };
  };
  t.beforeEach(() => echo());

  await t.test('TRACE and every method the gateway does not forward are 405 on every route, with or without a body, never forwarded', async (t) => {
    // TRACE: an echo would hand out the injected credential. The rest: extension methods (WebDAV,
    // cache purges, LINK, SEARCH, QUERY) that Node parses but the gateway never forwards. Fastify
    // treats QUERY as a body method (a Content-Type required, a malformed one refused): none of
    // that comes before the 405, whatever the request carries.
    const methods = ['TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'PURGE', 'LINK', 'UNLINK', 'SEARCH', 'REPORT', 'QUERY'];
    const paths = [['/app/x', `Authorization: ${auth}\r\n`], ['/status', ''], ['/status/x', `Authorization: ${auth}\r\n`], ['/nowhere', ''], ['/auth/verify', ''], ['/login/token', ''], ['/', '']] as const;
    /** [name, headers, body parts sent after the head]. */
    const variants: Array<[string, string, string[]]> = [
      ['Content-Type, no body', 'Content-Type: application/json\r\n', []],
      ['no Content-Type, no body', '', []],
      ['no Content-Type, a body', 'Content-Length: 2\r\n', ['{}']],
      ['Content-Type and a body', 'Content-Type: application/xml\r\nContent-Length: 7\r\n', ['<a></a>']],
      ['a chunked body without Content-Type', 'Transfer-Encoding: chunked\r\n', ['2\r\n{}\r\n0\r\n\r\n']],
      ['a malformed Content-Type and a body', 'Content-Type: not a media type\r\nContent-Length: 2\r\n', ['{}']],
      ['Expect: 100-continue, the body held back', 'Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n', []],
    ];
    let n = 0;
    for (const method of methods) {
      for (const [path, extra] of paths) {
        for (const [variant, headers, body] of variants) {
          const name = `${method} ${path}, ${variant}`;
          const id = `m-${method}-${n++}`;
          const before = up.requests.length;
          const r = await exchange(gw.url, `${method} ${path} HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ${id}\r\n${headers}${extra}\r\n`, complete, body);
          r.socket.destroy();
          t.match(r.text, /^HTTP\/1\.1 405 /, name);
          const allow = /\r\nallow: ([^\r]*)/i.exec(r.text)?.[1] ?? '';
          t.equal(allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS', `${name}: Allow`);
          t.same(JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)), { error: { code: 405, message: 'Method not allowed' } }, `${name}: CDF's shape`);
          t.match(r.text, new RegExp(`\r\nx-request-id: ${id}\r\n`, 'i'), `${name}: X-Request-Id`);
          t.notMatch(r.text, API_KEY);
          if (headers.includes('Expect')) t.notMatch(r.text, /100 Continue/, `${name}: no 100 Continue`);
          t.equal(up.requests.length, before, `${name}: nothing reached the upstream`);
          const lines = gw.logs.filter((l) => l.includes(`"requestId":"${id}"`) && l.includes('"msg":"request"')).map((l) => JSON.parse(l) as unknown);
          t.equal(lines.length, 1, `${name}: one access line`);
          t.match(lines[0], { method, status: 405, reason: 'method_not_allowed', decision: 'not_allowed' }, `${name}: access line`);
        }
      }
    }
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    t.match(metrics, new RegExp(`cdf_gateway_refusals_total\\{route="-",reason="method_not_allowed"\\} ${n}\\n`), 'each counted');
  });

  await t.test('CONNECT is 405 (not a dropped connection), never tunnelled', async (t) => {
    const before = up.requests.length;
    const { port } = new URL(up.url);
    const r = await exchange(gw.url, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${auth}\r\nX-Request-Id: connect-1\r\n\r\n`, complete);
    t.match(r.text, /^HTTP\/1\.1 405 /);
    t.match(r.text, /"code":405/);
    t.match(r.text, /\r\nx-request-id: connect-1\r\n/i, 'the incoming request id is returned');
    t.match(gw.entries().find((e) => e.msg === 'request' && e.method === 'CONNECT' && e.requestId === 'connect-1'),
      { ip: '127.0.0.1', status: 405, reason: 'method_not_allowed' }, 'and written on the access line with the client ip');
    t.equal(up.requests.length, before);
    r.socket.destroy();
    const made = await exchange(gw.url, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, complete);
    made.socket.destroy();
    const id = /\r\nx-request-id: ([^\r]*)\r\n/i.exec(made.text)?.[1];
    t.match(id, /^[0-9a-f-]{36}$/, 'without one, an id is made');
    t.match(gw.entries().find((e) => e.msg === 'request' && e.requestId === id), { method: 'CONNECT', ip: '127.0.0.1' });
  });

  await t.test('OPTIONS with Max-Forwards: 0 is answered by the gateway; otherwise decremented', async (t) => {
    const before = up.requests.length;
    const zero = await fetch(`${gw.url}/app/x`, { method: 'OPTIONS', headers: { authorization: auth, 'max-forwards': '0' } });
    t.equal(zero.status, 200);
    t.match(zero.headers.get('allow') ?? '', /OPTIONS/);
    t.equal(up.requests.length, before, 'Max-Forwards: 0 is not forwarded');

    const two = await fetch(`${gw.url}/app/x`, { method: 'OPTIONS', headers: { authorization: auth, 'max-forwards': '2' } });
    t.equal(two.status, 200);
    t.equal(up.last().method, 'OPTIONS');
    t.equal(up.last().headers['max-forwards'], '1', 'decremented on the way upstream');

    const bad = await fetch(`${gw.url}/app/x`, { method: 'OPTIONS', headers: { authorization: auth, 'max-forwards': 'many' } });
    t.equal(bad.status, 400);

    const unauth = await fetch(`${gw.url}/app/x`, { method: 'OPTIONS', headers: { 'max-forwards': '0' } });
    t.equal(unauth.status, 401, 'Max-Forwards does not skip authentication');

    await fetch(`${gw.url}/app/x`, { method: 'GET', headers: { authorization: auth, 'max-forwards': '0' } });
    t.equal(up.last().method, 'GET', 'other methods ignore Max-Forwards (RFC 9110 §7.6.2)');
    t.equal(up.last().headers['max-forwards'], '0');
  });

  await t.test('a refused request\'s body is never waited for: answer, then close', async (t) => {
    const before = up.requests.length;
    // Headers and a few bytes of a declared 10 MB body; the rest never comes.
    const r = await exchange(gw.url,
      'POST /app/upload HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n',
      complete, ['x'.repeat(100)]);
    t.match(r.text, /^HTTP\/1\.1 401 /);
    t.match(r.text, /connection: close/i);
    await closedBy(r.socket);
    t.pass('the server closed the connection without waiting for the body');
    t.equal(up.requests.length, before);
  });

  await t.test('Expect: 100-continue: a refused request gets its final status, no 100, and the connection closes', async (t) => {
    const r = await exchange(gw.url,
      'PUT /app/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n', complete);
    t.match(r.text, /^HTTP\/1\.1 401 /, 'no 100 Continue before the refusal');
    t.notMatch(r.text, /100 Continue/);
    await closedBy(r.socket);
  });

  await t.test('Expect: 100-continue: an allowed upload gets 100, then is forwarded with its body', async (t) => {
    const body = 'y'.repeat(2 * 1024 * 1024);
    const r1 = await exchange(gw.url,
      `PUT /app/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: ${auth}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
      (text) => text.includes('100 Continue\r\n\r\n'));
    t.match(r1.text, /^HTTP\/1\.1 100 Continue/);
    const r2 = await new Promise<string>((resolve) => {
      let text = '';
      r1.socket.on('data', (c) => { text += c.toString('latin1'); if (complete(text)) resolve(text); });
      r1.socket.write(body);
    });
    r1.socket.destroy();
    t.match(r2, /^HTTP\/1\.1 200 /);
    t.equal(up.last().method, 'PUT');
    t.equal(up.last().body.length, body.length, 'the whole body arrived upstream');
    t.equal(up.last().headers.expect, undefined, 'Expect is not passed on');
    t.equal(up.last().headers['api-key'], API_KEY);
  });

  await t.test('any Content-Type is the upstream\'s business: the gateway decides first and forwards it as sent', async (t) => {
    // Fastify refuses a Content-Type it cannot parse with 415 before a handler runs; the gateway
    // parses no body, so that check must not come first (an anonymous request would learn 415,
    // not 401) or at all (the upstream may well accept it).
    const types = ['garbage', 'text', 'application/json;;', 'multipart/form-data; boundary', '*/*', 'application/json; charset="unterminated'];
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      for (const type of types) {
        const name = `${method} Content-Type: ${type}`;
        const body = '{"items":[]}';
        const before = up.requests.length;
        const head = (extra: string) => `${method} /app/x HTTP/1.1\r\nHost: gw\r\n${extra}Content-Type: ${type}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
        const refused = await exchange(gw.url, head(''), complete);
        t.match(refused.text, /^HTTP\/1\.1 401 /, `${name}, no token: 401`);
        t.match(refused.text, /\r\n\r\n\{"error":\{"code":401,/, `${name}: CDF's shape`);
        t.equal(up.requests.length, before, `${name}, no token: nothing reached the upstream`);
        const allowed = await exchange(gw.url, head(`Authorization: ${auth}\r\n`), complete);
        t.match(allowed.text, /^HTTP\/1\.1 200 /, `${name}: forwarded`);
        t.equal(up.requests.length, before + 1);
        t.equal(up.last().method, method);
        t.equal(up.last().headers['content-type'], type, `${name}: the Content-Type as sent`);
        t.equal(up.last().body.toString(), body, `${name}: the body as sent`);
      }
    }
    // Forward-auth never reads a body either: an ext_authz-style call keeps the original's headers.
    for (const type of types) {
      const head = (extra: string) => `POST /auth/verify HTTP/1.1\r\nHost: gw\r\n${extra}Content-Type: ${type}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
      t.match((await exchange(gw.url, head(''), complete)).text, /^HTTP\/1\.1 401 /, `/auth/verify, Content-Type: ${type}, no token: 401`);
      t.match((await exchange(gw.url, head(`Authorization: ${auth}\r\n`), complete)).text, /^HTTP\/1\.1 200 /, `/auth/verify, Content-Type: ${type}: 200`);
    }
  });

  await t.test('a failed upload closes its connection, so the next request is never stuck behind it', async (t) => {
    // The upstream resets the connection as soon as the body starts arriving.
    const body = 'z'.repeat(256 * 1024);
    const r = await exchange(gw.url,
      `POST /reset/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: ${auth}\r\nContent-Length: ${body.length}\r\n\r\n`, complete, [body]);
    t.match(r.text, /^HTTP\/1\.1 502 /);
    // Either the body was read whole (keep-alive is safe) or the connection is closed.
    if (!/connection: close/i.test(r.text)) {
      echo();
      const next = await new Promise<string>((resolve) => {
        let text = '';
        r.socket.on('data', (c) => { text += c.toString('latin1'); if (complete(text)) resolve(text); });
        r.socket.write('GET /status HTTP/1.1\r\nHost: gw\r\n\r\n');
      });
      t.match(next, /^HTTP\/1\.1 200 /, 'the next request on the connection is answered');
    } else {
      await closedBy(r.socket);
      t.pass('connection closed after the failed upload');
    }
    r.socket.destroy();
  });

  await t.test('a body idle for bodyIdleTimeoutMs aborts the request with 408 and closes', async (t) => {
    up.respond = (_req, res) => { res.writeHead(200); res.end('ok'); };
    const r = await exchange(gw.url,
      `POST /app/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: ${auth}\r\nContent-Length: 100000\r\n\r\n`, complete, ['b'.repeat(10)]);
    t.match(r.text, /^HTTP\/1\.1 408 /);
    t.match(r.text, /"code":408/);
    await closedBy(r.socket);
  });
});
