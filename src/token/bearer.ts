// The bearer token of a request, from the Authorization header only (RFC 6750 §2.1). Other
// places a token could hide (the access_token query parameter, a form body) are refused
// elsewhere; this function only reads the header and refuses anything ambiguous.
import type { IncomingHttpHeaders } from 'node:http';
import { InvalidRequestError, InvalidTokenError } from '../errors.js';

/** RFC 7235 token: the auth-scheme. */
const SCHEME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 7235 token68. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The bearer token's candidate, or null when the request has no Authorization header.
 * Throws InvalidRequestError (400) for two Authorization headers or a malformed value,
 * InvalidTokenError('unsupported_scheme') (401) for another scheme (Basic, Digest, …).
 * `rawHeaders` is Node's flat [name, value, …] list: `headers` keeps only the first
 * Authorization header, so duplicates are counted there.
 *
 * The token itself is not checked for token68 syntax: the caller must (requireToken68) before
 * using it for anything but a cache lookup. A token found in the verified-token cache is the
 * very string that passed the check before (it scans the whole token, about half a microsecond
 * for a 1 KB one, on every request).
 */
export function bearerCandidate(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): string | null {
  const value = headers.authorization;
  if (value === undefined) return null;

  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization' && ++count > 1) {
      throw new InvalidRequestError('Bad request: more than one Authorization header');
    }
  }

  // auth-scheme [ 1*SP token68 ]: the scheme ends at the first space.
  const sp = value.indexOf(' ');
  const scheme = sp === -1 ? value : value.slice(0, sp);
  if (!SCHEME.test(scheme)) throw new InvalidRequestError('Bad request: malformed Authorization header');
  if (scheme.length !== 6 || scheme.toLowerCase() !== 'bearer') {
    throw new InvalidTokenError('unsupported_scheme', `Authorization scheme ${scheme.slice(0, 20)} is not Bearer`);
  }
  // RFC 6750 §2.1: "Bearer" 1*SP b64token — any number of spaces before the token.
  let start = sp + 1;
  while (value.charCodeAt(start) === 0x20) start++;
  if (sp === -1 || start === value.length) throw new InvalidRequestError('Bad request: malformed Bearer token');
  return value.slice(start);
}

/** Throws InvalidRequestError (400) unless the token is an RFC 7235 token68. */
export function requireToken68(token: string): void {
  if (!TOKEN68.test(token)) throw new InvalidRequestError('Bad request: malformed Bearer token');
}
