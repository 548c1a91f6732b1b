import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { createCredentialSource, type Credential, type CredentialSource } from '../../src/upstream/credentials.js';
import type { ClientCredentials, CredentialsConfig, UpstreamConfig } from '../../src/config/types.js';
import type { Principal } from '../../src/token/principal.js';
import { noopMetrics, type Metrics } from '../../src/metrics.js';
import { CredentialUnavailableError } from '../../src/errors.js';
import { RESOURCE, SVC_SECRET, startIdp } from '../fixtures/idp.js';
import { waitFor } from '../fixtures/wait.js';

const principal: Principal = {
  sub: 'alice', email: null, groups: [], scopes: new Set(), issuer: 'https://idp.test',
  expiresAt: Date.now() + 3600_000, groupsHeader: '',
};
/** The caller's token, passed per request (the Principal never holds it). */
const USER_TOKEN = 'user.jwt.token';

function upstream(credentials: CredentialsConfig, name = 'svc-up'): UpstreamConfig {
  return { name, url: 'http://127.0.0.1:1', timeoutMs: 30000, credentials };
}

function cc(tokenUrl: string, over: Partial<ClientCredentials> = {}): ClientCredentials {
  return {
    type: 'client-credentials', tokenUrl, clientId: 'svc', clientSecret: SVC_SECRET, scopes: [],
    resource: RESOURCE, audience: null, tokenEndpointAuthMethod: 'client_secret_basic',
    renewBeforeSec: 60, timeoutMs: 2000, ...over,
  };
}

function recorder() {
  const refreshes: string[] = [];
  const metrics: Metrics = {
    ...noopMetrics,
    clientCredentialsRefresh(name, outcome) { refreshes.push(`${name}:${outcome}`); },
  };
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); },
  }));
  return { metrics, refreshes, logger, lines };
}

/** A clock tests move by hand. */
function manualClock(start = Date.now()) {
  let now = start;
  const clock = () => now;
  return { clock, advance(ms: number) { now += ms; }, set(ms: number) { now = ms; }, get now() { return now; } };
}

async function value(p: Credential | null | Promise<Credential>): Promise<string> {
  const c = await p;
  if (c === null) throw new Error('no credential');
  return c.value;
}

interface Asserts {
  ok(v: unknown, msg: string): unknown;
  equal(a: unknown, b: unknown, msg: string): unknown;
  fail(msg: string): unknown;
}

async function rejects503(t: Asserts, fn: () => unknown, msg: string): Promise<void> {
  try {
    await fn();
    t.fail(`${msg}: expected CredentialUnavailableError`);
  } catch (err) {
    t.ok(err instanceof CredentialUnavailableError, `${msg}: CredentialUnavailableError`);
    t.equal((err as CredentialUnavailableError).status, 503, `${msg}: 503`);
  }
}

t.test('static credential types', async (t) => {
  const user = createCredentialSource(upstream({ type: 'user-token' }));
  // Marked header-safe: a verified JWT is base64url parts and dots (the header rules skip their scan).
  t.same(user.get(principal, USER_TOKEN), { header: 'authorization', value: 'Bearer user.jwt.token', headerSafe: true });
  t.equal(user.secret(), null);

  const none = createCredentialSource(upstream({ type: 'none' }));
  t.equal(none.get(principal, USER_TOKEN), null);
  t.equal(none.secret(), null);

  const key = createCredentialSource(upstream({ type: 'api-key', header: 'api-key', value: 'the-api-key-value' }));
  const a = key.get(principal, USER_TOKEN);
  t.same(a, { header: 'api-key', value: 'the-api-key-value', headerSafe: true }, 'marked: the configuration check accepted it');
  t.equal(key.get(principal, USER_TOKEN), a, 'precomputed: same object every time');
  t.equal(key.secret(), 'the-api-key-value');
  user.close(); none.close(); key.close();
});

t.test('client credentials against the real IdP', async (t) => {
  const idp = await startIdp();
  t.teardown(() => idp.close());
  const jwks = createRemoteJWKSet(new URL(idp.jwksUri));

  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    t.test(method, async (t) => {
      const clientId = method === 'client_secret_basic' ? 'svc' : 'svc-post';
      const rec = recorder();
      const src = createCredentialSource(
        upstream(cc(idp.tokenUrl, { clientId, tokenEndpointAuthMethod: method, scopes: ['user_impersonation'] })),
        { metrics: rec.metrics, logger: rec.logger },
      );
      t.teardown(() => src.close());
      const before = idp.requests.token;
      t.equal(src.secret(), null, 'no secret before a token');
      const first = await src.get(principal, USER_TOKEN);
      t.equal(first?.header, 'authorization');
      t.equal(first?.headerSafe, true, 'the IdP\'s token was checked once when it came: marked header-safe');
      const token = first!.value.replace(/^Bearer /, '');
      const { payload } = await jwtVerify(token, jwks, { issuer: idp.issuer, audience: RESOURCE });
      t.equal(payload.sub, clientId);
      t.equal(payload.scp, 'user_impersonation');
      t.equal(src.secret(), token, 'secret() is the current token');

      const again = src.get(principal, USER_TOKEN);
      t.notOk(again instanceof Promise, 'cached: answered synchronously');
      t.equal(await value(again), first!.value, 'token reused');
      t.equal(idp.requests.token - before, 1, 'one token request');
      t.same(rec.refreshes, ['svc-up:ok']);
      t.equal(rec.lines.length, 0, 'nothing logged on success');
    });
  }

  t.test('20 concurrent callers share one token request', async (t) => {
    const src = createCredentialSource(upstream(cc(idp.tokenUrl)));
    t.teardown(() => src.close());
    const before = idp.requests.token;
    const values = await Promise.all(Array.from({ length: 20 }, () => value(src.get(principal, USER_TOKEN))));
    t.equal(new Set(values).size, 1, 'all got the same token');
    t.equal(idp.requests.token - before, 1, 'exactly one token request');
  });

  t.test('renewal ahead of expiry: old token served while the one renewal runs', async (t) => {
    const clk = manualClock();
    let release!: () => void;
    let gate: Promise<void> = Promise.resolve();
    let fetches = 0;
    let lastFetch: Promise<Response> = Promise.resolve(new Response());
    const gatedFetch: typeof fetch = (input, init) => {
      fetches++;
      lastFetch = gate.then(() => fetch(input, init));
      return lastFetch;
    };
    const src = createCredentialSource(upstream(cc(idp.tokenUrl, { renewBeforeSec: 60 })), { clock: clk.clock, fetch: gatedFetch });
    t.teardown(() => src.close());

    const a = await value(src.get(principal, USER_TOKEN));
    t.equal(fetches, 1);
    // IdP lifetime is 3600 s; renewal starts at 3540 s.
    clk.advance(3539_000);
    t.equal(await value(src.get(principal, USER_TOKEN)), a, 'before renewAt: same token');
    t.equal(fetches, 1, 'no renewal before renewAt');

    gate = new Promise<void>((r) => { release = r; });
    clk.advance(2_000);
    const during = src.get(principal, USER_TOKEN);
    t.notOk(during instanceof Promise, 'renewal does not make callers wait');
    t.equal(await value(during), a, 'old token served while renewing');
    for (let i = 0; i < 10; i++) t.equal(await value(src.get(principal, USER_TOKEN)), a);
    t.equal(fetches, 2, 'exactly one renewal request');

    release();
    await lastFetch;
    let b = a;
    for (let i = 0; i < 100 && b === a; i++) {
      await new Promise((r) => setImmediate(r));
      b = await value(src.get(principal, USER_TOKEN));
    }
    t.not(b, a, 'new token after the renewal');
    t.equal(src.secret(), b.replace(/^Bearer /, ''), 'secret() follows the new token');
    t.equal(fetches, 2, 'no further requests');
  });

  t.test('IdP down with no token: 503, then fail fast for 1 s', async (t) => {
    const clk = manualClock();
    const rec = recorder();
    const src = createCredentialSource(upstream(cc(idp.tokenUrl), 'down-up'), { clock: clk.clock, metrics: rec.metrics, logger: rec.logger });
    t.teardown(() => { src.close(); idp.setDown(false); });
    idp.setDown(true);
    const before = idp.requests.token;

    // Concurrent callers share the one failing request.
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => Promise.resolve().then(() => src.get(principal, USER_TOKEN))));
    t.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof CredentialUnavailableError), 'all rejected with 503');
    t.equal(idp.requests.token - before, 1, 'one request for five callers');

    clk.advance(500);
    await rejects503(t, () => src.get(principal, USER_TOKEN), 'within 1 s');
    t.equal(idp.requests.token - before, 1, 'no new request within 1 s');

    clk.advance(600);
    await rejects503(t, () => src.get(principal, USER_TOKEN), 'after 1 s, still down');
    t.equal(idp.requests.token - before, 2, 'one new request after 1 s');

    idp.setDown(false);
    clk.advance(1001);
    const ok = await value(src.get(principal, USER_TOKEN));
    t.match(ok, /^Bearer ey/, 'recovers once the IdP is back');
    t.equal(idp.requests.token - before, 3);
    t.same(rec.refreshes, ['down-up:error', 'down-up:error', 'down-up:ok']);

    const warns = rec.lines.map((l) => JSON.parse(l) as { level: number; upstream: string; error: string; msg: string });
    t.equal(warns.length, 2, 'each failure logged once');
    for (const w of warns) {
      t.equal(w.level, 40, 'warn');
      t.equal(w.upstream, 'down-up');
      t.type(w.error, 'string');
    }
    const log = rec.lines.join('');
    t.notMatch(log, SVC_SECRET, 'secret never logged');
    t.notMatch(log, ok.slice(7), 'token never logged');
  });

  t.test('IdP down while a valid token is cached: still served', async (t) => {
    const clk = manualClock();
    const rec = recorder();
    const src = createCredentialSource(upstream(cc(idp.tokenUrl)), { clock: clk.clock, metrics: rec.metrics });
    t.teardown(() => { src.close(); idp.setDown(false); });
    const a = await value(src.get(principal, USER_TOKEN));
    idp.setDown(true);
    const before = idp.requests.token;

    clk.advance(3550_000);               // inside the renewal window
    t.equal(await value(src.get(principal, USER_TOKEN)), a, 'served while renewal fails');
    // Let the background renewal fail.
    await waitFor(() => rec.refreshes.length >= 2, { what: 'the failed background renewal' });
    t.same(rec.refreshes, ['svc-up:ok', 'svc-up:error']);
    t.equal(idp.requests.token - before, 1);
    t.equal(await value(src.get(principal, USER_TOKEN)), a, 'still served after the failed renewal');
    t.equal(idp.requests.token - before, 1, 'no retry within 1 s');

    clk.advance(51_000);                 // past expiry
    await rejects503(t, () => src.get(principal, USER_TOKEN), 'expired and IdP down');
  });
});

/** A token endpoint that answers whatever the test says, recording requests. */
async function fakeTokenServer(answer: (req: http.IncomingMessage, body: string) => { status: number; body: string; type?: string } | null) {
  const seen: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      const a = answer(req, body);
      if (a === null) return;              // never answer (timeout)
      res.writeHead(a.status, { 'content-type': a.type ?? 'application/json' });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`;
  return {
    url, seen,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

t.test('bad token responses are failures', async (t) => {
  const secret = 'p@ss word+/:é&=%-secret';
  const cases: { name: string; status: number; body: string; type?: string }[] = [
    { name: 'non-JSON 200', status: 200, body: '<html>hello</html>', type: 'text/html' },
    { name: 'garbage JSON content-type', status: 200, body: '{not json' },
    { name: 'no access_token', status: 200, body: '{"token_type":"Bearer","expires_in":3600}' },
    { name: 'no expires_in', status: 200, body: '{"access_token":"tok-no-exp-1234567890","token_type":"Bearer"}' },
    { name: 'zero expires_in', status: 200, body: '{"access_token":"tok-zero-1234567890","token_type":"Bearer","expires_in":0}' },
    { name: 'no token_type', status: 200, body: '{"access_token":"tok-no-type-1234567890","expires_in":3600}' },
    { name: '500', status: 500, body: 'boom', type: 'text/plain' },
    { name: '401 invalid_client reflecting the secret', status: 401, body: JSON.stringify({ error: `invalid_client ${secret}`, error_description: `bad secret ${secret}` }) },
    { name: '200 with a JSON array', status: 200, body: '[]' },
    { name: 'a valid token padded past 1 MiB', status: 200, body: `${' '.repeat(1_048_576)}{"access_token":"tok-huge-1234567890","token_type":"Bearer","expires_in":3600}` },
    // Never forwarded without its credential (nor with a broken one): refused where it came.
    { name: 'an access_token that is no header value', status: 200, body: '{"access_token":"tok-crlf-1234567890\\r\\nx-admin: 1","token_type":"Bearer","expires_in":3600}' },
  ];
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const srv = await fakeTokenServer(() => c);
      t.teardown(() => srv.close());
      const rec = recorder();
      const src = createCredentialSource(upstream(cc(srv.url, { clientSecret: secret })), { metrics: rec.metrics, logger: rec.logger });
      await rejects503(t, () => src.get(principal, USER_TOKEN), c.name);
      t.equal(srv.seen.length, 1);
      t.same(rec.refreshes, ['svc-up:error']);
      t.equal(rec.lines.length, 1, 'logged once');
      const log = rec.lines.join('');
      for (const form of [secret, encodeURIComponent(secret), 'tok-no-exp', 'tok-zero', 'tok-no-type', 'tok-crlf']) t.notOk(log.includes(form), `log free of ${form}`);
      t.equal(src.secret(), null);
    });
  }
});

t.test('request shape: client_secret_basic form-encodes, parameters sent', async (t) => {
  const secret = 'p@ss word+/:é&=%-secret';
  const srv = await fakeTokenServer(() => ({ status: 200, body: JSON.stringify({ access_token: 'tok-abcdefghijkl', token_type: 'Bearer', expires_in: 600 }) }));
  t.teardown(() => srv.close());
  const src = createCredentialSource(upstream(cc(srv.url, {
    clientId: 'svc:id with space', clientSecret: secret, scopes: ['a', 'b/c'], resource: 'https://r.test', audience: 'aud-1',
  })));
  t.equal(await value(src.get(principal, USER_TOKEN)), 'Bearer tok-abcdefghijkl');
  const { headers, body } = srv.seen[0]!;
  const basic = Buffer.from(String(headers.authorization).replace(/^Basic /, ''), 'base64').toString();
  const [id, pw] = basic.split(':');
  // RFC 6749 §2.3.1: application/x-www-form-urlencoded, then Basic.
  t.equal(decodeURIComponent(id!.replace(/\+/g, ' ')), 'svc:id with space');
  t.equal(decodeURIComponent(pw!.replace(/\+/g, ' ')), secret);
  t.notMatch(basic, / /, 'spaces encoded');
  const form = new URLSearchParams(body);
  t.equal(form.get('grant_type'), 'client_credentials');
  t.equal(form.get('scope'), 'a b/c');
  t.equal(form.get('resource'), 'https://r.test');
  t.equal(form.get('audience'), 'aud-1');
  t.equal(form.get('client_secret'), null, 'secret not in the body with basic');
});

t.test('request shape: client_secret_post, no optional parameters', async (t) => {
  const srv = await fakeTokenServer(() => ({ status: 200, body: JSON.stringify({ access_token: 'tok-post-abcdefgh', token_type: 'bearer', expires_in: 600 }) }));
  t.teardown(() => srv.close());
  const src = createCredentialSource(upstream(cc(srv.url, { tokenEndpointAuthMethod: 'client_secret_post', resource: null })));
  t.equal(await value(src.get(principal, USER_TOKEN)), 'Bearer tok-post-abcdefgh');
  const { headers, body } = srv.seen[0]!;
  t.equal(headers.authorization, undefined);
  const form = new URLSearchParams(body);
  t.equal(form.get('client_id'), 'svc');
  t.equal(form.get('client_secret'), SVC_SECRET);
  t.equal(form.get('scope'), null);
  t.equal(form.get('resource'), null);
  t.equal(form.get('audience'), null);
});

t.test('token endpoint timeout → 503', async (t) => {
  const srv = await fakeTokenServer(() => null);
  t.teardown(() => srv.close());
  const src = createCredentialSource(upstream(cc(srv.url, { timeoutMs: 200 })));
  await rejects503(t, () => src.get(principal, USER_TOKEN), 'timeout');
});

t.test('token endpoint unreachable → 503', async (t) => {
  const srv = await fakeTokenServer(() => null);
  const url = srv.url;
  await srv.close();
  const rec = recorder();
  const src = createCredentialSource(upstream(cc(url)), { logger: rec.logger });
  await rejects503(t, () => src.get(principal, USER_TOKEN), 'connection refused');
  t.equal(rec.lines.length, 1);
});

t.test('lifetime shorter than renewBeforeSec renews at half-life', async (t) => {
  const clk = manualClock();
  let n = 0;
  const srv = await fakeTokenServer(() => ({ status: 200, body: JSON.stringify({ access_token: `tok-${++n}-abcdefgh`, token_type: 'Bearer', expires_in: 30 }) }));
  t.teardown(() => srv.close());
  const src = createCredentialSource(upstream(cc(srv.url, { renewBeforeSec: 60 })), { clock: clk.clock });
  t.equal(await value(src.get(principal, USER_TOKEN)), 'Bearer tok-1-abcdefgh');
  clk.advance(14_000);
  t.equal(await value(src.get(principal, USER_TOKEN)), 'Bearer tok-1-abcdefgh');
  t.equal(srv.seen.length, 1, 'no renewal before half-life');
  clk.advance(2_000);
  t.equal(await value(src.get(principal, USER_TOKEN)), 'Bearer tok-1-abcdefgh', 'old token while renewing');
  await waitFor(() => srv.seen.length >= 2, { what: 'the background renewal' });
  t.equal(srv.seen.length, 2, 'renewed after half-life');
});

t.test('closed source refuses', async (t) => {
  const src: CredentialSource = createCredentialSource(upstream(cc('http://127.0.0.1:1/token')));
  src.close();
  await rejects503(t, () => src.get(principal, USER_TOKEN), 'closed');
});
