// Every error the gateway answers with is a GatewayError; server.ts maps them to CDF's shape
// {"error":{"code":<status>,"message":"<safe text>"}} in one place. `message` is public text;
// `detail` is for logs only and must never hold a secret.

export const REALM = 'cdf-auth-gateway';

export class GatewayError extends Error {
  readonly status: number;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  readonly headers: Readonly<Record<string, string>>;
  /** Internal detail for the log line; never sent to the client. */
  readonly detail: string | undefined;

  constructor(status: number, message: string, opts: { headers?: Record<string, string>; detail?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = status;
    this.headers = opts.headers ?? {};
    this.detail = opts.detail;
  }
}

function bearerChallenge(error?: string, description?: string): string {
  let v = `Bearer realm="${REALM}"`;
  if (error) v += `, error="${error}"`;
  if (description) v += `, error_description="${description.replace(/["\\]/g, '')}"`;
  return v;
}

export class BadRequestError extends GatewayError {
  constructor(message: string, detail?: string) { super(400, message, { detail }); }
}

/** Malformed credentials (two Authorization headers, bad Bearer syntax, token in the URL). */
export class InvalidRequestError extends GatewayError {
  constructor(message: string, detail?: string) {
    super(400, message, { detail, headers: { 'www-authenticate': bearerChallenge('invalid_request', message) } });
  }
}

/** No credentials presented. */
export class MissingTokenError extends GatewayError {
  constructor() {
    super(401, 'Unauthorized: a bearer token is required', { headers: { 'www-authenticate': bearerChallenge() } });
  }
}

/** A token was presented and is not acceptable. `detail` says why (logged, not sent). */
export class InvalidTokenError extends GatewayError {
  readonly reason: string;
  constructor(reason: string, detail?: string, cause?: unknown) {
    super(401, 'Unauthorized: invalid token', {
      detail: detail ?? reason, cause,
      headers: { 'www-authenticate': bearerChallenge('invalid_token', 'The access token is invalid') },
    });
    this.reason = reason;
  }
}

export class InsufficientScopeError extends GatewayError {
  constructor() {
    super(403, 'Forbidden', { headers: { 'www-authenticate': bearerChallenge('insufficient_scope') } });
  }
}

export class NotFoundError extends GatewayError {
  constructor() { super(404, 'Not found'); }
}

/** TRACE (echoes the request, upstream credential included) and CONNECT are never served. */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
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
    super(503, 'Service unavailable: token keys cannot be fetched', { detail, cause, headers: { 'retry-after': '5' } });
  }
}

/** The upstream's own credential (client-credentials token) cannot be obtained. */
export class CredentialUnavailableError extends GatewayError {
  constructor(detail: string, cause?: unknown) {
    super(503, 'Service unavailable: upstream credential cannot be obtained', { detail, cause, headers: { 'retry-after': '5' } });
  }
}

export class BadGatewayError extends GatewayError {
  constructor(detail: string, cause?: unknown) { super(502, 'Bad gateway', { detail, cause }); }
}

export class GatewayTimeoutError extends GatewayError {
  constructor(detail: string, cause?: unknown) { super(504, 'Gateway timeout', { detail, cause }); }
}

export function errorBody(status: number, message: string): string {
  return JSON.stringify({ error: { code: status, message } });
}
