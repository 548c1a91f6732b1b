// Every error the gateway answers with is a GatewayError, and every refusal has a stable reason
// code (`code`): written on the access line, counted in cdf_gateway_refusals_total{route,reason},
// and what callers test (never the status number). src/http/respond.ts maps them to CDF's shape
// {"error":{"code":<status>,"message":"<safe text>"}} in one place. `message` is public text;
// `detail` is for logs only and must never hold a secret.
//
// Refusals (4xx) are expected, frequent and cheap: they capture no stack trace (nothing reads
// one: the log serializer writes type, message and detail only), share their header objects, and
// their JSON bodies are serialised once per (status, message).

export const REALM = 'cdf-auth-gateway';

/** Every refusal reason the gateway gives. */
export const REASONS = [
  // the request itself
  'bad_request', 'ambiguous_path', 'bad_host', 'token_in_url', 'invalid_request', 'method_not_allowed',
  'body_too_large', 'body_idle', 'websockets_disabled',
  // answered on the socket (src/http/app.ts): headers over maxHeaderBytes (431), headers or the
  // request not in time (408); bytes that are not HTTP/1.1 are bad_request
  'header_too_large', 'request_timeout',
  // routing
  'no_route',
  // identity
  'no_credentials', 'token_expired', 'token_not_yet_valid', 'bad_signature', 'unknown_kid', 'unknown_issuer',
  'bad_algorithm', 'bad_audience', 'bad_claim', 'malformed_token', 'token_too_large', 'crit_header',
  'unsupported_scheme', 'session_conflict', 'bad_logout_token',
  // authorization
  'cross_site', 'no_rule', 'groups_overage', 'bad_origin',
  // the gateway's own dependencies
  'keys_unavailable', 'credential_unavailable', 'session_store_unavailable', 'shared_state_unavailable', 'idp_unavailable', 'cdf_unavailable',
  'groups_unavailable',
  'login_failed', 'upstream_error', 'upstream_timeout', 'internal',
] as const;
export type Reason = (typeof REASONS)[number];

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export class GatewayError extends Error {
  /** The stable refusal reason. */
  readonly code: Reason;
  readonly status: number;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  readonly headers: Readonly<Record<string, string>>;
  /** Internal detail for the log line; never sent to the client. */
  readonly detail: string | undefined;

  constructor(status: number, message: string, opts: { headers?: Readonly<Record<string, string>>; detail?: string; cause?: unknown; code?: Reason } = {}) {
    // Error.captureStackTrace runs inside super(): with the limit at 0 it records nothing.
    const limit = Error.stackTraceLimit;
    if (status < 500) Error.stackTraceLimit = 0;
    try {
      super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.code = opts.code ?? defaultReason(status);
    this.status = status;
    this.headers = opts.headers ?? NO_HEADERS;
    this.detail = opts.detail;
  }
}

function defaultReason(status: number): Reason {
  switch (status) {
    case 401: return 'no_credentials';
    case 403: return 'no_rule';
    case 404: return 'no_route';
    case 405: return 'method_not_allowed';
    case 408: return 'body_idle';
    case 413: return 'body_too_large';
    case 502: return 'upstream_error';
    case 504: return 'upstream_timeout';
    default: return status < 500 ? 'bad_request' : 'internal';
  }
}

function bearerChallenge(error?: string, description?: string): string {
  let v = `Bearer realm="${REALM}"`;
  if (error) v += `, error="${error}"`;
  if (description) v += `, error_description="${description.replace(/["\\]/g, '')}"`;
  return v;
}

const MISSING_TOKEN_HEADERS = Object.freeze({ 'www-authenticate': bearerChallenge() });
const INVALID_TOKEN_HEADERS = Object.freeze({ 'www-authenticate': bearerChallenge('invalid_token', 'The access token is invalid') });
const INSUFFICIENT_SCOPE_HEADERS = Object.freeze({ 'www-authenticate': bearerChallenge('insufficient_scope') });

export class BadRequestError extends GatewayError {
  constructor(message: string, detail?: string, code: Reason = 'bad_request') { super(400, message, { detail, code }); }
}

/** Malformed credentials (two Authorization headers, bad Bearer syntax, token in the URL). */
export class InvalidRequestError extends GatewayError {
  constructor(message: string, detail?: string, code: Reason = 'invalid_request') {
    super(400, message, { detail, code, headers: { 'www-authenticate': bearerChallenge('invalid_request', message) } });
  }
}

/** No credentials presented. */
export class MissingTokenError extends GatewayError {
  constructor() {
    super(401, 'Unauthorized: a bearer token is required', { headers: MISSING_TOKEN_HEADERS });
  }
}

/** The gateway's own session endpoints (/auth/userinfo) without a session: said in a person's words. */
export class NotSignedInError extends GatewayError {
  constructor() {
    super(401, 'Unauthorized: not signed in', { headers: { 'www-authenticate': bearerChallenge() } });
  }
}

/** InvalidTokenError's fine-grained kind → the stable refusal reason. */
function tokenReason(kind: string): Reason {
  switch (kind) {
    case 'expired': return 'token_expired';
    case 'signature': return 'bad_signature';
    case 'unknown_kid': return 'unknown_kid';
    case 'unknown_issuer': return 'unknown_issuer';
    case 'alg': return 'bad_algorithm';
    case 'crit': return 'crit_header';
    case 'too_large': return 'token_too_large';
    case 'malformed': return 'malformed_token';
    case 'unsupported_scheme': return 'unsupported_scheme';
    case 'claim:aud': return 'bad_audience';
    case 'claim:nbf': return 'token_not_yet_valid';
    default: return 'bad_claim';
  }
}

/** A token was presented and is not acceptable. `reason` is the verifier's kind; `detail` says why (logged, not sent). */
export class InvalidTokenError extends GatewayError {
  readonly reason: string;
  constructor(reason: string, detail?: string, cause?: unknown) {
    super(401, 'Unauthorized: invalid token', { detail: detail ?? reason, cause, code: tokenReason(reason), headers: INVALID_TOKEN_HEADERS });
    this.reason = reason;
  }
}

export class InsufficientScopeError extends GatewayError {
  constructor(code: Reason = 'no_rule', detail?: string) {
    super(403, 'Forbidden', { code, detail, headers: INSUFFICIENT_SCOPE_HEADERS });
  }
}

/** A cookie-authenticated request that changes state without proof that the page is ours. */
export class CrossSiteError extends GatewayError {
  constructor() { super(403, 'Forbidden: cross-site request', { code: 'cross_site' }); }
}

export class NotFoundError extends GatewayError {
  constructor() { super(404, 'Not found'); }
}

/**
 * The methods the gateway forwards; every other one gets 405 on every path and is never
 * forwarded: TRACE (echoes the request, upstream credential included), CONNECT, and the
 * extension methods (WebDAV's PROPFIND, MKCOL…, cache PURGE, LINK, SEARCH, QUERY) that no rule
 * and no upstream here was written for.
 */
export const ALLOWED_METHOD_LIST: readonly string[] = Object.freeze(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
export const ALLOWED_METHODS = ALLOWED_METHOD_LIST.join(', ');
const ALLOWED_METHOD_SET: ReadonlySet<string> = new Set(ALLOWED_METHOD_LIST);
/** Whether the gateway forwards `method` (case-sensitive, RFC 9110 §9.1). */
export function isAllowedMethod(method: string): boolean {
  return ALLOWED_METHOD_SET.has(method);
}
export class MethodNotAllowedError extends GatewayError {
  constructor(method: string) {
    super(405, 'Method not allowed', { detail: `method ${method}`, headers: { allow: ALLOWED_METHODS } });
  }
}

/** The request body stopped arriving for server.bodyIdleTimeoutMs. */
export class RequestTimeoutError extends GatewayError {
  constructor(detail: string) { super(408, 'Request timeout: the request body stopped arriving', { detail }); }
}

export class PayloadTooLargeError extends GatewayError {
  constructor() { super(413, 'Payload too large'); }
}

/** The issuer has no usable key set (never fetched, or older than jwksMaxStaleMs): fail closed. */
export class KeysUnavailableError extends GatewayError {
  constructor(detail: string, cause?: unknown) {
    super(503, 'Service unavailable: token keys cannot be fetched', { detail, cause, code: 'keys_unavailable', headers: { 'retry-after': '5' } });
  }
}

/** The upstream's own credential (client-credentials token) cannot be obtained. */
export class CredentialUnavailableError extends GatewayError {
  constructor(detail: string, cause?: unknown) {
    super(503, 'Service unavailable: upstream credential cannot be obtained', { detail, cause, code: 'credential_unavailable', headers: { 'retry-after': '5' } });
  }
}

/** CDF's token/inspect cannot be asked (unreachable, timeout, 5xx, garbage): never allow without it. */
export class CdfUnavailableError extends GatewayError {
  constructor(detail: string, cause?: unknown) {
    super(503, 'Service unavailable: CDF cannot be asked about this token', { detail, cause, code: 'cdf_unavailable', headers: { 'retry-after': '5' } });
  }
}

/** Entra groups overage: Microsoft Graph cannot tell the caller's groups. */
export class GroupsUnavailableError extends GatewayError {
  constructor(detail: string, cause?: unknown) {
    super(503, 'Service unavailable: group memberships cannot be resolved', { detail, cause, code: 'groups_unavailable', headers: { 'retry-after': '5' } });
  }
}

export class BadGatewayError extends GatewayError {
  constructor(detail: string, cause?: unknown) { super(502, 'Bad gateway', { detail, cause }); }
}

export class GatewayTimeoutError extends GatewayError {
  constructor(detail: string, cause?: unknown) { super(504, 'Gateway timeout', { detail, cause }); }
}

/** The IdP unreachable or failing while finishing a login: 502, or 504 when it timed out. */
export class IdpFailedError extends GatewayError {
  constructor(timedOut: boolean, detail: string) {
    super(timedOut ? 504 : 502, timedOut ? 'Gateway timeout: the identity provider did not answer' : 'Bad gateway: the identity provider failed', {
      detail, code: 'idp_unavailable',
    });
  }
}

/** Serialised bodies by status and message: refusals repeat a handful of fixed texts. */
const BODIES = new Map<string, string>();
const BODIES_MAX = 256;

/** CDF's error shape, `{"error":{"code":<status>,"message":"<message>"}}`, serialised once per (status, message). */
export function errorBody(status: number, message: string): string {
  const key = `${status} ${message}`;
  let body = BODIES.get(key);
  if (body === undefined) {
    body = JSON.stringify({ error: { code: status, message } });
    // Messages are fixed texts in practice; a bound keeps a message with variable text from growing it.
    if (BODIES.size >= BODIES_MAX) BODIES.clear();
    BODIES.set(key, body);
  }
  return body;
}

/** The credentials presented are not acceptable (as opposed to an outage: keys, IdP, store). */
export function isAuthenticationFailure(err: GatewayError): boolean {
  return err instanceof InvalidTokenError || err instanceof MissingTokenError;
}

/** A response body from an IdP (key set, discovery, token endpoint) exceeded its size limit. Internal: never answered as is. */
export class ResponseTooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`response body larger than ${limit} bytes`);
    this.name = 'ResponseTooLargeError';
    this.limit = limit;
  }
}

/** Back-channel logout (BCL 1.0 §2.8): a logout token that is not acceptable. `detail` says why. */
export class LogoutTokenError extends GatewayError {
  constructor(detail: string) {
    super(400, 'Bad request: invalid logout token', { detail, code: 'bad_logout_token', headers: { 'cache-control': 'no-store' } });
    this.name = 'LogoutTokenError';
  }
}

/** The redis the replicas share cannot be reached: 503, the caller may retry. */
export class SharedStateUnavailable extends GatewayError {
  constructor(detail: string, cause?: unknown) {
    super(503, 'Service unavailable: shared state cannot be reached', { detail, cause, code: 'shared_state_unavailable', headers: { 'retry-after': '5' } });
    this.name = 'SharedStateUnavailable';
  }
}
