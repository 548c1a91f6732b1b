// The `login:` section: browser sign-in per CDF project and the session that follows it.
// Cross-section rules (a project's issuer must be trusted, a route's `login` must name a project)
// are checked in load.ts, where every section is at hand.

import type { LoginConfig, LoginProjectConfig, RedisConfig } from './types.js';
import {
  INVALID, MAX_TIMER_MS,
  array, childPath, httpUrl, httpUrlProblem, int, object, oneOf, record, refine, report,
  required, scopeToken, secret, secretList, str, withDefault,
  type Checked, type Schema,
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

const authorizationParams: Schema<Record<string, string>> = record(
  str((s) => (/[\u0000-\u001f\u007f]/.test(s) ? 'must not contain control characters' : undefined)),
  (k) => RESERVED_AUTH_PARAMS.has(k) ? 'is set by the gateway itself' : (/^[A-Za-z0-9_.-]+$/.test(k) ? undefined : 'must be a parameter name'),
);

const projectSchema = object({
  issuer: required(httpUrl({ query: false })),
  clientId: required(str()),
  clientSecret: secret(undefined, true),
  tokenEndpointAuthMethod: withDefault(oneOf(['client_secret_basic', 'client_secret_post'] as const), 'client_secret_basic' as const),
  scopes: withDefault(array(str(scopeToken), { min: 1 }), [...DEFAULT_LOGIN_SCOPES]),
  resource: withDefault(str(), null),
  authorizationParams: withDefault(authorizationParams, {} as Record<string, string>),
  errorRedirect: withDefault(str(), null),
});

const projectsSchema: Schema<Record<string, LoginProjectConfig>> = refine(
  record(projectSchema, (k) => PROJECT_NAME.test(k) ? undefined : 'project names use lower-case letters, digits and - (as CDF does)'),
  (projects, path, ctx): Checked<Record<string, LoginProjectConfig>> => {
    if (Object.keys(projects).length === 0) return report(ctx, path, 'required: at least one project');
    let ok = true;
    for (const [name, p] of Object.entries(projects)) {
      if (!p.scopes.includes('openid')) {
        report(ctx, childPath(childPath(path, name), 'scopes'), 'must include openid');
        ok = false;
      }
    }
    return ok ? Object.fromEntries(Object.entries(projects).map(([name, p]) => [name, { name, ...p }])) : INVALID;
  },
);

const redisUrl = str((s) => {
  if (/[\s\u0000-\u001f\u007f]/.test(s)) return 'must not contain whitespace or control characters';
  let u: URL;
  try { u = new URL(s); } catch { return 'must be a redis:// or rediss:// URL'; }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return 'must be a redis:// or rediss:// URL';
  if (u.password !== '') return 'must not contain a password: use login.redis.password or passwordFile';
  return undefined;
});

const redisSchema: Schema<RedisConfig> = object({
  url: required(redisUrl),
  password: secret(undefined, true),
  keyPrefix: withDefault(str(), 'cdf-gw:'),
});

const originList = array(refine(httpUrl({ path: false }), (s) => new URL(s).origin));

export const loginSchema: Schema<LoginConfig> = refine(object({
  cookieSecret: secretList(cookieSecretProblem),
  sessionTtlSec: withDefault(int({ min: 60, max: 30 * 86400 }), 28800),
  idleTimeoutSec: withDefault(int({ min: 60, max: 30 * 86400 }), 3600),
  sessionStore: withDefault(oneOf(['cookie', 'redis'] as const), 'cookie' as const),
  redis: withDefault(redisSchema, null),
  allowedRedirectOrigins: withDefault(originList, [] as string[]),
  refreshBeforeSec: withDefault(int({ min: 0, max: 3600 }), 60),
  flowTtlSec: withDefault(int({ min: 30, max: Math.floor(MAX_TIMER_MS / 1000) }), 600),
  projects: required(projectsSchema),
}), (l, path, ctx): Checked<LoginConfig> => {
  let ok = true;
  if (l.sessionStore === 'redis' && l.redis === null) {
    report(ctx, childPath(path, 'redis'), 'required when sessionStore is redis');
    ok = false;
  }
  for (const p of Object.values(l.projects)) {
    if (p.errorRedirect !== null && !p.errorRedirect.startsWith('/') && httpUrlProblem(p.errorRedirect, { query: true }) !== undefined) {
      report(ctx, `${path}.projects.${p.name}.errorRedirect`, 'must be a path starting with / or an http(s) URL');
      ok = false;
    }
  }
  const { cookieSecret, ...rest } = l;
  return ok ? { cookieSecrets: cookieSecret, ...rest } : INVALID;
});
