// POST /auth/backchannel-logout against a gateway (one replica, no redis; then two sharing one):
// every rule of OpenID Connect Back-Channel Logout 1.0 §2.6 refused on its own, with a 400 in
// the gateway's error shape and Cache-Control: no-store; replayed jti refused on any replica.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { startGateway, secret } from '../fixtures/gateway.js';
import { startJwksServer } from '../fixtures/jwks-server.js';
import { startRedis } from '../fixtures/redis.js';
import { claims, generateKey, hs256, mint, rawToken, type TestKey } from '../fixtures/tokens.js';
import { LOGOUT_EVENT } from '../../src/session/backchannel.js';

const CLIENT_ID = 'gw-client';
const COOKIE_SECRET = secret('backchannel-test-cookie-secret-0123456789');

async function setup(t: Test) {
  const key = await generateKey('RS256', 'k1');
  const jwks = await startJwksServer({ keys: [key.jwk] });
  t.teardown(() => jwks.close());
  const config = (extra: Record<string, unknown> = {}) => ({
    issuers: [{ issuer: jwks.url, jwksUri: jwks.jwksUri, audiences: ['https://cdf.example'] }],
    tokens: { jwksTimeoutMs: 10_000 },
    upstreams: { app: { url: 'http://127.0.0.1:9', credentials: { type: 'user-token' } } },
    routes: [{ prefix: '/app', upstream: 'app', allow: [{}] }],
    login: {
      cookieSecret: COOKIE_SECRET,
      projects: { demo: { issuer: jwks.url, clientId: CLIENT_ID, clientSecret: secret('backchannel-client-secret') } },
    },
    ...extra,
  });
  return { key, issuer: jwks.url, config };
}

function logoutClaims(issuer: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return claims(issuer, CLIENT_ID, Date.now(), { exp: Math.floor(Date.now() / 1000) + 120, jti: randomUUID(), events: { [LOGOUT_EVENT]: {} }, sid: 'idp-sid-1', sub: undefined, ...over });
}

const logoutToken = (key: TestKey, payload: Record<string, unknown>, header: Record<string, unknown> = { typ: 'logout+jwt' }) =>
  mint(payload, { key, header });

function post(url: string, body: string, type = 'application/x-www-form-urlencoded'): Promise<Response> {
  return fetch(`${url}/auth/backchannel-logout`, { method: 'POST', headers: { 'content-type': type }, body });
}
const form = (token: string) => new URLSearchParams({ logout_token: token }).toString();

t.test('logout tokens: accepted, and each rule of §2.6 refused on its own', async (t) => {
  const { key, issuer, config } = await setup(t);
  const gw = await startGateway(t, config());
  const other = await generateKey('RS256', 'k1');

  const first = await logoutToken(key, logoutClaims(issuer));
  const now = Math.floor(Date.now() / 1000);
  const rows: Array<[string, string | Promise<string>, number]> = [
    ['valid, by sid', first, 200],
    ['valid, by sub', logoutToken(key, logoutClaims(issuer, { sid: undefined, sub: 'alice' })), 200],
    ['valid, sid and sub', logoutToken(key, logoutClaims(issuer, { sub: 'alice' })), 200],
    ['valid, no typ header', logoutToken(key, logoutClaims(issuer), {}), 200],
    ['jti replayed', first, 400],
    ['typ of an access token', logoutToken(key, logoutClaims(issuer), { typ: 'at+jwt' }), 400],
    ['no events', logoutToken(key, logoutClaims(issuer, { events: undefined })), 400],
    ['events without the logout event', logoutToken(key, logoutClaims(issuer, { events: { 'http://example.com/other': {} } })), 400],
    ['logout event not an object', logoutToken(key, logoutClaims(issuer, { events: { [LOGOUT_EVENT]: 'yes' } })), 400],
    ['nonce present', logoutToken(key, logoutClaims(issuer, { nonce: 'n-1' })), 400],
    ['neither sid nor sub', logoutToken(key, logoutClaims(issuer, { sid: undefined })), 400],
    ['aud another client', logoutToken(key, logoutClaims(issuer, { aud: 'someone-else' })), 400],
    ['iss unknown', logoutToken(key, logoutClaims(issuer, { iss: 'https://evil.example' })), 400],
    ['signed by another key with the same kid', logoutToken(other, logoutClaims(issuer)), 400],
    ['expired', logoutToken(key, logoutClaims(issuer, { iat: now - 300, exp: now - 200 })), 400],
    ['issued too long ago', logoutToken(key, logoutClaims(issuer, { iat: now - 3600, exp: now + 60 })), 400],
    ['issued in the future', logoutToken(key, logoutClaims(issuer, { iat: now + 3600, exp: now + 7200 })), 400],
    ['no jti', logoutToken(key, logoutClaims(issuer, { jti: undefined })), 400],
    ['no exp', logoutToken(key, logoutClaims(issuer, { exp: undefined })), 400],
    ['no iat', logoutToken(key, logoutClaims(issuer, { iat: undefined })), 400],
    ['alg none', rawToken({ alg: 'none', typ: 'logout+jwt' }, logoutClaims(issuer)), 400],
    ['HS256 keyed with the public key', hs256({ alg: 'HS256', kid: 'k1' }, logoutClaims(issuer), key.publicKey.export({ format: 'pem', type: 'spki' })), 400],
    ['not a JWT', 'not-a-jwt', 400],
  ];
  for (const [name, token, status] of rows) {
    const res = await post(gw.url, form(await token));
    const body = await res.text();
    t.equal(res.status, status, `${name}: ${res.status} ${body}`);
    t.equal(res.headers.get('cache-control'), 'no-store', `${name}: no-store`);
    if (status === 400) t.same(JSON.parse(body), { error: { code: 400, message: 'Bad request: invalid logout token' } }, `${name}: error shape`);
  }

  const valid = await logoutToken(key, logoutClaims(issuer));
  const requests: Array<[string, () => Promise<Response>, number]> = [
    ['no logout_token', () => post(gw.url, 'other=1'), 400],
    ['two logout_tokens', () => post(gw.url, `${form(valid)}&${form(valid)}`), 400],
    ['JSON, not a form', () => post(gw.url, JSON.stringify({ logout_token: valid }), 'application/json'), 400],
    ['a body over 16 KiB', () => post(gw.url, `logout_token=${'a'.repeat(20_000)}`), 413],
  ];
  for (const [name, send, status] of requests) {
    const res = await send();
    t.equal(res.status, status, `${name}: ${res.status}`);
    t.equal(res.headers.get('cache-control'), 'no-store', `${name}: no-store`);
  }
  t.equal((await post(gw.url, form(valid))).status, 200, 'the token those requests carried was never consumed');
  t.notOk(gw.logs.some((l) => l.includes(valid.slice(0, 40))), 'no logout token in the log');
});

t.test('a jti used at one replica is refused at the other (redis)', async (t) => {
  const { key, issuer, config } = await setup(t);
  const redis = await startRedis(t);
  const shared = { redis: { url: redis.url, keyPrefix: 'bcl:' } };
  const a = await startGateway(t, config(shared));
  const b = await startGateway(t, config(shared));
  const token = await logoutToken(key, logoutClaims(issuer));
  t.equal((await post(a.url, form(token))).status, 200, 'accepted at a');
  t.equal((await post(b.url, form(token))).status, 400, 'replayed at b');

  const client = createClient({ url: redis.url });
  await client.connect();
  t.teardown(() => client.destroy());
  const keys = await client.keys('bcl:jti:*');
  t.equal(keys.length, 1, 'one jti remembered');
  const ttl = await client.pTTL(keys[0]!);
  t.ok(ttl > 0 && ttl <= 150_000, `kept while the token could be accepted (${ttl} ms)`);
  t.ok((await client.zRange('bcl:revoked', 0, -1)).includes('sid:demo:idp-sid-1'), 'the revocation is in the shared set');
});
