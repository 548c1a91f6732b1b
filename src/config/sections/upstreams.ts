// The `upstreams` section: where routes send requests, and the credential each one receives.

import {
  array, clientSecretProblem, headerValueProblem, httpUrl, int, isToken, literal, object, oneOf, record, redactUrl, refine, report, required, scopeToken, secret,
  str, tagged, targetPathProblem, withDefault,
} from '../schema.js';
import { positiveMs } from './server.js';

/** Headers an api-key credential may not set: hop-by-hop, framing, and the gateway's own. */
const RESERVED_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'content-length', 'forwarded',
]);

function apiKeyHeaderProblem(s: string): string | undefined {
  const h = s.toLowerCase();
  if (!isToken(h)) return 'must be a valid header name';
  if (RESERVED_HEADERS.has(h) || h.startsWith('x-forwarded-') || h.startsWith('x-auth-request-')) {
    return 'must not be a hop-by-hop, host, framing or gateway-managed header';
  }
  return undefined;
}

const CREDENTIAL_KEYS: Record<string, readonly string[]> = {};
const credentialHint = (type: string) => (key: string): string | undefined => {
  const users = Object.entries(CREDENTIAL_KEYS).filter(([t, keys]) => t !== type && keys.includes(key)).map(([t]) => t);
  return users.length > 0 ? `used by type ${users.join(', ')}, not ${type}` : undefined;
};

const TOKEN_ENDPOINT_AUTH = ['client_secret_basic', 'client_secret_post'] as const;

const credentialVariants = {
  /** Forwards the caller's own verified bearer token. */
  'user-token': object({ type: required(literal('user-token')) }, { unknownHint: credentialHint('user-token') }),
  /** Sends no credential (identity headers only). */
  none: object({ type: required(literal('none')) }, { unknownHint: credentialHint('none') }),
  'api-key': object({
    type: required(literal('api-key')),
    /** Stored lower-case. */
    header: withDefault(refine(str(apiKeyHeaderProblem), (h) => h.toLowerCase()), 'api-key'),
    value: secret(headerValueProblem),
  }, { unknownHint: credentialHint('api-key') }),
  'client-credentials': object({
    type: required(literal('client-credentials')),
    tokenUrl: required(httpUrl({ query: true })),
    clientId: required(str()),
    clientSecret: secret(clientSecretProblem),
    scopes: withDefault(array(str(scopeToken)), [] as string[]),
    /** RFC 8707 resource indicator. */
    resource: withDefault(str(), null),
    /** `audience` parameter (Auth0 style). */
    audience: withDefault(str(), null),
    tokenEndpointAuthMethod: withDefault(oneOf(TOKEN_ENDPOINT_AUTH), 'client_secret_basic' as (typeof TOKEN_ENDPOINT_AUTH)[number]),
    /** Renew the token this long before it expires. */
    renewBeforeSec: withDefault(int({ min: 0, max: 86400 }), 60),
    /** Token endpoint request timeout. */
    timeoutMs: withDefault(positiveMs, 5000),
  }, { unknownHint: credentialHint('client-credentials') }),
};
for (const [type, schema] of Object.entries(credentialVariants)) CREDENTIAL_KEYS[type] = schema.knownKeys;

export const credentialsSchema = tagged('type', credentialVariants);

/**
 * Origin plus optional base path, no query; stored without a trailing '/'. The base path must be
 * one the request-target parser reads as written: every upstream path starts with it.
 */
const upstreamUrl = refine(httpUrl({ query: false }), (s, path, ctx) => {
  const u = new URL(s);
  const problem = targetPathProblem(u.pathname);
  return problem === undefined ? u.origin + u.pathname.replace(/\/+$/, '') : report(ctx, path, `has an unusable base path: ${problem}`, redactUrl(s));
});

const upstreamSchema = object({
  url: required(upstreamUrl),
  /** How long to wait for the upstream's response. */
  timeoutMs: withDefault(positiveMs, 30000),
  credentials: required(credentialsSchema, 'required (type: user-token | client-credentials | api-key | none)'),
});

const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export const upstreamsSchema = refine(
  record(upstreamSchema, (k) => UPSTREAM_NAME.test(k) ? undefined : 'upstream names use letters, digits, _ and - (and start with a letter or digit)'),
  /** Each upstream carries its own name (the key under `upstreams`). */
  (ups) => Object.fromEntries(Object.entries(ups).map(([name, u]) => [name, { name, ...u }])),
);
