// The `issuers` and `tokens` sections: whom bearer tokens are trusted from, and the guards on them.

import { adaptive, array, httpUrl, int, MAX_TIMER_MS, object, oneOf, refine, strings, required, uniqueBy, withDefault } from '../schema.js';
import * as defaults from '../defaults.js';
import type { Explicit } from '../defaults.js';
import { positiveMs } from './server.js';
import { issuerProfileFields, refineIssuer } from '../cdf.js';

export const ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

export const issuerSchema = object({
  /** Compared exactly, as written, with a token's `iss`. */
  issuer: required(httpUrl({ query: false })),
  /** null: discovered from `${issuer}/.well-known/openid-configuration`. */
  jwksUri: withDefault(httpUrl({ query: true }), null),
  /** A token's `aud` must contain one of these. */
  audiences: required(strings()),
  algorithms: withDefault(array(oneOf(ALGORITHMS, {
    explain: (s) => /^(none|HS\d*)$/i.test(s) ? 'is symmetric or unsigned: such algorithms are never accepted' : undefined,
  }), { min: 1 }), ['RS256'] as Algorithm[]),
  /** Where groups, scopes and the audience are read; Entra groups overage (config/cdf.ts). */
  ...issuerProfileFields,
});

/** Duplicate issuers are found on the values as written, even in entries with other problems. */
export const issuersSchema = uniqueBy(array(refine(issuerSchema, refineIssuer)), 'issuer', 'issuer', (item, ctx) => {
  const issuer = issuerSchema.peek(item, 'issuer', ctx);
  return issuer === undefined ? undefined : { key: issuer, shown: issuer };
});

export const tokensFields = object({
  /** Timeout of one key-set fetch. */
  jwksTimeoutMs: withDefault(positiveMs, 1000),
  /** At most one key-set fetch per issuer in this period (unknown kid or retrying a failure). */
  jwksCooldownMs: withDefault(int({ min: 0, max: MAX_TIMER_MS }), 30000),
  /** A key set this old is refreshed in the background. Default: defaults.jwksCacheMaxAgeMs. */
  jwksCacheMaxAgeMs: adaptive(positiveMs),
  /** Since the last good fetch, cached keys are used at most this long. Default: defaults.jwksMaxStaleMs. */
  jwksMaxStaleMs: adaptive(positiveMs),
  /** A fetched key set larger than this is a failed fetch. */
  jwksMaxBytes: withDefault(int({ min: 1024, max: 67_108_864 }), 1_048_576),
  /** Clock skew allowed for exp, nbf and a future iat. */
  clockToleranceSec: withDefault(int({ min: 0, max: 300 }), 30),
  /** Longer tokens are refused before any crypto. Default: defaults.maxTokenBytes. */
  maxTokenBytes: adaptive(int({ min: 512, max: 65536 })),
  /** Entries in the verified-token LRU; 0 disables it. */
  cacheSize: withDefault(int({ min: 0, max: 1_000_000 }), 10000),
});

export function tokensSchema(set: Explicit) {
  return refine(tokensFields, (t) => ({
    ...t,
    jwksCacheMaxAgeMs: defaults.jwksCacheMaxAgeMs(set),
    jwksMaxStaleMs: defaults.jwksMaxStaleMs(set),
    maxTokenBytes: defaults.maxTokenBytes(set),
    /** false: maxTokenBytes was not set and follows server.maxHeaderBytes (a reload re-derives it). */
    maxTokenBytesSet: set.tokens.maxTokenBytes !== undefined,
  }));
}
