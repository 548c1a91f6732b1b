// The bearer token of a request, from the Authorization header only (RFC 6750 §2.1). Other
// places a token could hide (the access_token query parameter, a form body) are refused
// elsewhere; this function only reads the header and refuses anything ambiguous.
import type { IncomingHttpHeaders } from 'node:http';
import { InvalidRequestError, InvalidTokenError } from '../errors.js';

/** RFC 7235 token (the auth-scheme) followed by the rest of the value. */
const SCHEME = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?: (.*))?$/s;
/** RFC 7235 token68. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The bearer token, or null when the request has no Authorization header.
 * Throws InvalidRequestError (400) for two Authorization headers or a malformed Bearer value,
 * InvalidTokenError('unsupported_scheme') (401) for another scheme (Basic, Digest, …).
 * `rawHeaders` is Node's flat [name, value, …] list: `headers` keeps only the first
 * Authorization header, so duplicates are counted there.
 */
export function bearerToken(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): string | null {
  const value = headers.authorization;
  if (value === undefined) return null;

  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization' && ++count > 1) {
      throw new InvalidRequestError('Bad request: more than one Authorization header');
    }
  }

  const m = SCHEME.exec(value);
  if (m === null) throw new InvalidRequestError('Bad request: malformed Authorization header');
  if (m[1]!.toLowerCase() !== 'bearer') {
    throw new InvalidTokenError('unsupported_scheme', `Authorization scheme ${m[1]!.slice(0, 20)} is not Bearer`);
  }
  const token = m[2];
  if (token === undefined || !TOKEN68.test(token)) {
    throw new InvalidRequestError('Bad request: malformed Bearer token');
  }
  return token;
}
