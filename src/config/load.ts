// The configuration loader: YAML text → validated, deeply frozen GatewayConfig. The only place
// that reads the YAML; it sees the environment only through the `env` it is given.
// Every problem is collected before failing, each named by its key path.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument, type YAMLError } from 'yaml';

import {
  ALGORITHMS, LOG_LEVELS,
  type AdminConfig, type AllowRule, type GatewayConfig, type IssuerConfig, type RouteConfig,
  type ServerConfig, type TokensConfig, type UpstreamConfig,
} from './types.js';
import {
  INVALID, MAX_TIMER_MS,
  array, bool, canonicalPathProblem, checkKeys, childPath, cidrProblem, deepFreeze, hostName, httpUrl,
  int, isAbsent, isMapping, isToken, literal, object, oneOf, peekBool, record, refine,
  report, required, scopeToken, secret, str, strings, tagged, withDefault,
  type Checked, type ConfigProblem, type Context, type Field, type Schema,
} from './schema.js';
import { loginSchema } from './login.js';

export type { ConfigProblem } from './schema.js';

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map((p) => `${p.path}: ${p.reason}`).join('\n'));
    this.name = 'ConfigError';
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ path: p.path, reason: p.reason })));
  }
}

interface ParseOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory `*File` secrets are resolved against. */
  readonly baseDir: string;
}

const SECTIONS = ['server', 'admin', 'log', 'issuers', 'tokens', 'upstreams', 'routes', 'login'] as const;

// ---------------------------------------------------------------------------------------------
// Scalars shared by several sections

const positiveMs = int({ min: 1, max: MAX_TIMER_MS });
const port = int({ min: 0, max: 65535 });
/** 0.0.0.0 and :: listen on every address, so they clash with any host on the same port. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::']);

// ---------------------------------------------------------------------------------------------
// server, admin, log

const serverFields = object({
  host: withDefault(hostName(), '127.0.0.1'),
  port: withDefault(port, 8080),
  publicUrl: withDefault(httpUrl({ path: false }), null),
  trustedProxies: withDefault(array(str(cidrProblem)), [] as string[]),
  maxHeaderBytes: withDefault(int({ min: 1024, max: 1_048_576 }), 32768),
  maxBodyBytes: withDefault(int({ min: 1, max: Number.MAX_SAFE_INTEGER }), null),
  headersTimeoutMs: withDefault(positiveMs, 10000),
  requestTimeoutMs: withDefault(int({ min: 0, max: MAX_TIMER_MS }), 0),
  keepAliveTimeoutMs: withDefault(positiveMs, 72000),
  shutdownTimeoutMs: withDefault(positiveMs, 10000),
  bodyIdleTimeoutMs: withDefault(positiveMs, 30000),
});

const serverSchema: Schema<ServerConfig> = refine(serverFields, (s, path, ctx): Checked<ServerConfig> => {
  if (s.requestTimeoutMs > 0 && s.headersTimeoutMs > s.requestTimeoutMs) {
    return report(ctx, childPath(path, 'headersTimeoutMs'), 'must not exceed server.requestTimeoutMs when that is set');
  }
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  const publicUrl = s.publicUrl === null ? `http://${host}:${s.port}` : new URL(s.publicUrl).origin;
  return { ...s, publicUrl };
});

const adminSchema: Schema<AdminConfig> = object({
  host: withDefault(hostName(), '127.0.0.1'),
  port: withDefault(port, 9090),
});

const logSchema = object({
  level: withDefault(oneOf(LOG_LEVELS), 'info' as const),
  accessLog: withDefault(bool(), true),
});

// ---------------------------------------------------------------------------------------------
// issuers, tokens

const issuerSchema: Schema<IssuerConfig> = object({
  issuer: required(httpUrl({ query: false })),
  jwksUri: withDefault(httpUrl({ query: true }), null),
  audiences: required(strings()),
  algorithms: withDefault(array(oneOf(ALGORITHMS, {
    explain: (s) => /^(none|HS\d*)$/i.test(s) ? 'symmetric and unsigned algorithms are never accepted' : undefined,
  }), { min: 1 }), ['RS256' as const]),
});

const issuersSchema = array(issuerSchema, {
  refine(items, ctx) {
    const seen = new Map<string, string>();
    for (const { value, path } of items) {
      const first = seen.get(value.issuer);
      if (first !== undefined) report(ctx, childPath(path, 'issuer'), `duplicate issuer (also ${first})`);
      else seen.set(value.issuer, path);
    }
  },
});

const tokensSchema: Schema<TokensConfig> = refine(object({
  jwksTimeoutMs: withDefault(positiveMs, 1000),
  jwksCooldownMs: withDefault(int({ min: 0, max: MAX_TIMER_MS }), 30000),
  jwksCacheMaxAgeMs: withDefault(positiveMs, 600000),
  jwksMaxStaleMs: withDefault(positiveMs, 3600000),
  clockToleranceSec: withDefault(int({ min: 0, max: 300 }), 30),
  maxTokenBytes: withDefault(int({ min: 512, max: 65536 }), 12288),
  cacheSize: withDefault(int({ min: 0, max: 1_000_000 }), 10000),
}), (t, path, ctx): Checked<TokensConfig> => {
  if (t.jwksMaxStaleMs < t.jwksCacheMaxAgeMs) {
    return report(ctx, childPath(path, 'jwksMaxStaleMs'), 'must be at least tokens.jwksCacheMaxAgeMs');
  }
  return t;
});

// ---------------------------------------------------------------------------------------------
// upstreams

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

function headerValueProblem(s: string): string | undefined {
  return /[\u0000-\u0008\u000a-\u001f\u007f]/.test(s) ? 'must not contain control characters' : undefined;
}


const CREDENTIAL_KEYS: Record<string, readonly string[]> = {};
const credentialHint = (type: string) => (key: string): string | undefined => {
  const users = Object.entries(CREDENTIAL_KEYS).filter(([t, keys]) => t !== type && keys.includes(key)).map(([t]) => t);
  return users.length > 0 ? `used by type ${users.join(', ')}, not ${type}` : undefined;
};

const credentialVariants = {
  'user-token': object({ type: required(literal('user-token')) }, { unknownHint: credentialHint('user-token') }),
  none: object({ type: required(literal('none')) }, { unknownHint: credentialHint('none') }),
  'api-key': object({
    type: required(literal('api-key')),
    header: withDefault(refine(str(apiKeyHeaderProblem), (h) => h.toLowerCase()), 'api-key'),
    value: secret(headerValueProblem),
  }, { unknownHint: credentialHint('api-key') }),
  'client-credentials': object({
    type: required(literal('client-credentials')),
    tokenUrl: required(httpUrl({ query: true })),
    clientId: required(str()),
    clientSecret: secret(),
    scopes: withDefault(array(str(scopeToken)), [] as string[]),
    resource: withDefault(str(), null),
    audience: withDefault(str(), null),
    tokenEndpointAuthMethod: withDefault(oneOf(['client_secret_basic', 'client_secret_post'] as const), 'client_secret_basic' as const),
    renewBeforeSec: withDefault(int({ min: 0, max: 86400 }), 60),
    timeoutMs: withDefault(positiveMs, 5000),
  }, { unknownHint: credentialHint('client-credentials') }),
};
for (const [type, schema] of Object.entries(credentialVariants)) CREDENTIAL_KEYS[type] = schema.knownKeys;

const upstreamUrl = refine(httpUrl({ query: false }), (s) => {
  const u = new URL(s);
  return u.origin + u.pathname.replace(/\/+$/, '');
});

const upstreamSchema = object({
  url: required(upstreamUrl),
  timeoutMs: withDefault(positiveMs, 30000),
  credentials: required(tagged('type', credentialVariants), 'required (type: user-token | client-credentials | api-key | none)'),
});

const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

const upstreamsSchema: Schema<Record<string, UpstreamConfig>> = refine(
  record(upstreamSchema, (k) => UPSTREAM_NAME.test(k) ? undefined : 'upstream names use letters, digits, _ and - (and start with a letter or digit)'),
  (ups) => Object.fromEntries(Object.entries(ups).map(([name, u]) => [name, { name, ...u }])),
);

// ---------------------------------------------------------------------------------------------
// routes

const methodSchema = refine(str((s) => (isToken(s) ? undefined : 'must be an HTTP method name')), (s) => s.toUpperCase());

const allowRuleSchema: Schema<AllowRule> = object({
  methods: withDefault(array(methodSchema, { min: 1 }), null),
  groups: withDefault(strings(), null),
  scopes: withDefault(strings(scopeToken), null),
  subjects: withDefault(strings(), null),
});

const ALLOW_REQUIRED = 'required: at least one rule (routes deny by default; use public: true for open routes)';

/** `allow` depends on `public`: required (non-empty) on private routes, forbidden on public ones. */
function allowField(env: Context['env']): Field<AllowRule[]> {
  const rules = array(allowRuleSchema, { min: 1, minReason: ALLOW_REQUIRED });
  return {
    keys: (name) => [name],
    read(obj, name, path, ctx) {
      const p = childPath(path, name);
      const isPublic = isAbsent(obj.public) ? false : peekBool(obj.public, env);
      if (isPublic === undefined) {
        // `public` itself is invalid (and reported): check the rules as written, nothing more.
        return isAbsent(obj[name]) ? INVALID : rules.check(obj[name], p, ctx);
      }
      if (isPublic) return isAbsent(obj[name]) ? [] : report(ctx, p, 'a public route must not have allow rules');
      return isAbsent(obj[name]) ? report(ctx, p, ALLOW_REQUIRED) : rules.check(obj[name], p, ctx);
    },
  };
}

function routeKey(prefix: string): string {
  return prefix === '/' ? '/' : prefix.replace(/\/$/, '');
}

function routesSchema(upstreamNames: readonly string[] | null, projectNames: readonly string[] | null, env: Context['env']): Schema<RouteConfig[]> {
  const upstream = str((s) => {
    if (upstreamNames === null || upstreamNames.includes(s)) return undefined;
    return upstreamNames.length === 0 ? 'no upstreams are defined' : `must name one of the upstreams (${upstreamNames.join(', ')})`;
  });
  const route: Schema<RouteConfig> = object({
    prefix: required(str(canonicalPathProblem)),
    upstream: required(upstream),
    rewritePrefix: withDefault(str(canonicalPathProblem), null),
    public: withDefault(bool(), false),
    websockets: withDefault(bool(), true),
    allow: allowField(env),
    login: withDefault(str((s) => {
      if (projectNames === null) return 'needs a login section (login.projects)';
      return projectNames.includes(s) ? undefined : `must name one of the login projects (${projectNames.join(', ') || 'none defined'})`;
    }), null),
  });
  return array(route, {
    refine(items, ctx) {
      const seen = new Map<string, string>();
      for (const { value, path } of items) {
        const key = routeKey(value.prefix);
        const first = seen.get(key);
        if (first !== undefined) report(ctx, childPath(path, 'prefix'), `duplicate prefix (also ${first})`);
        else seen.set(key, path);
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// the whole file

function yamlProblem(err: YAMLError, text: string): ConfigProblem {
  const pos = err.linePos?.[0];
  const where = pos ? `line ${pos.line}, column ${pos.col}` : 'yaml';
  const first = err.message.split('\n', 1)[0] ?? err.message;
  let reason = `YAML syntax error: ${first.replace(/ at line \d+, column \d+:?$/, '')}`;
  // The classic: a bare ${NAME} inside { } or [ ], where braces are YAML flow indicators.
  const line = pos ? text.split(/\r?\n/)[pos.line - 1] ?? '' : '';
  if (/[{[][^"']*\$\{/.test(line)) reason += ' (inside { } or [ ], quote ${…} values: "${NAME}")';
  return { path: where, reason };
}

function section<T>(raw: Record<string, unknown>, key: string, schema: Schema<T>, ctx: Context): Checked<T> {
  return schema.check(isAbsent(raw[key]) ? {} : raw[key], key, ctx);
}

function validate(raw: Record<string, unknown>, ctx: Context): GatewayConfig | undefined {
  checkKeys(raw, SECTIONS, '', ctx);

  const server = section(raw, 'server', serverSchema, ctx);
  const admin = section(raw, 'admin', adminSchema, ctx);
  const log = section(raw, 'log', logSchema, ctx);
  const tokens = section(raw, 'tokens', tokensSchema, ctx);

  const issuers = isAbsent(raw.issuers) ? report(ctx, 'issuers', 'required') : issuersSchema.check(raw.issuers, 'issuers', ctx);
  const upstreams = isAbsent(raw.upstreams) ? report(ctx, 'upstreams', 'required') : upstreamsSchema.check(raw.upstreams, 'upstreams', ctx);
  // Route references are checked against the names written, even if an upstream itself is invalid.
  const upstreamNames = isMapping(raw.upstreams) ? Object.keys(raw.upstreams) : null;
  const login = isAbsent(raw.login) ? null : loginSchema.check(raw.login, 'login', ctx);
  const projectNames = !isMapping(raw.login) ? null
    : isMapping(raw.login.projects) ? Object.keys(raw.login.projects) : [];
  const routes = isAbsent(raw.routes) ? report(ctx, 'routes', 'required')
    : routesSchema(upstreamNames, projectNames, ctx.env).check(raw.routes, 'routes', ctx);

  // Cross-section rules, checked wherever their inputs are valid.
  if (issuers !== INVALID && issuers.length === 0) {
    const allPublic = routes !== INVALID ? routes.every((r) => r.public)
      : Array.isArray(raw.routes) && raw.routes.every((r) => isMapping(r) && peekBool(r.public, ctx.env) === true);
    if (!allPublic) report(ctx, 'issuers', 'must list at least one issuer (only a configuration whose routes are all public may omit them)');
  }
  if (tokens !== INVALID && server !== INVALID && tokens.maxTokenBytes >= server.maxHeaderBytes) {
    report(ctx, 'tokens.maxTokenBytes', `must be less than server.maxHeaderBytes (${server.maxHeaderBytes})`);
  }
  if (server !== INVALID && admin !== INVALID && admin.port !== 0 && admin.port === server.port
      && (admin.host === server.host || WILDCARD_HOSTS.has(admin.host) || WILDCARD_HOSTS.has(server.host))) {
    report(ctx, 'admin.port', `must differ from server.port (${server.port}) on the same host`);
  }

  if (login !== null && login !== INVALID && issuers !== INVALID) {
    for (const p of Object.values(login.projects)) {
      const trusted = issuers.find((i) => i.issuer === p.issuer);
      const at = `login.projects.${p.name}`;
      if (trusted === undefined) {
        report(ctx, `${at}.issuer`, 'must also be listed under issuers (the session\'s access token is verified like a bearer token)');
      } else if (p.resource !== null && !trusted.audiences.includes(p.resource)) {
        report(ctx, `${at}.resource`, `must be one of the issuer's audiences (${trusted.audiences.join(', ')})`);
      }
    }
  }

  if (ctx.problems.length > 0 || login === INVALID || server === INVALID || admin === INVALID || log === INVALID || tokens === INVALID
      || issuers === INVALID || upstreams === INVALID || routes === INVALID) {
    return undefined;
  }
  return { server, admin, log, issuers, tokens, upstreams, routes, login };
}

/**
 * Parses and validates a configuration. `${NAME}` is read from `opts.env` only; `*File` paths are
 * relative to `opts.baseDir`. Throws ConfigError listing every problem found.
 */
export function parseConfig(yamlText: string, opts: ParseOptions): GatewayConfig {
  const doc = parseDocument(yamlText, { prettyErrors: true, uniqueKeys: true, version: '1.2' });
  if (doc.errors.length > 0) throw new ConfigError([yamlProblem(doc.errors[0]!, yamlText)]);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([{ path: 'yaml', reason: `YAML error: ${(err as Error).message}` }]);
  }
  if (isAbsent(raw)) throw new ConfigError([{ path: '(root)', reason: 'the configuration is empty' }]);
  if (!isMapping(raw)) throw new ConfigError([{ path: '(root)', reason: 'must be a mapping of sections' }]);

  const ctx: Context = { env: opts.env, baseDir: opts.baseDir, problems: [] };
  const config = validate(raw, ctx);
  if (config === undefined) {
    throw new ConfigError(ctx.problems.length > 0 ? ctx.problems : [{ path: '(root)', reason: 'invalid configuration' }]);
  }
  return deepFreeze(config);
}

/** Reads and parses a configuration file; `*File` secrets are relative to its directory. */
export function loadConfigFile(file: string, env: Readonly<Record<string, string | undefined>>): GatewayConfig {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError([{ path: file, reason: `cannot read the configuration file (${code})` }]);
  }
  return parseConfig(text, { env, baseDir: dirname(abs) });
}
