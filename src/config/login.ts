// The `login:` section: browser sign-in per CDF project and the session that follows it.
// Cross-section rules (a project's issuer must be trusted, a route's `login` must name a project)
// are checked in relations.ts, where every section is at hand.

import {
  INVALID, array, childPath, clientSecretProblem, httpUrl, httpUrlProblem, int, isAbsent, MAX_TIMER_MS, object, oneOf, peek, record,
  redactUrl, refine, report, required, scopeToken, secret, secretList, str, withDefault,
  type Field, type Infer,
} from './schema.js';

export const DEFAULT_LOGIN_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
const MIN_SECRET_BYTES = 32;
const PROJECT_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

const cookieSecretProblem = (s: string): string | undefined =>
  Buffer.byteLength(s) < MIN_SECRET_BYTES ? `must be at least ${MIN_SECRET_BYTES} bytes (e.g. openssl rand -base64 48)` : undefined;

/** Parameters the flow sets itself; letting the config override them would break it. */
const RESERVED_AUTH_PARAMS = new Set([
  'client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce',
  'code_challenge', 'code_challenge_method', 'resource', 'request', 'request_uri',
]);

const authorizationParams = record(
  str((s) => (/[\u0000-\u001f\u007f]/.test(s) ? 'must not contain control characters' : undefined)),
  (k) => RESERVED_AUTH_PARAMS.has(k) ? 'is set by the gateway itself' : (/^[A-Za-z0-9_.-]+$/.test(k) ? undefined : 'must be a parameter name'),
);

const TOKEN_ENDPOINT_AUTH = ['client_secret_basic', 'client_secret_post'] as const;

const loginScopes = refine(array(str(scopeToken), { min: 1 }), (scopes, path, ctx) =>
  scopes.includes('openid') ? scopes : report(ctx, path, 'must include openid'));

export const projectSchema = object({
  /** OIDC issuer, discovered at `${issuer}/.well-known/openid-configuration`; must be in `issuers`. */
  issuer: required(httpUrl({ query: false })),
  clientId: required(str()),
  /** null: a public client (PKCE only, token_endpoint_auth_method none). */
  clientSecret: secret(clientSecretProblem, true),
  tokenEndpointAuthMethod: withDefault(oneOf(TOKEN_ENDPOINT_AUTH), 'client_secret_basic' as (typeof TOKEN_ENDPOINT_AUTH)[number]),
  scopes: withDefault(loginScopes, [...DEFAULT_LOGIN_SCOPES] as string[]),
  /** RFC 8707 resource indicator: the access token's audience. */
  resource: withDefault(str(), null),
  /** Extra authorization request parameters (e.g. prompt, domain_hint). */
  authorizationParams: withDefault(authorizationParams, {} as Record<string, string>),
  /** Where failed logins land when the login did not name an error destination. */
  errorRedirect: withDefault(str((s) => s.startsWith('/') || httpUrlProblem(s, { query: true }) === undefined
    ? undefined : 'must be a path starting with / or an http(s) URL', { redact: redactUrl }), null),
});

export const projectsSchema = refine(
  record(projectSchema, (k) => PROJECT_NAME.test(k) ? undefined : 'project names use lower-case letters, digits and - (as CDF does)'),
  (projects, path, ctx) => {
    if (Object.keys(projects).length === 0) return report(ctx, path, 'required: at least one project');
    /** Each project carries its name (the key under `login.projects`: the CDF project). */
    return Object.fromEntries(Object.entries(projects).map(([name, p]) => [name, { name, ...p }]));
  },
);

export const redisUrl = str((s) => {
  if (/[\s\u0000-\u001f\u007f]/.test(s)) return 'must not contain whitespace or control characters';
  let u: URL;
  try { u = new URL(s); } catch { return 'must be a redis:// or rediss:// URL'; }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return 'must be a redis:// or rediss:// URL';
  if (u.password !== '') return 'must not contain a password: use password or passwordFile';
  return undefined;
}, { redact: redactUrl });

const redisSchema = object({
  url: required(redisUrl),
  password: secret(undefined, true),
  keyPrefix: withDefault(str(), 'cdf-gw:'),
});

const SESSION_STORES = ['cookie', 'redis'] as const;
const sessionStore = oneOf(SESSION_STORES);

/** `redis` follows `sessionStore`: required with `redis`, a contradiction with an explicit `cookie`. */
function redisField(): Field<Infer<typeof redisSchema> | null> {
  return {
    keys: (name) => [name],
    read(obj, name, path, ctx) {
      const p = childPath(path, name);
      const store = peek(sessionStore, obj.sessionStore, ctx);
      if (isAbsent(obj[name])) return store === 'redis' ? report(ctx, p, 'required when sessionStore is redis') : null;
      const r = redisSchema.check(obj[name], p, ctx);
      if (r === INVALID) return INVALID;
      return store === 'cookie' ? report(ctx, p, 'is set, but sessionStore is cookie: remove one of the two') : r;
    },
  };
}

const originList = array(refine(httpUrl({ path: false }), (s) => new URL(s).origin));

export const loginSchema = refine(object({
  /** AES key material, newest first: seal with the first, open with any. Each ≥ 32 bytes. */
  cookieSecret: secretList(cookieSecretProblem),
  /** Absolute session lifetime. */
  sessionTtlSec: withDefault(int({ min: 60, max: 30 * 86400 }), 28800),
  idleTimeoutSec: withDefault(int({ min: 60, max: 30 * 86400 }), 3600),
  /** Default: redis when `redis` is given, else cookie. */
  sessionStore: withDefault(sessionStore, undefined),
  redis: redisField(),
  /** Origins (scheme://host[:port]) besides publicUrl's that redirects may go to. */
  allowedRedirectOrigins: withDefault(originList, [] as string[]),
  /** Refresh the access token this long before exp. */
  refreshBeforeSec: withDefault(int({ min: 0, max: 3600 }), 60),
  /** Lifetime of the login-flow cookie. */
  flowTtlSec: withDefault(int({ min: 30, max: Math.floor(MAX_TIMER_MS / 1000) }), 600),
  projects: required(projectsSchema),
}), (l) => {
  const { cookieSecret, sessionStore: store, ...rest } = l;
  return { cookieSecrets: cookieSecret, ...rest, sessionStore: store ?? (l.redis === null ? 'cookie' : 'redis') };
});
