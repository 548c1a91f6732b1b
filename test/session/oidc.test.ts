// Which login errors are the IdP's fault (502/504) and which are a failed login (400).
import t from 'tap';
import * as oidc from 'openid-client';
import { BadGatewayError, InvalidTokenError, KeysUnavailableError } from '../../src/errors.js';
import { IdpUnavailableError, idpFailure } from '../../src/session/oidc.js';

const fetchFailed = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
const clientError = (code: string, cause?: unknown) => new oidc.ClientError('x', { code, cause } as ErrorOptions);
const bodyError = (status: number) =>
  new oidc.ResponseBodyError('server responded with an error in the response body', { cause: { error: 'e' }, response: new Response(null, { status }) });

const rows: Array<[string, unknown, 'timeout' | 'unavailable' | null]> = [
  ['connection refused (fetch TypeError)', fetchFailed, 'unavailable'],
  ['timed out (openid-client OAUTH_TIMEOUT)', clientError('OAUTH_TIMEOUT', timeout), 'timeout'],
  ['timed out (bare TimeoutError)', timeout, 'timeout'],
  ['undici connect timeout', new TypeError('fetch failed', { cause: Object.assign(new Error('t'), { code: 'UND_ERR_CONNECT_TIMEOUT' }) }), 'timeout'],
  ['5xx with an OAuth error body', bodyError(503), 'unavailable'],
  ['an HTML error page (not conform)', clientError('OAUTH_RESPONSE_IS_NOT_CONFORM'), 'unavailable'],
  ['not JSON', clientError('OAUTH_RESPONSE_IS_NOT_JSON'), 'unavailable'],
  ['discovery failed', new IdpUnavailableError('discovery failed', { cause: fetchFailed }), 'unavailable'],
  ['discovery timed out', new IdpUnavailableError('discovery failed', { cause: clientError('OAUTH_TIMEOUT', timeout) }), 'timeout'],
  ['the IdP\'s keys unobtainable', new KeysUnavailableError('no keys'), 'unavailable'],
  ['an upstream-style 502', new BadGatewayError('x'), 'unavailable'],
  // The IdP answered and said no, or its answer failed a check: the login failed.
  ['invalid_grant (400)', bodyError(400), null],
  ['authorization error', new oidc.AuthorizationResponseError('x', { cause: new URLSearchParams('error=access_denied') }), null],
  ['claim comparison failed', clientError('OAUTH_JWT_CLAIM_COMPARISON_FAILED'), null],
  ['access token invalid', new InvalidTokenError('signature'), null],
  ['anything else', new Error('boom'), null],
  ['not an Error', 'boom', null],
];
for (const [name, err, want] of rows) t.equal(idpFailure(err), want, name);

// The same question asked of openid-client's own errors, from a code exchange against a
// stand-in IdP (no network): which answers are no token response at all (the IdP failing), and
// which are well-formed answers that fail a check (the login failed).
t.test('openid-client errors from a code exchange', async (t) => {
  const { generateKeyPair, exportJWK, SignJWT } = await import('jose');
  const issuer = 'https://idp.example';
  const signing = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(signing.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const idToken = async (key: CryptoKey, nonce = 'n') => new SignJWT({ nonce })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(issuer).setAudience('gw').setSubject('alice')
    .setIssuedAt().setExpirationTime('5m').sign(key);
  const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const good = async () => ({ access_token: 'at', token_type: 'Bearer', expires_in: 60, id_token: await idToken(signing.privateKey) });

  const exchange = async (answer: () => Promise<Response>, state = 's', keys: unknown = { keys: [jwk] }): Promise<unknown> => {
    const config = new oidc.Configuration(
      { issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, authorization_endpoint: `${issuer}/auth` },
      'gw', 'secret',
    );
    oidc.enableNonRepudiationChecks(config); // as the gateway does: the ID token's signature is checked
    config[oidc.customFetch] = async (url) => (new URL(url).pathname === '/jwks' ? json(keys) : answer());
    const callback = new URL(`https://gw.example/auth/callback?code=c&state=s&iss=${encodeURIComponent(issuer)}`);
    try {
      await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: 'v'.repeat(43), expectedState: state, expectedNonce: 'n', idTokenExpected: true });
      return null;
    } catch (err) {
      return err;
    }
  };

  t.equal(await exchange(async () => json(await good())), null, 'the stand-in answers a valid exchange');
  const cases: Array<[string, () => Promise<unknown>, 'unavailable' | null]> = [
    ['200 {}', () => exchange(async () => json({})), 'unavailable'],
    ['200 []', () => exchange(async () => json([])), 'unavailable'],
    ['200 without token_type', () => exchange(async () => json({ access_token: 'at' })), 'unavailable'],
    ['200 without id_token', () => exchange(async () => json({ access_token: 'at', token_type: 'Bearer' })), 'unavailable'],
    ['200 access_token not a string', () => exchange(async () => json({ access_token: 1, token_type: 'Bearer' })), 'unavailable'],
    ['200 JSON that does not parse', () => exchange(async () => new Response('{"access_token":', { headers: { 'content-type': 'application/json' } })), 'unavailable'],
    ['a key set whose keys is no array', () => exchange(async () => json(await good()), 's', { keys: 'none' }), 'unavailable'],
    ['400 invalid_grant', () => exchange(async () => json({ error: 'invalid_grant' }, 400)), null],
    ['state mismatch', () => exchange(async () => json(await good()), 'other'), null],
    ['ID token signed by another key', () => exchange(async () => json({ ...(await good()), id_token: await idToken(other.privateKey) })), null],
    ['ID token with another nonce', () => exchange(async () => json({ ...(await good()), id_token: await idToken(signing.privateKey, 'm') })), null],
  ];
  for (const [name, run, want] of cases) {
    const err = await run();
    t.ok(err instanceof Error, `${name}: the exchange fails`);
    t.equal(idpFailure(err), want, `${name}: ${String((err as { code?: string } | null)?.code)}`);
  }
});
