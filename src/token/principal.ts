// Who is calling, derived once from a verified token's claims and shared by policy, headers
// and credentials. Immutable; cached with the verified token. It never holds the token itself:
// the cache outlives requests, and only a `user-token` upstream needs the token, for the one
// request it forwards (see upstream/credentials.ts). Where groups, scopes and the audience live
// depends on the issuer's profile (IdPs disagree); the claim paths are compiled once per issuer
// (claimMap) so a token costs a few property reads.
import type { JWTPayload } from 'jose';
import type { IssuerProfile } from '../config/types.js';
import { InvalidTokenError } from '../errors.js';

/** A claim path: property names from the payload down (['realm_access', 'roles']). */
export type ClaimPath = readonly string[];

export interface ClaimMap {
  readonly profile: IssuerProfile;
  readonly groups: ClaimPath;
  /** Every path is read; their scopes are united. */
  readonly scopes: readonly ClaimPath[];
  /** Where the audience is; ['aud'] is checked by jose, anything else by the verifier. */
  readonly audience: ClaimPath;
}

interface ProfileDefaults { readonly groups: string; readonly scopes: readonly string[]; readonly audience: string }

/**
 * Where each IdP puts things in its access tokens:
 * - generic, entra: `groups`; `scp` (string or array) and `scope`; `aud`.
 * - cognito: `cognito:groups`; `scope`; `client_id` (Cognito access tokens have no `aud`).
 * - auth0: `groups` (a custom claim; namespaced ones are set with groupsClaim); `scope` and RBAC
 *   `permissions`; `aud` (an array including the userinfo URL).
 * - keycloak: `realm_access.roles` (realm roles; groupsClaim: groups with a group mapper); `scope`; `aud`.
 */
const PROFILES: Readonly<Record<IssuerProfile, ProfileDefaults>> = {
  generic: { groups: 'groups', scopes: ['scp', 'scope'], audience: 'aud' },
  entra: { groups: 'groups', scopes: ['scp', 'scope'], audience: 'aud' },
  cognito: { groups: 'cognito:groups', scopes: ['scope'], audience: 'client_id' },
  auth0: { groups: 'groups', scopes: ['scope', 'permissions'], audience: 'aud' },
  keycloak: { groups: 'realm_access.roles', scopes: ['scope'], audience: 'aud' },
};

/** A namespaced claim (Auth0's `https://example.com/groups`) is one name; anything else splits at '.'. */
export function compilePath(path: string): ClaimPath {
  return Object.freeze(/^https?:\/\//.test(path) ? [path] : path.split('.'));
}

/** The issuer keys a claim map is compiled from (absent: the generic profile's). */
export interface ClaimSettings {
  readonly profile?: IssuerProfile;
  readonly groupsClaim?: string | null;
  readonly scopesClaim?: string | null;
  readonly audienceClaim?: string | null;
}

export function claimMap(issuer: ClaimSettings): ClaimMap {
  const profile = issuer.profile ?? 'generic';
  const d = PROFILES[profile];
  return Object.freeze({
    profile,
    groups: compilePath(issuer.groupsClaim ?? d.groups),
    scopes: Object.freeze(issuer.scopesClaim != null ? [compilePath(issuer.scopesClaim)] : d.scopes.map(compilePath)),
    audience: compilePath(issuer.audienceClaim ?? d.audience),
  });
}

export const GENERIC_CLAIMS: ClaimMap = claimMap({});

/** A string or an array of strings, one of which is accepted (jose's rule for `aud`). */
export function audienceMatches(value: unknown, accepted: readonly string[]): boolean {
  if (typeof value === 'string') return accepted.includes(value);
  return Array.isArray(value) && value.some((v) => typeof v === 'string' && accepted.includes(v));
}

/** The value at `path`, or undefined; own properties only (never the prototype's). */
export function readClaim(payload: Readonly<Record<string, unknown>>, path: ClaimPath): unknown {
  let v: unknown = payload;
  for (let i = 0; i < path.length; i++) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, path[i]!)) return undefined;
    v = (v as Record<string, unknown>)[path[i]!];
  }
  return v;
}

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
  /**
   * Entra groups overage: the token names no groups because the user has too many
   * (`_claim_names.groups` or `hasgroups: true`); `groups` is empty and means "unknown".
   */
  readonly groupsOverage?: boolean;
  /** Entra's `oid` (the user's object ID, what Graph is asked about), or null. */
  readonly oid?: string | null;
  /**
   * `sub`, `email` and `groupsHeader` were checked to be header values when the principal was
   * made (principalFromClaims), so the identity headers need not scan them on every request (a
   * cached principal's ~7 KB groups header, 185 Entra groups: 4.4 µs a request to scan, Node 24).
   */
  readonly headerSafe?: true;
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
export function principalFromClaims(payload: JWTPayload, map: ClaimMap = GENERIC_CLAIMS): Principal {
  const { sub, exp, iss } = payload;
  if (typeof sub !== 'string' || !HEADER_SAFE.test(sub)) throw new InvalidTokenError('claim:sub', 'sub is not a printable string');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new InvalidTokenError('claim:exp', 'exp is not a number');
  if (typeof iss !== 'string') throw new InvalidTokenError('claim:iss', 'iss is not a string');
  // Cognito signs ID tokens with the same keys: only its access tokens are bearer credentials.
  if (map.profile === 'cognito' && payload.token_use !== 'access') throw new InvalidTokenError('claim:token_use', 'not a Cognito access token');

  const groups: string[] = [];
  const headerGroups: string[] = [];
  const rawGroups = map.groups.length === 1 && map.groups[0] === 'groups' ? payload.groups : readClaim(payload, map.groups);
  if (Array.isArray(rawGroups)) {
    for (const g of rawGroups) {
      if (typeof g !== 'string') continue;
      groups.push(g);
      if (GROUP_HEADER_SAFE.test(g)) headerGroups.push(g);
    }
  }
  const scopes = new Set<string>();
  for (let i = 0; i < map.scopes.length; i++) addScopes(scopes, readClaim(payload, map.scopes[i]!));
  const email = typeof payload.email === 'string' && HEADER_SAFE.test(payload.email) ? payload.email : null;
  const groupsOverage = rawGroups === undefined && isOverage(payload);

  return Object.freeze({
    sub,
    email,
    groups: Object.freeze(groups),
    scopes: scopes as ReadonlySet<string>,
    issuer: iss,
    expiresAt: exp * 1000,
    groupsHeader: headerGroups.join(','),
    groupsOverage,
    oid: typeof payload.oid === 'string' && payload.oid !== '' ? payload.oid : null,
    headerSafe: true,
  });
}

/** Entra's overage markers: `_claim_names.groups` (v1, code flow) or `hasgroups: true` (implicit). */
function isOverage(payload: JWTPayload): boolean {
  if (payload.hasgroups === true) return true;
  const names = payload._claim_names;
  return names !== null && typeof names === 'object' && Object.hasOwn(names, 'groups');
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
