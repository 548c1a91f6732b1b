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
