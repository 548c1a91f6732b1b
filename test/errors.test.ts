// Error answers: CDF's body shape and the challenge headers, exactly; expected refusals (4xx)
// are built without a stack trace, unexpected failures (5xx) keep theirs.
import t from 'tap';
import {
  BadGatewayError, GatewayError, InsufficientScopeError, InvalidRequestError, InvalidTokenError, KeysUnavailableError,
  MissingTokenError, NotFoundError, errorBody,
} from '../src/errors.js';

t.test('bodies are CDF-shaped, byte for byte, and serialised once', async (t) => {
  t.equal(errorBody(401, 'Unauthorized: invalid token'), '{"error":{"code":401,"message":"Unauthorized: invalid token"}}');
  t.equal(errorBody(404, 'Not found'), '{"error":{"code":404,"message":"Not found"}}');
  t.equal(errorBody(400, 'say "hi"\n'), '{"error":{"code":400,"message":"say \\"hi\\"\\n"}}', 'escaped as JSON');
  t.equal(errorBody(401, 'Unauthorized: invalid token'), errorBody(401, 'Unauthorized: invalid token'));
  const texts = Array.from({ length: 1000 }, (_, i) => `variable text ${i}`);
  t.same(texts.map((m) => (JSON.parse(errorBody(400, m)) as { error: { message: string } }).error.message), texts, 'past the memo bound too');
});

t.test('challenge headers are unchanged', async (t) => {
  t.same(new MissingTokenError().headers, { 'www-authenticate': 'Bearer realm="cdf-auth-gateway"' });
  t.same(new InvalidTokenError('signature').headers, {
    'www-authenticate': 'Bearer realm="cdf-auth-gateway", error="invalid_token", error_description="The access token is invalid"',
  });
  t.same(new InsufficientScopeError().headers, { 'www-authenticate': 'Bearer realm="cdf-auth-gateway", error="insufficient_scope"' });
  t.same(new InvalidRequestError('Bad request: malformed Bearer token').headers, {
    'www-authenticate': 'Bearer realm="cdf-auth-gateway", error="invalid_request", error_description="Bad request: malformed Bearer token"',
  });
  t.same(new NotFoundError().headers, {});
  t.same(new KeysUnavailableError('x').headers, { 'retry-after': '5' });
  t.ok(Object.isFrozen(new InvalidTokenError('x').headers), 'shared, so frozen');
});

t.test('refusals carry no stack trace; failures do; the limit is restored', async (t) => {
  const before = Error.stackTraceLimit;
  const refusal = new InvalidTokenError('signature', 'signature does not verify');
  t.notMatch(refusal.stack ?? '', /\n\s+at /, 'no frames for a 401');
  t.equal(refusal.message, 'Unauthorized: invalid token');
  t.equal(refusal.status, 401);
  t.equal(refusal.reason, 'signature');
  t.equal(refusal.detail, 'signature does not verify');
  t.notMatch(new GatewayError(403, 'Forbidden').stack ?? '', /\n\s+at /, 'no frames for a 403');
  t.match(new BadGatewayError('upstream down').stack ?? '', /\n\s+at /, 'a 502 keeps its frames');
  t.equal(Error.stackTraceLimit, before, 'Error.stackTraceLimit restored');
  t.match(new Error('ordinary').stack ?? '', /\n\s+at /, 'other errors are unaffected');
});
