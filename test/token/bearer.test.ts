import { request, createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { InvalidRequestError, InvalidTokenError } from '../../src/errors.js';
import { bearerCandidate, requireToken68 } from '../../src/token/bearer.js';

/** The header's bearer token as the pipeline takes it: the candidate, then its token68 check. */
function bearerToken(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): string | null {
  const token = bearerCandidate(headers, rawHeaders);
  if (token !== null) requireToken68(token);
  return token;
}

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (e) { return e; }
  return undefined;
}

function call(value: string | undefined, raw?: string[]) {
  const headers = value === undefined ? {} : { authorization: value };
  return bearerToken(headers, raw ?? (value === undefined ? [] : ['Authorization', value]));
}

t.test('no Authorization header → null', async (t) => {
  t.equal(call(undefined), null);
  t.equal(bearerToken({ host: 'x' }, ['Host', 'x']), null);
});

t.test('well-formed Bearer values', async (t) => {
  t.equal(call(`Bearer ${JWT}`), JWT);
  t.equal(call(`bearer ${JWT}`), JWT, 'scheme is case-insensitive');
  t.equal(call(`BEARER ${JWT}`), JWT);
  t.equal(call(`BeArEr ${JWT}`), JWT);
  t.equal(call('Bearer abc+/~=='), 'abc+/~==', 'token68 characters (not a JWT, but well-formed)');
  // RFC 6750 §2.1 and RFC 9110 §11.4: "Bearer" 1*SP b64token.
  t.equal(call(`Bearer  ${JWT}`), JWT, 'two spaces');
  t.equal(call(`Bearer    ${JWT}`), JWT, 'several spaces');
});

t.test('malformed Bearer values → 400 InvalidRequestError', async (t) => {
  const bad = [
    '', 'Bearer', 'Bearer ', 'Bearer   ', `Bearer ${JWT} extra`, `Bearer  ${JWT} extra`, `Bearer\t${JWT}`, `Bearer ${JWT} `,
    'Bearer a=b', 'Bearer ===', 'Bearer a,b', 'Bearer "abc"', 'Bearer ab\u00e9', ' Bearer x', 'Bearer a\nb',
    '=Bearer x',
  ];
  for (const v of bad) {
    const e = thrown(() => call(v));
    t.ok(e instanceof InvalidRequestError, JSON.stringify(v));
    t.equal((e as InvalidRequestError).status, 400, JSON.stringify(v));
  }
});

t.test('other schemes → 401 unsupported_scheme', async (t) => {
  for (const v of ['Basic dXNlcjpwYXNz', 'basic x', 'Digest username="a"', 'Token abc', 'Bearerx abc', 'Basic', 'DPoP abc']) {
    const e = thrown(() => call(v));
    t.ok(e instanceof InvalidTokenError, v);
    t.equal((e as InvalidTokenError).reason, 'unsupported_scheme', v);
    t.equal((e as InvalidTokenError).status, 401, v);
  }
});

t.test('two Authorization headers (counted in rawHeaders, any case) → 400', async (t) => {
  const v = `Bearer ${JWT}`;
  t.ok(thrown(() => call(v, ['Authorization', v, 'authorization', v])) instanceof InvalidRequestError);
  t.ok(thrown(() => call(v, ['AUTHORIZATION', v, 'Host', 'x', 'Authorization', 'Basic x'])) instanceof InvalidRequestError);
  t.ok(thrown(() => call(v, ['authorization', v, 'authorization', ''])) instanceof InvalidRequestError);
  t.equal(call(v, ['Host', 'x', 'Authorization', v, 'X-Authorization', 'y']), JWT, 'similar names do not count');
});

t.test('a real duplicated header from the wire', async (t) => {
  let seen: IncomingMessage | undefined;
  const server = createServer((req, res) => { seen = req; res.end(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { Authorization: [`Bearer ${JWT}`, 'Bearer other'] } }, (res) => {
      res.resume(); res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
  t.ok(seen);
  t.equal(seen!.headers.authorization, `Bearer ${JWT}`, 'Node keeps only the first');
  t.ok(thrown(() => bearerToken(seen!.headers, seen!.rawHeaders)) instanceof InvalidRequestError);
});
