// Who is calling, derived once from a verified token's claims and shared by policy, headers
// and credentials. Immutable; cached with the verified token. It never holds the token itself:
// the cache outlives requests, and only a `user-token` upstream needs the token, for the one
// request it forwards (see upstream/credentials.ts).
import type { JWTPayload } from 'jose';
import { InvalidTokenError } from '../errors.js';

export interface Principal {
  readonly sub: string;
  /** `email` claim, or null. */
  readonly email: string | null;
  /** `groups` claim (array of strings; anything else ignored). */
  readonly groups: readonly string[];
  /** Union of `scp` (space-separated string or array) and `scope` (space-separated string). */
  readonly scopes: ReadonlySet<string>;
  /** Exact `iss` of the token. */
  readonly issuer: string;
  /** `exp` in milliseconds since the epoch. */
  readonly expiresAt: number;
  /** `groups` joined with ',' for X-Auth-Request-Groups (precomputed, header-safe). */
  readonly groupsHeader: string;
}

/** Printable ASCII without ',' and without leading/trailing space: safe inside a comma list header. */
const GROUP_HEADER_SAFE = /^[\x21-\x2b\x2d-\x7e](?:[\x20-\x2b\x2d-\x7e]*[\x21-\x2b\x2d-\x7e])?$/;
/** Printable ASCII (sub and email end up in X-Auth-Request-User/-Email). */
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

function addScopes(into: Set<string>, value: unknown): void {
  if (typeof value === 'string') {
    for (const s of value.split(' ')) if (s !== '') into.add(s);
  } else if (Array.isArray(value)) {
    for (const s of value) if (typeof s === 'string' && s !== '') into.add(s);
  }
}

/**
 * Claims of a verified token → Principal. The caller has verified the signature and the claim
 * set (iss, aud, exp, …). Throws InvalidTokenError('claim:sub') when `sub` is not a non-empty
 * printable-ASCII string (it becomes X-Auth-Request-User), 'claim:exp' when `exp` is not a number.
 *
 * - groups: the string entries of a `groups` array (anything else ignored). groupsHeader joins
 *   those that are header-safe (printable ASCII, no ',', no surrounding space); an unsafe entry is
 *   left out whole rather than altered, so a header value never names a group the token lacks.
 * - scopes: union of `scp` (space-separated string or array) and `scope` (string or array).
 * - email: the `email` claim when it is a printable-ASCII string, else null.
 */
export function principalFromClaims(payload: JWTPayload): Principal {
  const { sub, exp, iss } = payload;
  if (typeof sub !== 'string' || !HEADER_SAFE.test(sub)) throw new InvalidTokenError('claim:sub', 'sub is not a printable string');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new InvalidTokenError('claim:exp', 'exp is not a number');
  if (typeof iss !== 'string') throw new InvalidTokenError('claim:iss', 'iss is not a string');

  const groups: string[] = [];
  const headerGroups: string[] = [];
  const rawGroups = payload.groups;
  if (Array.isArray(rawGroups)) {
    for (const g of rawGroups) {
      if (typeof g !== 'string') continue;
      groups.push(g);
      if (GROUP_HEADER_SAFE.test(g)) headerGroups.push(g);
    }
  }
  const scopes = new Set<string>();
  addScopes(scopes, payload.scp);
  addScopes(scopes, payload.scope);
  const email = typeof payload.email === 'string' && HEADER_SAFE.test(payload.email) ? payload.email : null;

  return Object.freeze({
    sub,
    email,
    groups: Object.freeze(groups),
    scopes: scopes as ReadonlySet<string>,
    issuer: iss,
    expiresAt: exp * 1000,
    groupsHeader: headerGroups.join(','),
  });
}

/** V8 heap bytes of a string: header plus one byte per character (two for non-Latin-1), rounded up. */
function stringBytes(s: string): number {
  // eslint-disable-next-line no-control-regex
  const width = /[^\x00-\xff]/.test(s) ? 2 : 1;
  return 16 + ((s.length * width + 7) & ~7);
}

/**
 * An estimate of the heap a Principal retains (its object, strings, arrays and set), used to
 * bound the verified-token cache in bytes. Large tokens (hundreds of groups) weigh what they hold.
 */
export function principalBytes(p: Principal): number {
  let n = 350; // the frozen object, the groups array, the scopes Set (measured: ~530 bytes for a typical small token)
  n += stringBytes(p.sub) + (p.email === null ? 0 : stringBytes(p.email)) + stringBytes(p.groupsHeader);
  for (const g of p.groups) n += 8 + stringBytes(g);
  for (const s of p.scopes) n += 24 + stringBytes(s);
  return n;
}
