// The validated, frozen configuration. Produced only by config/load.ts; every other module
// receives the parts it needs and never reads process.env or the YAML itself.

export const ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** Origin the gateway is reached at by clients; default http://host:port. */
  readonly publicUrl: string;
  /** CIDRs (or single addresses) whose X-Forwarded-* headers are believed. Default none. */
  readonly trustedProxies: readonly string[];
  readonly maxHeaderBytes: number;          // default 32768
  readonly maxBodyBytes: number | null;     // default null: unlimited, streamed
  readonly headersTimeoutMs: number;        // default 10000
  readonly requestTimeoutMs: number;        // default 0 (off: bodies stream; upstream timeoutMs bounds waits)
  readonly keepAliveTimeoutMs: number;      // default 72000
  readonly shutdownTimeoutMs: number;       // default 10000
  /** A request body idle this long aborts the request (408 if nothing was sent). Default 30000. */
  readonly bodyIdleTimeoutMs: number;
}

export interface AdminConfig {
  readonly host: string;                    // default 127.0.0.1
  readonly port: number;                    // default 9090
}

export interface LogConfig {
  readonly level: LogLevel;                 // default info
  readonly accessLog: boolean;              // default true
}

export interface IssuerConfig {
  readonly issuer: string;
  /** null: discovered from `${issuer}/.well-known/openid-configuration`. */
  readonly jwksUri: string | null;
  readonly audiences: readonly string[];
  readonly algorithms: readonly Algorithm[];  // default [RS256]
}

export interface TokensConfig {
  readonly jwksTimeoutMs: number;           // default 1000
  readonly jwksCooldownMs: number;          // default 30000
  readonly jwksCacheMaxAgeMs: number;       // default 600000
  readonly jwksMaxStaleMs: number;          // default 3600000
  readonly clockToleranceSec: number;       // default 30, at most 300
  readonly maxTokenBytes: number;           // default 12288
  /** Entries in the verified-token LRU; 0 disables it. Default 10000. */
  readonly cacheSize: number;
}

export interface UserTokenCredentials { readonly type: 'user-token' }
export interface NoCredentials { readonly type: 'none' }
export interface ApiKeyCredentials {
  readonly type: 'api-key';
  readonly header: string;                  // default api-key (lower-cased)
  readonly value: string;
}
export interface ClientCredentials {
  readonly type: 'client-credentials';
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];       // default []
  readonly resource: string | null;         // RFC 8707 resource indicator, default null
  readonly audience: string | null;         // `audience` parameter (Auth0 style), default null
  readonly tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post';
  readonly renewBeforeSec: number;          // default 60: renew this long before expiry
  readonly timeoutMs: number;               // default 5000: token endpoint request timeout
}
export type CredentialsConfig = UserTokenCredentials | NoCredentials | ApiKeyCredentials | ClientCredentials;

export interface UpstreamConfig {
  readonly name: string;                    // the key under `upstreams`
  readonly url: string;                     // origin plus optional base path, no query
  readonly timeoutMs: number;               // default 30000
  readonly credentials: CredentialsConfig;
}

export interface AllowRule {
  /** null: any method. Upper-cased. */
  readonly methods: readonly string[] | null;
  /** null: no condition. Any listed group suffices. */
  readonly groups: readonly string[] | null;
  /** null: no condition. Every listed scope is required. */
  readonly scopes: readonly string[] | null;
  /** null: no condition. `sub` must be one of these. */
  readonly subjects: readonly string[] | null;
}

export interface RouteConfig {
  /** As written in the config, starting with '/'. */
  readonly prefix: string;
  readonly upstream: string;                // a key of `upstreams`
  readonly rewritePrefix: string | null;
  readonly public: boolean;                 // default false
  /** WebSocket upgrades allowed (authenticated like a GET). Default true. */
  readonly websockets: boolean;
  readonly allow: readonly AllowRule[];     // empty for public routes
  /** A key of `login.projects`: browsers without a session are sent to that login. Default null. */
  readonly login: string | null;
}

export interface LoginProjectConfig {
  readonly name: string;                    // the key under `login.projects` (the CDF project)
  /** OIDC issuer, discovered at `${issuer}/.well-known/openid-configuration`; must be in `issuers`. */
  readonly issuer: string;
  readonly clientId: string;
  /** null: a public client (PKCE only, token_endpoint_auth_method none). */
  readonly clientSecret: string | null;
  readonly tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post';
  readonly scopes: readonly string[];       // default [openid, profile, email, offline_access]
  /** RFC 8707 resource indicator: the access token's audience. Default null. */
  readonly resource: string | null;
  /** Extra authorization request parameters (e.g. prompt, domain_hint). Default {}. */
  readonly authorizationParams: Readonly<Record<string, string>>;
  /** Where failed logins land when the login did not name an error destination. Default null. */
  readonly errorRedirect: string | null;
}

export interface RedisConfig {
  readonly url: string;                     // redis:// or rediss://
  readonly password: string | null;         // or passwordFile; default null
  readonly keyPrefix: string;               // default "cdf-gw:"
}

export interface LoginConfig {
  /** AES key material, newest first: seal with the first, open with any. Each ≥ 32 bytes. */
  readonly cookieSecrets: readonly string[];
  readonly sessionTtlSec: number;           // default 28800: absolute lifetime
  readonly idleTimeoutSec: number;          // default 3600
  readonly sessionStore: 'cookie' | 'redis';  // default cookie
  readonly redis: RedisConfig | null;       // required when sessionStore is redis
  /** Origins (scheme://host[:port]) besides publicUrl's that redirects may go to. */
  readonly allowedRedirectOrigins: readonly string[];
  readonly refreshBeforeSec: number;        // default 60: refresh the access token this long before exp
  readonly flowTtlSec: number;              // default 600: lifetime of the login-flow cookie
  readonly projects: Readonly<Record<string, LoginProjectConfig>>;
}

export interface GatewayConfig {
  readonly server: ServerConfig;
  readonly admin: AdminConfig;
  readonly log: LogConfig;
  readonly issuers: readonly IssuerConfig[];
  readonly tokens: TokensConfig;
  readonly upstreams: Readonly<Record<string, UpstreamConfig>>;
  readonly routes: readonly RouteConfig[];
  /** null when the file has no `login:` section (no browser login, /auth/* answers 404). */
  readonly login: LoginConfig | null;
}
